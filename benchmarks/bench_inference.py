"""Throughput of RRDBNet x4 inference: our engine vs a plain eager whole-image fp32 forward.

The plain path is how the official test scripts run (``with torch.no_grad(): net(x)``, NCHW,
fp32, whole image). Our engine adds ``inference_mode``, ``channels_last`` and low-precision
convolutions with an fp32 residual stream (see ``rsr_bench/inference.py``). Same network,
same weights, same input; agreement is the PSNR between the uint8-quantised outputs.

Usage::

    python benchmarks/bench_inference.py                       # CPU, 64x64 LR, fp32 + bf16
    python benchmarks/bench_inference.py --size 96 --repeats 5
    python benchmarks/bench_inference.py --peak-memory 512     # peak memory of a 512x512 input
    python benchmarks/bench_inference.py --peak-memory 2000 --paths auto --nb 1 --real-batches 2
                                           # a run's engine: tile chosen from free memory
    python benchmarks/bench_inference.py --device cuda --peak-memory 512
                                           # GPU: 256x256 LR, fp32 / bf16 / fp16, then peak memory

Weights: the genuine Impressionism DF2K-JPEG mirror when it is in the asset cache (or
``--weights PATH``), otherwise a seeded random RRDBNet (agreement numbers then describe random
weights, and the script says so). Input: a crop of ``--image`` or of a RealSRSet image under
``RSR_BENCH_REFERENCE_DATA``, else a smooth synthetic image. MP/s counts SR output pixels.

Measured 2026-11-26 on the dev machine (2 AMD EPYC Zen 4 cores with AVX512-BF16, shared with
other jobs, torch 2.14.1; genuine DF2K-JPEG weights, RealSRSet dog.png crops; best of N,
interleaved; agreement = uint8 PSNR vs the plain path):

=========== ============== ============== ==============
LR size     plain fp32     engine fp32    engine bf16
=========== ============== ============== ==============
64x64       0.080 MP/s     0.088 (1.10x)  0.171 (2.13x), 51.6 dB
128x128     0.070 MP/s     0.084 (1.21x)  0.165 (2.37x), 50.7 dB
=========== ============== ============== ==============

Peak memory of one 512x512 input (CPU, VmHWM growth during the forward): plain fp32 +3.26 GiB
(253 s), engine fp32 +2.26 GiB (197 s), engine bf16 +1.48 GiB (116 s), under load.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from rsr_bench.methods.engine import EngineOptions, RRDBEngine
from rsr_bench.methods.rrdbnet import RRDBNet


def load_net(weights: str | None) -> tuple[RRDBNet, str]:
    from rsr_bench.methods.layouts import load_checkpoint

    if weights:
        return load_checkpoint(weights).net, weights
    try:
        from rsr_bench.fetch.assets import asset_path, is_cached

        if is_cached("impressionism-df2k-jpeg-x4"):
            return load_checkpoint(asset_path("impressionism-df2k-jpeg-x4")).net, "impressionism-df2k-jpeg-x4 (mirror)"
    except Exception as exc:  # noqa: BLE001 - a benchmark should still run without the asset system
        print(f"# asset cache not usable ({exc}); using random weights", file=sys.stderr)
    torch.manual_seed(0)
    return RRDBNet().eval(), "random init (seed 0): agreement numbers are for random weights"


def load_input(size: int, image: str | None) -> tuple[torch.Tensor, str]:
    path = Path(image) if image else None
    ref = os.environ.get("RSR_BENCH_REFERENCE_DATA")
    if path is None and ref and (Path(ref) / "realsrset/LR/dog.png").is_file():
        path = Path(ref) / "realsrset/LR/dog.png"
    if path is not None:
        from rsr_bench.image import read_image

        img = read_image(path)[None]
        h, w = img.shape[-2:]
        if h < size or w < size:
            reps = (math.ceil(size / h), math.ceil(size / w))
            img = img.repeat(1, 1, *reps)
        y0, x0 = (img.shape[-2] - size) // 2, (img.shape[-1] - size) // 2
        return img[..., y0 : y0 + size, x0 : x0 + size].contiguous(), f"{path.name} centre crop"
    g = torch.Generator().manual_seed(0)
    low = torch.rand(1, 3, max(2, size // 8), max(2, size // 8), generator=g)
    img = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    return (img + 0.02 * torch.randn(img.shape, generator=g)).clamp(0, 1), "synthetic smooth + noise"


def psnr_u8(a: torch.Tensor, b: torch.Tensor) -> float:
    qa = (a.float().clamp(0, 1) * 255).round()
    qb = (b.float().clamp(0, 1) * 255).round()
    mse = float(((qa - qb) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_forward(net: RRDBNet, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """The official scripts' way: eager, NCHW, fp32, whole image, no_grad."""

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return net(x.to(device)).float()

    return run


