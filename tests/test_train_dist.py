"""Two-process DDP training over torchrun with the gloo backend (CPU)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from test_train_run import HR, needs_data, tiny_overrides


@pytest.mark.slow
@needs_data
def test_two_process_gloo_run_sees_disjoint_samples(tmp_path: Path) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        torchrun = shutil.which("torchrun")
    assert torchrun, "torchrun not found next to the interpreter"
    overrides = tiny_overrides(tmp_path / "run", **{"logger.log_samples": True, "train.total_iter": 4,
                                                    "logger.save_checkpoint_freq": 4})
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump({}))
    args = [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}" for k, v in overrides.items()]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "rsr_bench.train", str(cfg_path), *args],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "run"
    seen = []
    for rank in (0, 1):
        lines = (out / f"samples_rank{rank}.txt").read_text().split("\n")
        seen.append([int(i) for line in lines if line for i in line.split()])
    assert len(seen[0]) == len(seen[1]) == 4 * 2  # 4 iterations x batch 2 per rank
    assert not set(seen[0]) & set(seen[1])  # one epoch (100 samples > 16): no sample on both ranks
    assert len(set(seen[0] + seen[1])) == 16
    sd = torch.load(out / "models" / "net_g_4.pth", weights_only=True)["params"]
    assert sd["conv_first.weight"].shape[0] == 8
    assert (out / "training_states" / "4.rng0").is_file() and (out / "training_states" / "4.rng1").is_file()
