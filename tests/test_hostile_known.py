"""Hostile inputs that rsr-bench already withstood before issue 13, pinned so they stay that way.

The issue's probe found these held (docs/reliability.md lists every input tried, with its test);
three of them had no test of their own:

* YAML tags: every YAML file a user can hand over (datasets file, method card, baseline,
  training config, paper ``--runs``) goes through one ``yaml.safe_load`` reader, so
  ``!!python/object/apply:os.mkdir`` is an error naming the file and runs nothing;
* a malicious pickle as ``--checkpoint``: loaded with ``weights_only=True``, refused with the
  file named, the code never runs, the method is skipped and the other methods run;
* two concurrent runs on one store: both finish and the store holds exactly the results of a
  single run (the per-cell lock that stops them doing the work twice is another change).

Planted bugs this module catches (each tried, one at a time): ``yaml.load(..., Loader=yaml.Loader)``
in ``files.read_yaml_mapping`` (the directory is created); ``weights_only=False`` in
``methods/layouts.load_checkpoint`` (the directory is created); ``atomic_write_bytes`` writing in
place instead of temp + rename (the concurrent runs leave a truncated PNG or record).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from test_runner import _paired_set

from rsr_bench import store
from rsr_bench.cli import cli
from rsr_bench.errors import RsrBenchError
from rsr_bench.files import read_yaml_mapping
from rsr_bench.runner import RunOptions, run


def tag(witness: Path) -> str:
    return f"!!python/object/apply:os.mkdir [{str(witness)!r}]"


YAML_FILES = {
    "datasets file": ("datasets:\n  Evil: {tag}\n", ["list", "datasets", "--datasets-file"]),
    "method card": ("family: evil\nadapter: {tag}\nvariants: {{x4: {{scale: 4}}}}\n", ["list", "methods", "--method-card"]),
    "baseline": ("version: {tag}\n", ["check", "--baseline"]),
    "training config": ("model: {tag}\n", ["train", "--dry-run"]),
}


@pytest.mark.parametrize("kind", list(YAML_FILES))
def test_yaml_tags_never_run_code(tmp_path, kind):
    witness = tmp_path / "pwned"
    text, command = YAML_FILES[kind]
    path = tmp_path / "evil.yaml"
    path.write_text(text.format(tag=tag(witness)))
    with pytest.raises(RsrBenchError, match="invalid YAML"):
        read_yaml_mapping(path, what=kind)
    args = [*command, str(path)] if command[-1].startswith("--") else [*command[:1], str(path), *command[1:]]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code != 0 and str(path) in res.output and "Traceback" not in res.output, res.output
    assert not witness.exists()


class _Evil:
    def __init__(self, witness: Path) -> None:
        self.witness = str(witness)

    def __reduce__(self):
        return (os.mkdir, (self.witness,))


def test_malicious_pickle_checkpoint_is_refused_and_runs_nothing(tmp_path):
    witness = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"params": _Evil(witness)}, evil)
    res = CliRunner().invoke(cli, ["run", "--methods", "realesrgan.x4plus,bicubic.x4", "--checkpoint", str(evil),
                                   "--datasets", "demo_clean", "--limit", "1", "--metrics", "psnr",
                                   "--store", str(tmp_path / "store")])
    assert not witness.exists()
    assert "Traceback" not in res.output and str(evil) in res.output and "weights-only" in res.output
    assert (tmp_path / "store" / "cells" / "bicubic.x4" / "demo_clean" / "records").is_dir()  # the other ran


def test_two_concurrent_runs_on_one_store_give_the_results_of_one(tmp_path):
    sets = _paired_set(tmp_path / "toy", 8)
    args = [sys.executable, "-m", "rsr_bench", "run", "--methods", "bicubic", "--datasets", "Toy",
            "--metrics", "psnr,ssim", "--datasets-file", str(sets), "--quiet", "--store"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    both = [subprocess.Popen([*args, str(tmp_path / "shared")], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in both]
    assert [p.returncode for p in both] == [0, 0], outputs
    run(RunOptions(methods="bicubic", datasets="Toy", metrics="psnr,ssim", datasets_files=[sets],
                   store=str(tmp_path / "single"), progress=False), log=lambda m: None)
    a, b = (store.load_results(tmp_path / s).sort_values(["image", "metric"]).reset_index(drop=True)
            for s in ("shared", "single"))
    assert len(a) == 16 and a.equals(b)
    for png in (tmp_path / "single" / "cells" / "bicubic.x4" / "Toy" / "sr").glob("*.png"):
        assert (tmp_path / "shared" / "cells" / "bicubic.x4" / "Toy" / "sr" / png.name).read_bytes() == png.read_bytes()