def timed(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, float]:
    sync(device)
    t = time.perf_counter()
    y = fn(x)
    sync(device)
    return y, time.perf_counter() - t


def build_runners(net: RRDBNet, device: torch.device, precisions: list[str]) -> dict[str, Callable]:
    import copy

    runners: dict[str, Callable] = {"plain fp32": plain_forward(copy.deepcopy(net).to(device), device)}
    for p in precisions:
        eng = RRDBEngine(copy.deepcopy(net), device=device, options=EngineOptions(precision=p, tile=0))
        runners[f"engine {p}"] = eng
    return runners


def benchmark(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    if not args.size:
        args.size = 256 if device.type == "cuda" else 64
    if args.threads:
        torch.set_num_threads(args.threads)
    net, wdesc = load_net(args.weights)
    x, idesc = load_input(args.size, args.image)
    precisions = args.precisions or (["fp32", "bf16", "fp16"] if device.type == "cuda" else ["fp32", "bf16"])
    runners = build_runners(net, device, precisions)
    out_mp = x.shape[-1] * x.shape[-2] * 16 / 1e6
    print(f"# RRDBNet x4 on {device} ({torch.get_num_threads()} threads, torch {torch.__version__})")
    if device.type == "cuda":
        print(f"# GPU: {torch.cuda.get_device_name(device)}; cudnn.allow_tf32={torch.backends.cudnn.allow_tf32} "
              "(PyTorch default: 'fp32' convs use TF32 on Ampere+, for both paths)")
    print(f"# weights: {wdesc}; input: {args.size}x{args.size} LR ({idesc}); output {out_mp:.4f} MP")
    outputs: dict[str, torch.Tensor] = {}
    times: dict[str, list[float]] = {k: [] for k in runners}
    for name, fn in runners.items():  # warm-up (oneDNN / cuDNN primitive creation)
        outputs[name] = timed(fn, x, device)[0].cpu()
    for _ in range(args.repeats):  # interleaved, so load from other processes hits all equally
        for name, fn in runners.items():
            times[name].append(timed(fn, x, device)[1])
    base = min(times["plain fp32"])
    rows = []
    for name in runners:
        best = min(times[name])
        med = sorted(times[name])[len(times[name]) // 2]
        agree = psnr_u8(outputs[name], outputs["plain fp32"]) if name != "plain fp32" else math.inf
        rows.append((name, out_mp / best, out_mp / med, base / best, agree))
    print(f"{'path':<14} {'MP/s best':>10} {'MP/s median':>12} {'speed-up':>9} {'agreement dB':>13}")
    for name, mps, mps_med, ratio, agree in rows:
        a = "ref" if math.isinf(agree) and name == "plain fp32" else f"{agree:.2f}"
        print(f"{name:<14} {mps:>10.4f} {mps_med:>12.4f} {ratio:>8.2f}x {a:>13}")
    if args.json:
        print(json.dumps({"device": str(device), "size": args.size, "weights": wdesc, "rows": rows}))
    if device.type == "cuda" and args.peak_memory:
        for p in ["plain", *precisions]:
            print(peak_memory_cuda(net, device, args.peak_memory, p))


# ------------------------------------------------------------------------------ peak memory


def _rss_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def peak_memory_cuda(net: RRDBNet, device: torch.device, size: int, path: str) -> str:
    import copy

    x = torch.rand(1, 3, size, size)
    if path == "plain":
        fn = plain_forward(copy.deepcopy(net).to(device), device)
    else:
        fn = RRDBEngine(copy.deepcopy(net), device=device, options=EngineOptions(precision=path, max_memory_gb=1e6))
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    y, dt = timed(fn, x, device)
    peak = torch.cuda.max_memory_allocated(device)
    return (f"peak GPU memory {size}x{size} {path}: {(peak - before) / 2**30:.2f} GiB above the weights "
            f"({peak / 2**30:.2f} GiB total), {dt:.2f} s, {y.shape[-1] * y.shape[-2] / 1e6 / dt:.3f} MP/s")


def _auto_engine(net: RRDBNet, size: int, real_batches: int) -> tuple[Callable, dict]:
    """The engine as a run builds it (auto precision, tile chosen from free memory). With
    ``real_batches`` > 0 only that many tile batches run the network; the others return zeros of
    the same shape, so the whole output is still written (every page touched) and the peak, which
    is reached from the first batch on (activations are freed between batches), is the real one."""
    eng = RRDBEngine(net, device="cpu")
    info = {"tile": eng.plan_tile(1, size, size), "budget_gib": (eng.memory_budget() or 0) / 2**30,
            "precision": eng.precision}
    if real_batches and info["tile"]:
        real, calls = eng._run, [0]

        def run(x: torch.Tensor) -> torch.Tensor:
            calls[0] += 1
            if calls[0] <= real_batches:
                return real(x)
            return torch.zeros(x.shape[0], 3, x.shape[2] * eng.scale, x.shape[3] * eng.scale)

        eng._run = run  # type: ignore[method-assign]
    return eng, info


def _child_peak(size: int, path: str, weights: str | None, nb: int = 0, real_batches: int = 0) -> None:
    """Run once in a fresh process and report VmHWM (peak RSS) growth during the forward."""
    net, _ = load_net(weights) if not nb else (RRDBNet(nb=nb).eval(), f"random, nb={nb}")
    x = torch.rand(1, 3, size, size)
    info: dict = {}
    if path == "plain":
        fn = plain_forward(net, torch.device("cpu"))
    elif path == "auto":
        fn, info = _auto_engine(net, size, real_batches)
    else:
        # max_memory_gb huge: measure the whole-image pass, not the auto-tiling fallback
        fn = RRDBEngine(net, device="cpu", options=EngineOptions(precision=path, max_memory_gb=1e6))
    rss0 = _rss_kib("VmRSS")
    t = time.perf_counter()
    fn(x)
    dt = time.perf_counter() - t
    print(json.dumps({"path": path, "size": size, "rss_before_gib": rss0 / 2**20,
                      "peak_gib": _rss_kib("VmHWM") / 2**20, "seconds": dt, **info}))


def peak_memory_cpu(args: argparse.Namespace) -> None:
    for path in args.paths or ["plain", "fp32", "bf16"]:
        cmd = [sys.executable, __file__, "--_child", str(args.peak_memory), path, "--nb", str(args.nb),
               "--real-batches", str(args.real_batches)]
        if args.weights:
            cmd += ["--weights", args.weights]
        res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        plan = (f", tile {res['tile'] or 'whole image'} chosen for a {res['budget_gib']:.2f} GiB budget "
                f"({res['precision']})" if "tile" in res else "")
        print(f"{path:<6} {args.peak_memory}x{args.peak_memory}: peak RSS {res['peak_gib']:.2f} GiB "
              f"(+{res['peak_gib'] - res['rss_before_gib']:.2f} GiB during the forward), {res['seconds']:.1f} s{plan}",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", type=int, default=0, help="LR side in pixels (output is 4x); default 64 on CPU, 256 on GPU")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--precisions", nargs="*")
    ap.add_argument("--weights")
    ap.add_argument("--image")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--peak-memory", type=int, default=0, metavar="SIZE",
                    help="CPU: only measure peak memory of a SIZExSIZE input (subprocess per path); "
                         "CUDA: also report peak memory after the throughput table")
    ap.add_argument("--paths", nargs="*", help="peak-memory paths: plain fp32 bf16 fp16 auto (a run's engine: "
                                                "auto precision, tile from free memory)")
    ap.add_argument("--nb", type=int, default=0, help="peak memory with a random nb-block net (memory does not "
                                                      "depend on nb, compute does); 0: the genuine weights")
    ap.add_argument("--real-batches", type=int, default=0, help="auto path: run the network on only the first K "
                                                                "tile batches (see _auto_engine)")
    ap.add_argument("--_child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        _child_peak(int(args._child[0]), args._child[1], args.weights, args.nb, args.real_batches)
    elif args.peak_memory and args.device == "cpu":
        peak_memory_cpu(args)
    else:
        benchmark(args)


if __name__ == "__main__":
    main()
