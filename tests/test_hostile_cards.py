"""Hostile and broken method cards and adapter plugins (issue 13, items 9 and 10).

Item 10 was fixed by the consolidation (issue 14): a card names an adapter, never Python code,
so ``adapter: this`` and ``adapter: os:system`` are refused without importing anything
(tests/test_adapters.py::test_code_named_by_a_card_is_refused_without_importing_it). This module
covers what was left:

* item 9: a plugin whose ``Adapter`` has the wrong signature is a message naming the expected
  one, in ``list methods`` and ``run``, never a traceback;
* a plugin whose ``availability`` or ``load`` raises an ordinary exception (``KeyError``,
  ``RuntimeError``) ended ``rsr-bench run`` with a bare ``KeyError('boom')`` and no other method
  ran; now that method is skipped with the adapter, the card and the exception named, and the
  others run;
* a card's family or variant name with ``/`` or ``..`` named a folder outside the store's
  ``cells/`` (the method name is a store folder); both are refused where the card is read;
* only the plugins a card names are imported: an installed plugin with import-time side effects
  stays unimported by ``list methods`` while no card names it.

Planted bugs this module catches (each tried on the fixed code, one at a time): wrapping only
``load`` (availability still escapes); wrapping only ``availability``; re-raising without the
card path; wrapping :class:`RsrBenchError` too (its own message would be buried under a second
prefix); importing every entry point of the group while resolving one card; checking the family
name but not the variant tags.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, os.path.dirname(__file__))
from plugin_dist import install_plugin

from rsr_bench.cli import cli
from rsr_bench.errors import ConfigError, UnavailableError
from rsr_bench.methods.cards import load_method, method_availability, parse_card

HEADER = "from rsr_bench.methods.cards import Adapter\n"


def card(tmp_path: Path, adapter: str, family: str | None = None) -> Path:
    family = family or adapter
    path = tmp_path / f"{family}.yaml"
    path.write_text(f"family: {family}\nadapter: {adapter}\nvariants:\n  x4:\n    scale: 4\n")
    return path


def plugin(tmp_path: Path, monkeypatch, name: str, body: str) -> Path:
    # No '_' in the module name: plugin_dist names the dist-info folder after it with '-', and
    # importlib.metadata reads a folder's distribution name up to the first '-', so two plugins
    # named rsr_test_a and rsr_test_b would both be the distribution "rsr" and one would vanish.
    install_plugin(tmp_path / f"site-{name}", monkeypatch, name=name, module=f"rsrtest{name}", source=HEADER + body)
    return card(tmp_path, name)


def cli_run(tmp_path: Path, methods: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["run", "--methods", methods, "--datasets", "demo_clean", "--limit", "1",
                                   "--metrics", "psnr", "--store", str(tmp_path / "store")])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res.exit_code, res.output


def test_wrong_adapter_signature_is_a_message_naming_the_expected_one(tmp_path, monkeypatch):
    path = plugin(tmp_path, monkeypatch, "badsig", "def load(spec, device):\n    return None\n"
                                                   "ADAPTER = Adapter('badsig', load)\n")
    (spec,) = parse_card(path)
    with pytest.raises(ConfigError, match=r"load\(spec, \*, device, options\)") as err:
        method_availability(spec)
    assert str(path) in str(err.value)
    monkeypatch.setenv("RSR_BENCH_METHODS", str(path))
    listed = CliRunner().invoke(cli, ["list", "methods"])
    line = next(ln for ln in listed.output.splitlines() if ln.startswith("badsig.x4"))
    assert "unavailable" in line and "load(spec, *, device, options)" in line
    _, out = cli_run(tmp_path, "badsig.x4,bicubic.x4")
    assert "Traceback" not in out and "load(spec, *, device, options)" in out


RAISING = {
    "availability": "def load(spec, *, device, options):\n    raise AssertionError('unreachable')\n"
                    "ADAPTER = Adapter('{name}', load, availability=lambda spec: {{}}['no such key'])\n",
    "load": "def load(spec, *, device, options):\n    raise RuntimeError('boom in load')\n"
            "ADAPTER = Adapter('{name}', load)\n",
}


@pytest.mark.parametrize("where", list(RAISING))
def test_a_plugin_raising_skips_that_method_and_the_others_run(tmp_path, monkeypatch, where):
    name = f"raise{where}"
    path = plugin(tmp_path, monkeypatch, name, RAISING[where].format(name=name))
    (spec,) = parse_card(path)
    with pytest.raises(ConfigError) as err:
        load_method(spec) if where == "load" else method_availability(spec)
    msg = str(err.value)
    assert str(path) in msg and name in msg and ("KeyError" in msg or "RuntimeError: boom in load" in msg)

    monkeypatch.setenv("RSR_BENCH_METHODS", str(path))
    _, out = cli_run(tmp_path, f"{name}.x4,bicubic.x4")
    assert f"skipping method {name}.x4" in out and "Traceback" not in out
    assert "bicubic.x4" in out and "demo_clean" in out  # the other method ran
    assert (tmp_path / "store" / "cells" / "bicubic.x4" / "demo_clean" / "manifest.json").is_file()


def test_adapter_errors_meant_for_the_user_keep_their_own_message(tmp_path, monkeypatch):
    path = plugin(tmp_path, monkeypatch, "needsfile",
                  "from rsr_bench.errors import UnavailableError\n"
                  "def avail(spec):\n    raise UnavailableError('put the weights in /x first')\n"
                  "ADAPTER = Adapter('needsfile', lambda spec, *, device, options: None, availability=avail)\n")
    (spec,) = parse_card(path)
    with pytest.raises(UnavailableError, match=r"^put the weights in /x first$"):
        method_availability(spec)


def test_only_the_plugin_a_card_names_is_imported(tmp_path, monkeypatch):
    witness = tmp_path / "imported.txt"
    install_plugin(tmp_path / "site-noisy", monkeypatch, name="noisy", module="rsrtestnoisy",
                   source=f"open({str(witness)!r}, 'a').write('imported')\n" + HEADER
                   + "ADAPTER = Adapter('noisy', lambda spec, *, device, options: None)\n")
    named = plugin(tmp_path, monkeypatch, "quiet", "ADAPTER = Adapter('quiet', lambda spec, *, device, options: None)\n")
    monkeypatch.setenv("RSR_BENCH_METHODS", os.pathsep.join([str(named), str(card(tmp_path, "bicubic", "plain"))]))
    listed = CliRunner().invoke(cli, ["list", "methods"])
    assert listed.exit_code == 0 and "plain.x4" in listed.output and "rsrtestquiet" in sys.modules
    assert not witness.exists() and "rsrtestnoisy" not in sys.modules
    monkeypatch.setenv("RSR_BENCH_METHODS", str(card(tmp_path, "noisy")))
    CliRunner().invoke(cli, ["list", "methods"])
    assert witness.read_text() == "imported"  # named by a card: imported, as documented


@pytest.mark.parametrize("family, tag", [("../../evil", "x4"), ("a/b", "x4"), ("ok", "../up"), ("ok", ".."),
                                         ("ok", "a/b"), ("ok", "a\\\\b"), ("..", "x4"), ("ok", "a,b")])
def test_card_names_that_are_not_store_folders_are_refused(tmp_path, family, tag):
    path = tmp_path / "evil.yaml"
    path.write_text(f"family: '{family}'\nadapter: bicubic\nvariants:\n  '{tag}':\n    scale: 4\n")
    with pytest.raises(ConfigError) as err:
        parse_card(path)
    assert str(path) in str(err.value) and "name" in str(err.value)
    res = CliRunner().invoke(cli, ["list", "methods", "--method-card", str(path)])
    assert res.exit_code != 0 and str(path) in res.output and "Traceback" not in res.output, res.output
