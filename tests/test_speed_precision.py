"""Precision ``auto`` (issue 15, item 1): bf16 only where the hardware has it, a warning where
an explicit bf16 is emulated, the decision and the CPU flags in the engine provenance.

Bugs planted to check these tests fail: ``auto`` always fp32 (bf16 CPU case fails); ``auto``
always bf16 (AVX2 case fails); the warning issued on every engine (warn-once test fails);
provenance recording the requested instead of the resolved precision (provenance test fails).
"""

from __future__ import annotations

import warnings

import pytest
import torch

from rsr_bench.methods import engine as engine_mod
from rsr_bench.methods.engine import EngineOptions, RRDBEngine, cpu_flags, resolve_precision
from rsr_bench.methods.rrdbnet import RRDBNet

CPU = torch.device("cpu")


def _net() -> RRDBNet:
    torch.manual_seed(0)
    return RRDBNet(nf=8, nb=1, gc=4, scale=4)


@pytest.fixture
def no_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_mod, "cpu_has_fast_bf16", lambda: False)
    monkeypatch.setattr(engine_mod, "_warned", set())


def test_auto_is_the_default_and_fp32_without_native_bf16(no_native_bf16: None) -> None:
    assert EngineOptions().precision == "auto"
    eng = RRDBEngine(_net(), device="cpu")
    assert eng.precision == "fp32" and eng.net_lp is None and "no native bf16" in eng.precision_reason


def test_auto_is_bf16_on_a_cpu_with_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_mod, "cpu_has_fast_bf16", lambda: True)
    assert resolve_precision("auto", CPU)[0] == "bf16"
    eng = RRDBEngine(_net(), device="cpu")
    assert eng.precision == "bf16" and eng.dtype == torch.bfloat16


def test_auto_on_cuda_follows_bf16_support(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", torch.device("cuda"))[0] == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", torch.device("cuda"))[0] == "fp32"


def test_explicit_bf16_without_native_support_warns_once_with_the_cost(no_native_bf16: None) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            eng = RRDBEngine(_net(), device="cpu", options=EngineOptions(precision="bf16"))
    slow = [w for w in caught if "without native bf16" in str(w.message)]
    assert len(slow) == 1 and "slower than fp32" in str(slow[0].message)
    assert eng.precision == "bf16"  # honoured, not silently changed


def test_explicit_fp32_never_warns(no_native_bf16: None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("fp32", CPU) == ("fp32", "requested")


def test_provenance_records_decision_and_cpu_flags(no_native_bf16: None) -> None:
    prov = RRDBEngine(_net(), device="cpu").provenance()
    assert prov["precision"] == "fp32" and prov["precision_requested"] == "auto"
    assert prov["precision_reason"].startswith("auto")
    assert prov["cpu"]["native_bf16"] is False and isinstance(prov["cpu"]["flags"], list)
    assert prov["threads"] == torch.get_num_threads() and prov["tile"] == "auto"


def test_cpu_flags_reads_proc_cpuinfo() -> None:
    info = cpu_flags()
    assert info["model"] and info["torch_capability"]
    assert set(info["flags"]) <= set(engine_mod._SPEED_FLAGS)
