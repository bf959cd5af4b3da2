"""``torchrun -m rsr_bench run``: ranks split the work, share one store, rank 0 prints the table.

* (slow) two CPU processes over gloo leave the same store as one process, record for record and
  PNG for PNG; rank 0 prints the whole table after the barrier, rank 1 a one-line summary;
* (fast) under a torchrun environment the runner joins the group, computes only its rank's part,
  takes its LOCAL_RANK's GPU where there is one, waits at the barrier and leaves the group; with
  ``--shard`` as well it refuses.

Planted bugs this module catches (each tried, one at a time): ``_join_torchrun`` not setting the
shard (rank 1 computes everything: the fast test sees 6 images, not its part); ``run`` not
calling ``_leave_torchrun`` (no barrier: the fast test sees no barrier call; under torchrun rank 0
prints a partial table).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist
from test_scale_shard import _mixed_set, _records

from rsr_bench import store
from rsr_bench.errors import ConfigError
from rsr_bench.runner import RunOptions, partition, run, _image_cost

METHOD = "bicubic.x4"


def test_torchrun_environment_takes_this_ranks_part(tmp_path, monkeypatch):
    sets = _mixed_set(tmp_path / "toy", 6)
    calls = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kw: calls.append(("init", backend)))
    monkeypatch.setattr(dist, "barrier", lambda: calls.append(("barrier",)))
    monkeypatch.setattr(dist, "destroy_process_group", lambda: calls.append(("leave",)))
    summary = run(RunOptions(methods="bicubic", datasets="Toy", metrics="psnr", datasets_files=[sets],
                             store=tmp_path / "store", progress=False), log=lambda m: None)
    assert calls == [("init", "gloo"), ("barrier",), ("leave",)]
    assert (summary.rank, summary.world) == (1, 2)
    samples = sorted((tmp_path / "toy" / "LR").glob("*.png"))
    owner = partition([_image_cost(p) for p in samples], 2, f"{METHOD}|Toy")
    mine = {p.stem for p, r in zip(samples, owner) if r == 1}
    assert set(store.load_results(tmp_path / "store").image) == mine and 0 < len(mine) < 6
    assert (tmp_path / "store" / "cells" / METHOD / "Toy" / "manifest.1of2.json").is_file()
    with pytest.raises(ConfigError, match="--shard cannot be combined with torchrun"):
        run(RunOptions(methods="bicubic", datasets="Toy", datasets_files=[sets], store=tmp_path / "s2", shard="0/2"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_ranks_give_the_store_of_one_process(tmp_path):
    sets = _mixed_set(tmp_path / "toy", 9)
    torchrun = Path(sys.executable).with_name("torchrun")
    torchrun = str(torchrun) if torchrun.exists() else shutil.which("torchrun")
    assert torchrun, "torchrun not found next to the interpreter"
    args = ["-m", "rsr_bench", "run", "--methods", "bicubic", "--datasets", "Toy", "--metrics", "psnr,ssim",
            "--datasets-file", str(sets), "--device", "cpu", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    two = subprocess.run([torchrun, "--nnodes", "1", "--nproc_per_node", "2", "--master_port", str(_free_port()),
                          *args, "--store", str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stdout + two.stderr
    one = subprocess.run([sys.executable, *args, "--store", str(tmp_path / "one")], env=env, capture_output=True,
                         text=True, timeout=600)
    assert one.returncode == 0, one.stderr
    assert len(_records(tmp_path / "one")) == 9 and _records(tmp_path / "one") == _records(tmp_path / "two")
    table = [line for line in two.stdout.splitlines() if line.startswith(METHOD)]
    assert table == [line for line in one.stdout.splitlines() if line.startswith(METHOD)]  # rank 0, after the barrier
    assert "rank 1 of 2:" in two.stdout
    manifest = store.read_manifest(tmp_path / "two", METHOD, "Toy")
    assert manifest["world_size"] == 2 and sorted(r["rank"] for r in manifest["ranks"]) == [0, 1]
