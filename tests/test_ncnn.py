"""ncnn .param/.bin -> state_dict: a synthetic export of a small random RRDBNet round-trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rsr_bench.errors import ConfigError
from rsr_bench.methods.layouts import load_checkpoint
from rsr_bench.fetch.ncnn import (
    TAG_FP16,
    basicsr_conv_names,
    convert_files,
    ncnn_to_state_dict,
)
from rsr_bench.methods.rrdbnet import RRDBNet


def _export(net: RRDBNet, fp32_every: int = 0) -> tuple[str, bytes]:
    """Write an ncnn-style export (text .param, tagged .bin) the way the real files are laid out."""
    sd = net.state_dict()
    names = basicsr_conv_names(net.nb, net.scale)
    lines = ["Input            input.1   0 1 data"]
    blobs = b""
    prev = "data"
    for i, name in enumerate(names):
        w = sd[f"{name}.weight"].numpy()
        b = sd[f"{name}.bias"].numpy()
        leaky = (name.startswith("body.") and not name.endswith("conv5")) or name in ("conv_up1", "conv_up2", "conv_hr")
        act = " 9=2 -23310=1,2.000000e-01" if leaky else ""
        if name in ("conv_up1", "conv_up2"):
            lines.append(f"Interp  Resize_{i}  1 1 {prev} r{i} 0=1 1=2.0 2=2.0")
            prev = f"r{i}"
        lines.append(f"Convolution  Conv_{i}  1 1 {prev} c{i} 0={w.shape[0]} 1=3 4=1 5=1 6={w.size}{act}")
        if name.endswith("conv5"):
            lines.append(f"Eltwise  Add_{i}  2 1 c{i} x e{i} 0=1 -23301=2,2.000000e-01,1.000000e+00")
        prev = f"c{i}"
        if fp32_every and i % fp32_every == 0:
            blobs += (0).to_bytes(4, "little") + w.astype("<f4").tobytes()
        else:
            half = w.astype("<f2").tobytes()
            blobs += TAG_FP16.to_bytes(4, "little") + half + b"\0" * (-len(half) % 4)
        blobs += b.astype("<f4").tobytes()
    text = "7767517\r\n" + f"{len(lines)} {len(lines) + 1}\r\n" + "\r\n".join(lines) + "\r\n"
    return text, blobs


@pytest.fixture(scope="module")
def small() -> RRDBNet:
    torch.manual_seed(0)
    net = RRDBNet(nf=8, nb=2, gc=4, scale=4).eval()
    for p in net.parameters():
        p.data.normal_(0, 0.05)
    # odd weight counts exercise the 4-byte padding of fp16 blocks
    return net


def test_round_trip_fp16_rounded(small: RRDBNet, tmp_path: Path) -> None:
    text, data = _export(small)
    sd = ncnn_to_state_dict(text, data)
    ref = small.state_dict()
    assert set(sd) == set(ref)
    for k, v in ref.items():
        want = v.half().float() if k.endswith(".weight") else v  # weights fp16, biases fp32
        assert torch.equal(sd[k], want), k
    (tmp_path / "m.param").write_text(text, newline="")
    (tmp_path / "m.bin").write_bytes(data)
    out = convert_files({"x/m.param": tmp_path / "m.param", "x/m.bin": tmp_path / "m.bin"}, tmp_path / "m.pth")
    loaded = load_checkpoint(out)
    assert (loaded.layout, loaded.arch.nb, loaded.arch.nf, loaded.arch.gc) == ("basicsr", 2, 8, 4)
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert (loaded.net(x) - small(x)).abs().max() < 1e-2


def test_fp32_blocks_are_read_too(small: RRDBNet) -> None:
    text, data = _export(small, fp32_every=3)
    sd = ncnn_to_state_dict(text, data)
    assert torch.equal(sd["conv_first.weight"], small.state_dict()["conv_first.weight"])


def test_odd_weight_count_is_padded() -> None:
    net = RRDBNet(nf=3, nb=1, gc=3, scale=2).eval()  # 3*3*9 = 81 fp16 weights -> 162 + 2 pad bytes
    text, data = _export(net)
    sd = ncnn_to_state_dict(text, data)
    assert sd["conv_first.weight"].shape == (3, 3, 3, 3)


def test_truncated_or_padded_bin_is_rejected(small: RRDBNet) -> None:
    text, data = _export(small)
    with pytest.raises(ConfigError, match="ends before conv"):
        ncnn_to_state_dict(text, data[: len(data) // 2])
    with pytest.raises(ConfigError, match="trailing bytes"):
        ncnn_to_state_dict(text, data + b"\0\0\0\0")
    bad = (0x12345678).to_bytes(4, "little") + data[4:]
    with pytest.raises(ConfigError, match="unsupported weight storage tag"):
        ncnn_to_state_dict(text, bad)


def test_non_rrdbnet_graph_is_rejected(small: RRDBNet) -> None:
    text, data = _export(small)
    no_act = text.replace(" 9=2 -23310=1,2.000000e-01", "", 1)
    with pytest.raises(ConfigError, match="activation"):
        ncnn_to_state_dict(no_act, data)
    with pytest.raises(ConfigError, match="not an ncnn"):
        ncnn_to_state_dict("hello\n", data)


def test_real_mirror_member_layout_if_cached() -> None:
    """With the genuine DF2K-JPEG asset cached, it is the 16,697,987-parameter x4 network."""
    from rsr_bench.fetch.assets import asset_path, is_cached

    if not is_cached("impressionism-df2k-jpeg-x4"):
        pytest.skip("impressionism-df2k-jpeg-x4 not in the cache (the golden test fetches it)")
    sd = torch.load(asset_path("impressionism-df2k-jpeg-x4"), weights_only=True)
    assert len(sd) == 702 and sum(v.numel() for v in sd.values()) == 16_697_987
    assert np.isfinite(torch.cat([v.flatten() for v in sd.values()]).numpy()).all()
