"""Hostile fetches (issue 13, items 1 and 4): the user's folders and the paths a datasets file names.

Item 1: `rsr-bench fetch NAME` on a dataset whose LR folder existed without top-level images
(images in sub-folders, .heic files, notes) deleted the folder and re-extracted, exit 0. Now an
existing folder that is not recognised is an error naming it; ``--force`` moves it aside, never
deletes. Item 4: ``filename: ../../x``, ``extract_to: ../../x`` (and ``subdir``, the LR/HR folders,
a derive ``manifest``) made fetch write outside the data root; every path a datasets file names
for writing must resolve inside it.

Planted bugs this module catches (each tried on the fixed code, one at a time): ``rmtree`` of
the target instead of moving it aside; moving aside only with images present; no check of
``filename``; no check of ``extract_to``; checking ``extract_to`` only for absolute paths;
merging an extra archive over entries already in its folder.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from local_http import LocalServer
from test_dataset_fetch import zip_bytes

from rsr_bench.cli import cli
from rsr_bench.datasets import parse_datasets_file
from rsr_bench.errors import ConfigError, RsrBenchError
from rsr_bench.fetch.datasets import check_layout, fetch_dataset

quiet = {"progress": False, "say": lambda msg: None}


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def server():
    srv = LocalServer().start()
    srv.files["set.zip"] = zip_bytes({f"x/{i}.png": png() for i in range(3)})
    yield srv
    srv.stop()


def spec(tmp_path: Path, server: LocalServer, entry: str, name: str = "Set"):
    """``{base}``: the server; ``{abs}``: an absolute folder outside the data root."""
    sets = tmp_path / "sets.yaml"
    sets.write_text("datasets:\n" + entry.replace("{base}", server.base).replace("{abs}", str(tmp_path / "abs")))
    return parse_datasets_file(sets, tmp_path / "data")[name]


PLAIN = """
  Set:
    lr: Set/LR
    count: 3
    fetch: {archives: [{url: "{base}/set.zip", role: lr}]}
"""


def user_folder(lr: Path) -> dict[str, bytes]:
    """A folder a user made by hand: images one level down, a phone photo, notes. No top-level image."""
    files = {"sub/0.png": png(), "holiday.heic": b"\x00\x00\x00\x18ftypheic", "notes.txt": b"my notes"}
    for rel, data in files.items():
        (lr / rel).parent.mkdir(parents=True, exist_ok=True)
        (lr / rel).write_bytes(data)
    return files


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_unrecognised_folder_is_an_error_and_force_moves_it_aside(tmp_path, server):
    s = spec(tmp_path, server, PLAIN)
    files = user_folder(s.lr_dir)
    with pytest.raises(RsrBenchError) as err:
        fetch_dataset(s, tmp_path / "data", **quiet)
    msg = str(err.value)
    assert str(s.lr_dir) in msg and "--force" in msg and "move" in msg
    assert tree(s.lr_dir) == files  # untouched
    assert server.log == []  # refused before downloading anything

    said: list[str] = []
    fetch_dataset(s, tmp_path / "data", progress=False, force=True, say=said.append)
    assert check_layout(s) == []
    aside = [p for p in s.lr_dir.parent.iterdir() if p.name.startswith("LR.moved-aside-")]
    assert len(aside) == 1 and tree(aside[0]) == files
    assert any(str(aside[0]) in line for line in said)


def test_cli_fetch_refuses_and_exits_nonzero(tmp_path, server):
    s = spec(tmp_path, server, PLAIN)
    files = user_folder(s.lr_dir)
    res = CliRunner().invoke(cli, ["fetch", "Set", "--data-root", str(tmp_path / "data"),
                                   "--datasets-file", str(tmp_path / "sets.yaml")])
    assert res.exit_code != 0 and str(s.lr_dir) in res.output and "Traceback" not in res.output
    assert tree(s.lr_dir) == files


def test_force_on_a_complete_dataset_keeps_the_old_copy(tmp_path, server):
    s = spec(tmp_path, server, PLAIN)
    fetch_dataset(s, tmp_path / "data", **quiet)
    (s.lr_dir / "mine.txt").write_text("added by the user")
    fetch_dataset(s, tmp_path / "data", force=True, **quiet)
    assert check_layout(s) == [] and not (s.lr_dir / "mine.txt").exists()
    (aside,) = [p for p in s.lr_dir.parent.iterdir() if p.name.startswith("LR.moved-aside-")]
    assert (aside / "mine.txt").read_text() == "added by the user"


def test_empty_folder_is_simply_filled(tmp_path, server):
    s = spec(tmp_path, server, PLAIN)
    s.lr_dir.mkdir(parents=True)
    fetch_dataset(s, tmp_path / "data", **quiet)
    assert check_layout(s) == [] and sorted(p.name for p in s.lr_dir.parent.iterdir()) == ["LR"]


@pytest.mark.parametrize("field, value", [
    ("filename", "../../evil.zip"), ("filename", "{abs}/evil.zip"), ("filename", ".."), ("filename", "a\\\\..\\\\b.zip"),
])
def test_archive_filename_must_be_a_plain_name(tmp_path, server, field, value):
    entry = PLAIN.replace('role: lr}', f'role: lr, {field}: "{value}"}}')
    s = spec(tmp_path, server, entry)
    with pytest.raises(ConfigError, match=rf"{field}.*plain file name"):
        fetch_dataset(s, tmp_path / "data", **quiet)
    assert server.log == [] and not (tmp_path / "evil.zip").exists() and not (tmp_path / "abs").exists()


@pytest.mark.parametrize("value", ["../../outside", "{abs}/outside", "a/../../outside"])
def test_extract_to_must_stay_in_the_data_root(tmp_path, server, value):
    entry = f"""
  Set:
    lr: Set/LR
    fetch:
      archives:
        - {{url: "{{base}}/set.zip", role: extra, extract_to: "{value}"}}
        - {{url: "{{base}}/set.zip", role: lr}}
