"""rsr-bench vs the researchers' pipeline, end to end, on the same real images (issue 15).

    RSR_BENCH_CACHE=... RSR_BENCH_REFERENCE_DATA=/work/shared/data \\
        .venv/bin/python benchmarks/bench_pipeline.py [--bsd 3] [--realsr 1] [--repeat 2] [--threads 1]

The researchers' pipeline is written here with the packages themselves, each model built once:
BasicSR ``test.py``-style plain fp32 forward of BasicSR's RRDBNet (its architecture written out
below, loading the same genuine ``impressionism.df2k_jpeg`` weights), ``tensor2img`` rounding,
``cv2.imwrite``; BasicSR's cv2 ``calculate_psnr``/``calculate_ssim`` formulas written out (basicsr
itself is not installed); the ``lpips`` package (``LPIPS(net='alex')``, on the unrounded output
like RSR); pyiqa's NIQE/BRISQUE/PIQE through ``pyiqa.create_metric``. rsr-bench is its CLI,
``rsr-bench run`` on a datasets file pointing at the same folders, with default options.

Images: BSD100 (MATLAB bicubic x4 LR, 480x320 outputs) and RealSR camera crops (HR crop; LR =
the registered LR shot of the same crop, area-downsampled x4): mixed sizes, real content.

Each side runs in its own process (so imports and model builds count: "fixed cost"), the sides
interleaved, best of ``--repeat`` per stage. Stages: fixed (everything but predict and metrics),
predict (s per output MP), metrics (s per output MP), whole run. Then the per-image metric
agreement between the two, and the time of a second ``rsr-bench run`` on the finished store.
Load average and CPU flags are printed with the table. Threads: ``OMP_NUM_THREADS`` and cv2's
thread count are set to ``--threads`` on both sides (1: the clean comparison on a shared CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METHOD = "impressionism.df2k_jpeg"
METRICS = ("psnr", "ssim", "lpips", "niqe", "brisque", "piqe")


# ---------------------------------------------------------------------------------------------
# The researchers' side (runs in its own process: `bench_pipeline.py researchers WORK WEIGHTS`)
# ---------------------------------------------------------------------------------------------
def _basicsr_rrdbnet():  # noqa: ANN202 - BasicSR basicsr/archs/rrdbnet_arch.py, x4, written out
    import torch
    from torch import nn
    from torch.nn import functional as F

    class RDB(nn.Module):
        def __init__(self, nf: int = 64, gc: int = 32) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(nf, gc, 3, 1, 1)
            self.conv2 = nn.Conv2d(nf + gc, gc, 3, 1, 1)
            self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, 1, 1)
            self.conv4 = nn.Conv2d(nf + 3 * gc, gc, 3, 1, 1)
            self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

        def forward(self, x):  # noqa: ANN001, ANN202
            x1 = self.lrelu(self.conv1(x))
            x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
            x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
            x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
            x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
            return x5 * 0.2 + x

    class RRDB(nn.Module):
        def __init__(self, nf: int = 64, gc: int = 32) -> None:
            super().__init__()
            self.rdb1, self.rdb2, self.rdb3 = RDB(nf, gc), RDB(nf, gc), RDB(nf, gc)

        def forward(self, x):  # noqa: ANN001, ANN202
            return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x

    class RRDBNet(nn.Module):
        def __init__(self, nf: int = 64, nb: int = 23, gc: int = 32) -> None:
            super().__init__()
            self.conv_first = nn.Conv2d(3, nf, 3, 1, 1)
            self.body = nn.Sequential(*[RRDB(nf, gc) for _ in range(nb)])
            self.conv_body = nn.Conv2d(nf, nf, 3, 1, 1)
            self.conv_up1 = nn.Conv2d(nf, nf, 3, 1, 1)
            self.conv_up2 = nn.Conv2d(nf, nf, 3, 1, 1)
            self.conv_hr = nn.Conv2d(nf, nf, 3, 1, 1)
            self.conv_last = nn.Conv2d(nf, 3, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

        def forward(self, x):  # noqa: ANN001, ANN202
            feat = self.conv_first(x)
            feat = feat + self.conv_body(self.body(feat))
            feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
            feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
            return self.conv_last(self.lrelu(self.conv_hr(feat)))

    return RRDBNet()


def _basicsr_ssim(img, img2) -> float:  # noqa: ANN001 - basicsr/metrics/psnr_ssim.py _ssim
    import cv2
    import numpy as np

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    img, img2 = img.astype(np.float64), img2.astype(np.float64)
    kernel = cv2.getGaussianKernel(11, 1.5)
    window = np.outer(kernel, kernel.transpose())
    mu1 = cv2.filter2D(img, -1, window)[5:-5, 5:-5]
    mu2 = cv2.filter2D(img2, -1, window)[5:-5, 5:-5]
    mu1_sq, mu2_sq, mu1_mu2 = mu1**2, mu2**2, mu1 * mu2
    sigma1_sq = cv2.filter2D(img**2, -1, window)[5:-5, 5:-5] - mu1_sq
    sigma2_sq = cv2.filter2D(img2**2, -1, window)[5:-5, 5:-5] - mu2_sq
    sigma12 = cv2.filter2D(img * img2, -1, window)[5:-5, 5:-5] - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2))
    return float(ssim_map.mean())


def _basicsr_psnr_ssim(img, img2, crop: int = 4) -> tuple[float, float]:  # noqa: ANN001 - calculate_psnr/ssim
    import numpy as np

    img, img2 = img[crop:-crop, crop:-crop].astype(np.float64), img2[crop:-crop, crop:-crop].astype(np.float64)
    mse = np.mean((img - img2) ** 2)
    psnr = float("inf") if mse == 0 else float(10.0 * np.log10(255.0 * 255.0 / mse))
    return psnr, float(np.array([_basicsr_ssim(img[..., i], img2[..., i]) for i in range(3)]).mean())


def researchers(work: Path, weights: Path, torch_home: Path) -> None:
    """The pipeline as researchers run it; prints one JSON line with stage times and values."""
    t_start = time.perf_counter()
    os.environ["TORCH_HOME"] = str(torch_home)  # pyiqa/lpips find the model files placed there
    import contextlib
    import io

    import cv2
    import numpy as np
    import pyiqa
    import torch

    cv2.setNumThreads(int(os.environ.get("OMP_NUM_THREADS", "0")) or -1)
    import lpips

    net = _basicsr_rrdbnet()
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    net.eval()
    with contextlib.redirect_stdout(io.StringIO()):
        lp = lpips.LPIPS(net="alex", version="0.1")
    nr = {name: pyiqa.create_metric(name, device="cpu") for name in ("niqe", "brisque", "piqe")}
    stages = {"predict_s": 0.0, "metrics_s": 0.0}
    values: dict[str, dict[str, float]] = {}
    out_dir = work / "researchers_out"
    out_dir.mkdir(exist_ok=True)
    for lr_path in sorted((work / "LR").glob("*.png")):
        t0 = time.perf_counter()
        img = cv2.imread(str(lr_path), cv2.IMREAD_COLOR).astype(np.float32) / 255.0
        x = torch.from_numpy(np.transpose(img[:, :, [2, 1, 0]], (2, 0, 1))).float()[None]
        with torch.no_grad():
            out = net(x)
        sr = out.squeeze(0).float().cpu().clamp_(0, 1)
        sr_u8 = (np.transpose(sr.numpy()[[2, 1, 0]], (1, 2, 0)) * 255.0).round().astype(np.uint8)  # tensor2img
        cv2.imwrite(str(out_dir / lr_path.name), sr_u8)
        t1 = time.perf_counter()
        gt = cv2.imread(str(work / "HR" / lr_path.name), cv2.IMREAD_COLOR)
        psnr, ssim = _basicsr_psnr_ssim(sr_u8, gt)
        gt_t = torch.from_numpy(gt[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 255.0
        with torch.no_grad():
            lpips_v = float(lp(sr[None] * 2 - 1, gt_t * 2 - 1))
            q = torch.from_numpy(sr_u8[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 255.0
            nrv = {name: float(m(q)) for name, m in nr.items()}
        stages["metrics_s"] += time.perf_counter() - t1
        stages["predict_s"] += t1 - t0
        values[lr_path.stem] = {"psnr": psnr, "ssim": ssim, "lpips": lpips_v, **nrv}
    stages["total_s"] = time.perf_counter() - t_start
    print(json.dumps({"stages": stages, "values": values}))


# ---------------------------------------------------------------------------------------------
# The orchestrator
# ---------------------------------------------------------------------------------------------
def prepare_images(work: Path, data: Path, n_bsd: int, n_realsr: int) -> float:
    """LR/HR folders of mixed-size real pairs; returns the output megapixels."""
    import cv2

    (work / "LR").mkdir(parents=True, exist_ok=True)
    (work / "HR").mkdir(exist_ok=True)
    mp = 0.0
    for p in sorted((data / "bsd100" / "HR").glob("*.png"))[:n_bsd]:
        hr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        lr = cv2.imread(str(data / "bsd100" / "LR_bicubic_x4" / p.name), cv2.IMREAD_COLOR)
        cv2.imwrite(str(work / "HR" / f"bsd_{p.name}"), hr)
        cv2.imwrite(str(work / "LR" / f"bsd_{p.name}"), lr)
        mp += hr.shape[0] * hr.shape[1] / 1e6
    crops = [(360, 480), (280, 400), (400, 320), (320, 320)]
    for k, p in enumerate(sorted((data / "realsr_camera" / "HR").glob("*.png"))[:n_realsr]):
        h, w = crops[k % len(crops)]
        hr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        y0, x0 = (hr.shape[0] - h) // 2 // 4 * 4, (hr.shape[1] - w) // 2 // 4 * 4
        reg = cv2.imread(str(data / "realsr_camera" / "LR_registered" / p.name), cv2.IMREAD_COLOR)
        lr = cv2.resize(reg[y0:y0 + h, x0:x0 + w], (w // 4, h // 4), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(work / "HR" / f"realsr_{p.name}"), hr[y0:y0 + h, x0:x0 + w])
        cv2.imwrite(str(work / "LR" / f"realsr_{p.name}"), lr)
        mp += h * w / 1e6
    (work / "datasets.yaml").write_text(
        f"datasets:\n  benchpipe:\n    kind: real\n    lr: {work / 'LR'}\n    hr: {work / 'HR'}\n    scale: 4\n")
    return mp


def prepare_weights(work: Path, torch_home: Path) -> Path:
    """The genuine weights as a BasicSR state dict, and the model files pyiqa/lpips would download."""
    import torch

    from rsr_bench.methods.layouts import load_checkpoint
    from rsr_bench.methods.weights import resolve
    from rsr_bench.methods.cards import load_method_specs

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_metrics import prepare_pyiqa_home

    path, _prov, layout = resolve(load_method_specs()[METHOD], {}, download=True)
    out = work / "basicsr_rrdbnet.pth"
    torch.save(load_checkpoint(path, layout=layout).net.state_dict(), out)
    prepare_pyiqa_home(torch_home)
    return out


def _env(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def run_researchers(work: Path, weights: Path, torch_home: Path, threads: int) -> dict:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "researchers", str(work), str(weights), str(torch_home)],
                         capture_output=True, text=True, env=_env(threads), check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["stages"]["total_s"] = time.perf_counter() - t0  # with interpreter start, like rsr-bench's
    return result


def run_rsr_bench(work: Path, store: Path, threads: int, extra: list[str]) -> dict:
    """One `rsr-bench run` into ``store``; stage times from the cell manifest."""
    exe = Path(sys.executable).with_name("rsr-bench")
    cmd = [str(exe), "run", "--methods", METHOD, "--datasets", "benchpipe", "--metrics", ",".join(METRICS),
           "--datasets-file", str(work / "datasets.yaml"), "--store", str(store), "--quiet", *extra]
    t0 = time.perf_counter()
    subprocess.run(cmd, capture_output=True, text=True, env=_env(threads), check=True)
    total = time.perf_counter() - t0
    from rsr_bench.store import read_manifest

    manifest = read_manifest(store, METHOD, "benchpipe") or {}
    timings = manifest.get("timings", {})
    return {"stages": {"predict_s": timings.get("predict_s", 0.0), "metrics_s": timings.get("metrics_s", 0.0),
                       "total_s": total}, "manifest": manifest}


def _stage_table(best: dict[str, dict[str, float]], mp: float) -> list[str]:
    rows = ["| stage | researchers' pipeline | rsr-bench (default precision) | ratio (theirs / ours) |", "|---|---|---|---|"]
    for key, label, per_mp in (("total_s", "whole run (s)", False), ("predict_s", "predict (s/MP)", True),
                               ("metrics_s", "six metrics (s/MP)", True), ("fixed_s", "fixed cost (s)", False)):
        a, b = best["researchers"][key], best["rsr-bench"][key]
        scale = 1 / mp if per_mp else 1.0
        rows.append(f"| {label} | {a * scale:.2f} | {b * scale:.2f} | {a / b:.2f}x |")
    return rows


def _agreement(theirs: dict[str, dict[str, float]], store: Path) -> list[str]:
    import math

    rows = ["| metric | max abs difference over images | images |", "|---|---|---|"]
    import rsr_bench

    ours: dict[str, dict[str, float]] = {}
    for r in rsr_bench.load_results(store).itertuples():
        ours.setdefault(r.image, {})[r.metric] = r.value
    for m in METRICS:
        diffs = [abs(theirs[i][m] - ours[i][m]) for i in theirs if i in ours and m in ours[i]
                 and math.isfinite(theirs[i][m])]
        rows.append(f"| {m} | {max(diffs) if diffs else float('nan'):.2e} | {len(diffs)} |")
    return rows


def _machine() -> str:
    from rsr_bench.methods.engine import cpu_flags

    info = cpu_flags()
    return (f"{info['model']}, {os.cpu_count()} CPUs visible, flags {' '.join(info['flags'])}, torch "
            f"{info['torch_capability']}, native bf16: {info['native_bf16']}, load average {os.getloadavg()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bsd", type=int, default=3, help="BSD100 images (480x320 outputs)")
    ap.add_argument("--realsr", type=int, default=1, help="RealSR camera crops")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rsr-args", default="", help="extra `rsr-bench run` options, e.g. '--precision fp32'")
    args = ap.parse_args()
    data = Path(os.environ.get("RSR_BENCH_REFERENCE_DATA", "../shared/data"))
    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    torch_home = work / "torch_home"
    mp = prepare_images(work, data, args.bsd, args.realsr)
    weights = prepare_weights(work, torch_home)
    print(f"machine: {_machine()}\nimages: {len(list((work / 'LR').iterdir()))}, {mp:.3f} MP of output; "
          f"threads {args.threads}; best of {args.repeat}, interleaved", flush=True)
    best: dict[str, dict[str, float]] = {"researchers": {}, "rsr-bench": {}}
    theirs: dict = {}
    store = work / "store-0"
    for r in range(args.repeat):
        results = {"researchers": run_researchers(work, weights, torch_home, args.threads)}
        theirs = results["researchers"]["values"]
        store = work / f"store-{r}"
        results["rsr-bench"] = run_rsr_bench(work, store, args.threads, args.rsr_args.split())
        for side, res in results.items():
            st = res["stages"]
            st["fixed_s"] = st["total_s"] - st["predict_s"] - st["metrics_s"]
            print(f"  repeat {r} {side}: " + ", ".join(f"{k} {v:.2f}" for k, v in st.items()), flush=True)
            for k, v in st.items():
                best[side][k] = min(best[side].get(k, v), v)
    engine = results["rsr-bench"]["manifest"]["method"]["provenance"].get("engine", {})
    print(f"rsr-bench engine: precision {engine.get('precision')} ({engine.get('precision_reason')}), "
          f"threads {engine.get('threads')}")
    print("\n".join(_stage_table(best, mp)))
    t0 = time.perf_counter()
    run_rsr_bench(work, store, args.threads, args.rsr_args.split())
    print(f"second `rsr-bench run` on the finished store: {time.perf_counter() - t0:.2f} s")
    print("\n".join(_agreement(theirs, store)))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "researchers":
        researchers(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        main()
