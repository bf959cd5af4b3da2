"""Checkpoint layouts: one random RRDBNet saved in every official layout loads to identical outputs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from rsr_bench.errors import ConfigError
from rsr_bench.methods.layouts import detect_layout, infer_arch, load_checkpoint
from rsr_bench.methods.rrdbnet import RRDBNet

ARCH = {"nf": 16, "nb": 2, "gc": 8, "scale": 4}


def _to_mmsr(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Written independently of the loader: BasicSR names -> ESRGAN-new / RealSR names."""
    fixed = {"conv_body": "trunk_conv", "conv_up1": "upconv1", "conv_up2": "upconv2", "conv_hr": "HRconv"}
    out = {}
    for k, v in sd.items():
        m = re.match(r"body\.(\d+)\.rdb(\d)\.(conv\d)\.(weight|bias)$", k)
        if m:
            out[f"RRDB_trunk.{m[1]}.RDB{m[2]}.{m[3]}.{m[4]}"] = v
        else:
            head, leaf = k.rsplit(".", 1)
            out[f"{fixed.get(head, head)}.{leaf}"] = v
    return out


def _to_old(sd: dict[str, torch.Tensor], nb: int) -> dict[str, torch.Tensor]:
    """BasicSR names -> the 2018 ESRGAN ``model.*`` names (x4)."""
    top = {"conv_first": "model.0", "conv_body": f"model.1.sub.{nb}", "conv_up1": "model.3",
           "conv_up2": "model.6", "conv_hr": "model.8", "conv_last": "model.10"}
    out = {}
    for k, v in sd.items():
        m = re.match(r"body\.(\d+)\.rdb(\d)\.(conv\d)\.(weight|bias)$", k)
        if m:
            out[f"model.1.sub.{m[1]}.RDB{m[2]}.{m[3]}.0.{m[4]}"] = v
        else:
            head, leaf = k.rsplit(".", 1)
            out[f"{top[head]}.{leaf}"] = v
    return out


@pytest.fixture(scope="module")
def reference() -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    net = RRDBNet(**ARCH).eval()
    for p in net.parameters():  # default init is tiny in deep layers; make every weight matter
        p.data.normal_(0, 0.05)
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = net(x)
    return {k: v.clone() for k, v in net.state_dict().items()}, x, y


def _variants(sd: dict[str, torch.Tensor]) -> dict[str, object]:
    layouts = {"basicsr": sd, "mmsr": _to_mmsr(sd), "esrgan_old": _to_old(sd, ARCH["nb"])}
    out: dict[str, object] = {}
    for name, d in layouts.items():
        out[f"{name}-plain"] = d
        out[f"{name}-module"] = {f"module.{k}": v for k, v in d.items()}
        out[f"{name}-params"] = {"params": d}
        out[f"{name}-params_ema-module"] = {"params_ema": {f"module.{k}": v for k, v in d.items()}}
    return out


@pytest.mark.parametrize("variant", list(_variants({"conv_first.weight": torch.zeros(1)})))
def test_every_layout_loads_strictly_to_identical_output(variant: str, reference, tmp_path: Path) -> None:
    sd, x, y = reference
    obj = _variants(sd)[variant]
    path = tmp_path / "ckpt.pth"
    torch.save(obj, path)
    loaded = load_checkpoint(path)
    assert loaded.layout == variant.split("-")[0]
    assert (loaded.arch.nf, loaded.arch.nb, loaded.arch.gc, loaded.arch.scale) == (16, 2, 8, 4)
    with torch.no_grad():
        out = loaded.net(x)
    assert torch.equal(out, y)


def test_params_ema_preferred_over_params(reference, tmp_path: Path) -> None:
    sd, x, y = reference
    other = {k: torch.zeros_like(v) for k, v in sd.items()}
    torch.save({"params": other, "params_ema": sd}, tmp_path / "both.pth")
    with torch.no_grad():
        assert torch.equal(load_checkpoint(tmp_path / "both.pth").net(x), y)
        forced = load_checkpoint(tmp_path / "both.pth", param_key="params").net(x)
    assert not torch.equal(forced, y)


def test_truncated_checkpoint_names_missing_keys_and_layout(reference, tmp_path: Path) -> None:
    sd, _, _ = reference
    mmsr = _to_mmsr(sd)
    del mmsr["RRDB_trunk.1.RDB3.conv5.weight"]
    torch.save(mmsr, tmp_path / "trunc.pth")
    with pytest.raises(ConfigError) as err:
        load_checkpoint(tmp_path / "trunc.pth")
    msg = str(err.value)
    assert "detected layout: mmsr" in msg
    assert "missing keys" in msg and "body.1.rdb3.conv5.weight" in msg
    assert "unexpected" not in msg


def test_renamed_key_names_missing_and_unexpected(reference, tmp_path: Path) -> None:
    sd, _, _ = reference
    old = _to_old(sd, ARCH["nb"])
    old["model.8.weights"] = old.pop("model.8.weight")
    torch.save(old, tmp_path / "renamed.pth")
    with pytest.raises(ConfigError) as err:
        load_checkpoint(tmp_path / "renamed.pth")
    msg = str(err.value)
    assert "detected layout: esrgan_old" in msg
    assert "conv_hr.weight" in msg and "model.8.weights" in msg