"""
    s = spec(tmp_path, server, entry)
    with pytest.raises(ConfigError, match=r"extract_to.*inside the data root"):
        fetch_dataset(s, tmp_path / "data", **quiet)
    assert server.log == [] and not (tmp_path / "outside").exists() and not (tmp_path / "abs").exists()


def test_subdir_must_stay_inside_the_archive(tmp_path, server):
    victim = tmp_path / "data" / "victim"
    victim.mkdir(parents=True)
    (victim / "precious.png").write_bytes(png())
    s = spec(tmp_path, server, PLAIN.replace('role: lr}', 'role: lr, subdir: "../../victim"}'))
    with pytest.raises(ConfigError, match=r"subdir.*inside"):
        fetch_dataset(s, tmp_path / "data", **quiet)
    assert (victim / "precious.png").is_file()


@pytest.mark.parametrize("lr", ["../../outside/LR", "{abs}/LR"])
def test_dataset_folders_must_be_in_the_data_root_to_fetch(tmp_path, server, lr):
    s = spec(tmp_path, server, PLAIN.replace("lr: Set/LR", f"lr: {lr}"))
    with pytest.raises(ConfigError, match=r"outside the data root"):
        fetch_dataset(s, tmp_path / "data", **quiet)
    assert server.log == [] and not (tmp_path / "outside").exists() and not (tmp_path / "abs").exists()


def test_derive_manifest_must_stay_in_the_data_root(tmp_path, server):
    entry = """
  Faces:
    lr: Faces/LR
    fetch: {derive: {name: faces_wider, manifest: ../../evil.json}}
"""
    s = spec(tmp_path, server, entry, "Faces")
    with pytest.raises(ConfigError, match=r"manifest.*inside the data root"):
        fetch_dataset(s, tmp_path / "data", **quiet)
    assert not (tmp_path / "evil.json").exists()


def test_extra_archive_never_overwrites_what_is_there(tmp_path, server):
    entry = """
  Set:
    lr: Set/LR
    fetch:
      archives:
        - {url: "{base}/set.zip", role: extra, extract_to: Raw}
        - {url: "{base}/set.zip", role: lr}
"""
    s = spec(tmp_path, server, entry)
    raw = tmp_path / "data" / "Raw"
    (raw / "x").mkdir(parents=True)
    (raw / "x" / "0.png").write_bytes(b"the user's own file")
    with pytest.raises(RsrBenchError, match=r"Raw.*x.*--force"):
        fetch_dataset(s, tmp_path / "data", **quiet)
    assert (raw / "x" / "0.png").read_bytes() == b"the user's own file"
    fetch_dataset(s, tmp_path / "data", force=True, **quiet)
    (aside,) = [p for p in raw.iterdir() if p.name.startswith("x.moved-aside-")]
    assert (aside / "0.png").read_bytes() == b"the user's own file" and (raw / "x" / "0.png").read_bytes() == png()


def test_force_help_says_it_moves_aside_and_never_deletes():
    from click.testing import CliRunner

    from rsr_bench.cli import cli

    text = " ".join(CliRunner().invoke(cli, ["fetch", "--help"]).output.split())
    assert "moved aside" in text and "never deleted" in text and "Re-install datasets that are" not in text
