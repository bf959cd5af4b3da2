"""Time each metric in ms per megapixel: rsr-bench's metric vs pyiqa's default path.

    .venv/bin/python benchmarks/bench_metrics.py [--device cpu] [--threads N] [--repeat 3]

Images: the 5 calibration pairs (512x384, pyiqa wheel ``ResultsCalibra`` or
``$RSR_BENCH_REFERENCE_DATA/calibration``), optionally replicated to a larger size with
``--upscale K`` (bicubic), so timings reflect real content.

The alternative is pyiqa called the usual way: ``m = pyiqa.create_metric(name, device=...)``
then ``m(img)`` (NR) or ``m(img, ref)`` (FR) per image on ``(1,3,H,W)`` tensors. pyiqa would
download its model files; they are placed in a private ``TORCH_HOME`` from the rsr-bench asset
cache first (same bytes pyiqa's hosts serve for the LPIPS heads; the NIQE/BRISQUE LIVE models
from the mirrors), and torchvision's AlexNet file is assembled from the cached features (its
classifier is random and never used). Decoding is excluded from both timings. Note that psnr and
ssim follow different conventions in the two libraries (RSR: RGB with a 4 px crop; pyiqa: RGB /
Y without crop), so their ratio compares implementations, not identical numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

PYIQA_NAME = {"psnr": "psnr", "ssim": "ssim", "lpips": "lpips", "niqe": "niqe", "brisque": "brisque", "piqe": "piqe"}


def calibration_dir() -> Path:
    import importlib.metadata

    try:
        p = Path(importlib.metadata.distribution("pyiqa").locate_file("ResultsCalibra"))
        if (p / "dist_dir" / "I03.bmp").is_file():
            return p
    except importlib.metadata.PackageNotFoundError:
        pass
    env = os.environ.get("RSR_BENCH_REFERENCE_DATA")
    if env and (Path(env) / "calibration" / "dist_dir").is_dir():
        return Path(env) / "calibration"
    sys.exit("no calibration images: install pyiqa or set RSR_BENCH_REFERENCE_DATA")


def prepare_pyiqa_home(home: Path) -> None:
    """Put the model files pyiqa/torchvision would download where they look for them."""
    import shutil

    import torch
    import torchvision

    from rsr_bench.fetch.assets import ensure_asset

    pyiqa_dir = home / "hub" / "pyiqa"
    ckpt_dir = home / "hub" / "checkpoints"
    pyiqa_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ensure_asset("niqe-pris-params"), pyiqa_dir / "niqe_modelparameters.mat")
    shutil.copyfile(ensure_asset("brisque-live-svr"), pyiqa_dir / "brisque_svm_weights.pth")
    shutil.copyfile(ensure_asset("lpips-alex-v0.1-lin"), pyiqa_dir / "LPIPS_v0.1_alex-df73285e.pth")
    full = torchvision.models.alexnet(weights=None).state_dict()
    full.update(torch.load(ensure_asset("alexnet-features"), map_location="cpu", weights_only=True))
    torch.save(full, ckpt_dir / "alexnet-owt-7be5be79.pth")


def timed(fn, repeat: int) -> float:
    fn()  # warm-up (lazy init, allocator)
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--upscale", type=int, default=1, help="bicubic-upscale the images by K (bigger images)")
    ap.add_argument("--metrics", default="psnr,ssim,lpips,niqe,brisque,piqe")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-torch-home-"))
    os.environ["TORCH_HOME"] = str(home)  # before pyiqa is imported: it fixes its cache dir then
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    prepare_pyiqa_home(home)
    import pyiqa

    from rsr_bench.image import dequantise, quantise, read_image
    from rsr_bench.metrics import create_metric, get_metric_spec

    root = calibration_dir()
    names = sorted(p.stem for p in (root / "dist_dir").glob("*.bmp"))
    dist = torch.stack([read_image(root / "dist_dir" / f"{n}.bmp") for n in names])
    ref = torch.stack([read_image(root / "ref_dir" / f"{n}.bmp") for n in names])
    if args.upscale > 1:
        up = lambda t: torch.nn.functional.interpolate(t, scale_factor=args.upscale, mode="bicubic").clamp(0, 1)
        dist, ref = dequantise(quantise(up(dist))), dequantise(quantise(up(ref)))
    dev = torch.device(args.device)
    dist, ref = dist.to(dev), ref.to(dev)
    mp = dist.shape[0] * dist.shape[-1] * dist.shape[-2] / 1e6

    print(f"device {dev}, torch threads {torch.get_num_threads()}, {dist.shape[0]} images "
          f"{dist.shape[-1]}x{dist.shape[-2]} ({mp:.3f} MP total), median of {args.repeat}")
    header = "| metric | rsr-bench per image (ms/MP) | rsr-bench batch (ms/MP) | pyiqa default (ms/MP) | pyiqa / rsr-bench | build rsr-bench / pyiqa (s) |"
    print(header)
    print("|---|---|---|---|---|---|")
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    for name in args.metrics.split(","):
        spec = get_metric_spec(name)
        t0 = time.perf_counter()
        ours = create_metric(name, dev)
        build_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        theirs = pyiqa.create_metric(PYIQA_NAME[name], device=dev)
        build_theirs = time.perf_counter() - t0
        fr = spec.kind == "FR"

        def ours_each(ours=ours, fr=fr):
            for i in range(dist.shape[0]):
                ours(dist[i:i + 1], ref[i:i + 1] if fr else None)
            sync()

        def ours_batch(ours=ours, fr=fr):
            ours(dist, ref if fr else None)
            sync()

        def theirs_each(theirs=theirs, fr=fr):
            with torch.no_grad():
                for i in range(dist.shape[0]):
                    theirs(dist[i:i + 1], ref[i:i + 1]) if fr else theirs(dist[i:i + 1])
            sync()

        a = timed(ours_each, args.repeat) * 1e3 / mp
        b = timed(ours_batch, args.repeat) * 1e3 / mp
        c = timed(theirs_each, args.repeat) * 1e3 / mp
        print(f"| {name} | {a:.0f} | {b:.0f} | {c:.0f} | {c / min(a, b):.2f} | {build_ours:.2f} / {build_theirs:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