def test_declared_layout_must_match(reference, tmp_path: Path) -> None:
    sd, _, _ = reference
    torch.save({"params": sd}, tmp_path / "b.pth")
    with pytest.raises(ConfigError, match="expected layout 'mmsr' but the keys are 'basicsr'"):
        load_checkpoint(tmp_path / "b.pth", layout="mmsr")


def test_unknown_layout_and_non_weights_file(tmp_path: Path) -> None:
    torch.save({"foo.weight": torch.zeros(1)}, tmp_path / "x.pth")
    with pytest.raises(ConfigError, match="unrecognised RRDBNet checkpoint layout"):
        load_checkpoint(tmp_path / "x.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(ConfigError, match="weights-only"):
        load_checkpoint(tmp_path / "junk.pth")
    with pytest.raises(ConfigError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pth")


def test_infer_arch_and_detect_x2() -> None:
    net = RRDBNet(nf=8, nb=1, gc=4, scale=2)
    sd = net.state_dict()
    assert detect_layout(sd) == "basicsr"
    arch = infer_arch(sd)
    assert (arch.nf, arch.nb, arch.gc, arch.scale) == (8, 1, 4, 2)


# ---------------------------------------------------------------------------- through the adapter


def _spec(options: dict, scale: int = 4, official: dict | None = None):
    from rsr_bench.methods.cards import MethodSpec
    from rsr_bench.methods.weights import parse_weights

    weights = parse_weights({"official": official} if official else None, method="fam.tag", packages={},
                            licence="", where="test card")
    return MethodSpec(name="fam.tag", family="fam", tag="tag", adapter="rrdb", scale=scale, options=options,
                      weights=weights)


def test_adapter_loads_local_checkpoint_with_fingerprint(reference, tmp_path: Path) -> None:
    from rsr_bench.methods import rrdb
    from rsr_bench.files import sha256_file

    sd, x, y = reference
    path = tmp_path / "mine.pth"
    torch.save({"params": _to_mmsr(sd)}, path)
    spec = _spec({"checkpoint": str(path)})
    assert rrdb.ADAPTER.availability(spec) is None
    method = rrdb.load(spec, device=torch.device("cpu"), options=spec.options)
    assert method.fingerprint == sha256_file(path)
    assert method.provenance["source"] == "local file" and method.provenance["layout"] == "mmsr"
    assert (method.predict(x) - y).abs().max() < 1e-5
    with pytest.raises(ConfigError, match="x2 but"):
        rrdb.load(_spec({"checkpoint": str(path)}, scale=2), device=torch.device("cpu"), options={"checkpoint": str(path)})


def test_adapter_rejects_unknown_options_and_reports_missing_files(tmp_path: Path, monkeypatch) -> None:
    from rsr_bench.methods import rrdb

    with pytest.raises(ConfigError, match="unknown option"):
        rrdb.load(_spec({}), device=torch.device("cpu"), options={"tiles": 64})
    with pytest.raises(ConfigError, match="moved to the variant's `weights:` block"):  # an old-style card
        rrdb.load(_spec({}), device=torch.device("cpu"), options={"asset": "impressionism-df2k-x4"})
    assert "does not exist" in rrdb.ADAPTER.availability(_spec({"checkpoint": str(tmp_path / "nope.pth")}))
    monkeypatch.setenv("RSR_BENCH_CACHE", str(tmp_path / "cache"))
    official = {"url": "https://example.org/W.pth", "filename": "W.pth", "layout": "mmsr", "sha256": "0" * 64}
    reason = rrdb.ADAPTER.availability(_spec({}, official=official))
    assert "W.pth" in reason and "https://example.org/W.pth" in reason and "--checkpoint" in reason


def test_adapter_official_dropin_is_verified_and_layout_checked(reference, tmp_path: Path, monkeypatch) -> None:
    from rsr_bench.methods import rrdb
    from rsr_bench.fetch.assets import ChecksumError
    from rsr_bench.files import sha256_file

    sd, x, y = reference
    monkeypatch.setenv("RSR_BENCH_CACHE", str(tmp_path / "cache"))
    dropin = tmp_path / "cache" / "weights" / "W.pth"
    dropin.parent.mkdir(parents=True)
    torch.save(_to_mmsr(sd), dropin)
    official = {"url": "https://example.org/W.pth", "filename": "W.pth", "layout": "mmsr"}
    spec = _spec({}, official={**official, "sha256": sha256_file(dropin)})
    assert rrdb.ADAPTER.availability(spec) is None
    method = rrdb.load(spec, device=torch.device("cpu"), options=spec.options)
    assert method.provenance["source"] == "official" and (method.predict(x) - y).abs().max() < 1e-5
    bad = _spec({}, official={**official, "sha256": "f" * 64})
    with pytest.raises(ChecksumError):
        rrdb.load(bad, device=torch.device("cpu"), options=bad.options)
    wrong_layout = _spec({}, official={**official, "layout": "basicsr"})
    with pytest.raises(ConfigError, match="expected layout 'basicsr' but the keys are 'mmsr'"):
        rrdb.load(wrong_layout, device=torch.device("cpu"), options=wrong_layout.options)
