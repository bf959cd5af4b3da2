"""Thread count (issue 15, item 4): no more threads than free cores by default, an option sets it.

Bugs planted to check these tests fail: the load average ignored (2 CPUs, load 1.2 gives 2);
no lower bound (load above the CPU count gives 0 or less); an OMP_NUM_THREADS the user set
overwritten by the default; ``--threads`` not reaching the environment torch reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rsr_bench import cli as cli_mod
from rsr_bench.cli import apply_threads, free_cores


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch):
    def set_(cpus: int, load: float) -> None:
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
        monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    for key in cli_mod.THREADS_ENV:
        monkeypatch.delenv(key, raising=False)
    return set_


@pytest.mark.parametrize("cpus,load,want", [(2, 0.1, 2), (2, 1.2, 1), (2, 9.5, 1), (16, 3.4, 13), (4, 0.0, 4)])
def test_free_cores_is_cpus_minus_load_at_least_one(machine, cpus: int, load: float, want: int) -> None:
    machine(cpus, load)
    assert free_cores() == want


def test_default_respects_a_thread_count_the_environment_sets(machine, monkeypatch: pytest.MonkeyPatch) -> None:
    machine(8, 0.0)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert apply_threads(None) is None and os.environ["OMP_NUM_THREADS"] == "3"
    assert apply_threads(2) == 2 and os.environ["OMP_NUM_THREADS"] == "2"  # the option wins


def test_default_sets_free_cores(machine) -> None:
    import torch

    before = torch.get_num_threads()
    machine(2, 1.4)
    try:
        assert apply_threads(None) == 1 and os.environ["OMP_NUM_THREADS"] == "1" and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_threads_option_reaches_torch_in_a_fresh_process() -> None:
    code = ("import json, sys; from click.testing import CliRunner; from rsr_bench.cli import cli\n"
            "r = CliRunner().invoke(cli, ['--threads', '1', 'list', 'metrics'])\n"
            "import torch; print(json.dumps([r.exit_code, torch.get_num_threads()]))")
    env = {k: v for k, v in os.environ.items() if k not in cli_mod.THREADS_ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [0, 1], out.stderr
