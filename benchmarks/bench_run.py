"""Full-run throughput of ``rsr-bench run`` (predict + the 6 default metrics + PNG + records), in
images per minute, for this checkout against another commit of the project.

Each variant runs ``python -m rsr_bench run`` in a fresh process on a fresh store over the same
synthetic paired set (LR ``--size`` WxH, default 510x339 like the RealSRSet/DIV2K LR inputs;
HR 4x), with ``PYTHONPATH`` pointing at the variant's source tree and the same virtual
environment. Runs are interleaved (base, this, base, this, ...) and the best of ``--repeats`` is
kept, because the development machine is shared. Throughput counts the whole process, model
build and imports included, so use enough ``--images`` to amortise them.

Usage::

    git worktree add /tmp/base <commit>            # the tree to compare against (once)
    python benchmarks/bench_run.py --base /tmp/base --method bicubic.x4 --images 8
    python benchmarks/bench_run.py --base /tmp/base --method impressionism.df2k_jpeg --device cuda --images 64
    python benchmarks/bench_run.py --nproc 8 ...   # this tree under torchrun with 8 ranks (GPU: one per rank)
    # one tree, two settings (e.g. on a GPU: plain vs batched + compiled), same interleaving:
    python benchmarks/bench_run.py --base . --this-args "--batch 8 --compile" --method impressionism.df2k_jpeg \
        --device cuda --images 64

Besides the wall time of the whole process it reports, from the run's manifests, the seconds the
runner spent in predict (forward + PNG writes) and in metrics: ``wall / predict`` is how much
metrics, I/O and fixed costs add to the compute (issue 11 asks <= 1.5 on a GPU).

It prints one JSON line per run and a summary with the ratio, the load average before and after
and the CPU flags that decide the precision (avx2, avx512f, avx512_bf16, amx_bf16).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parents[1]


def make_set(root: Path, n: int, size: tuple[int, int]) -> Path:
    """``n`` smooth random paired images (LR ``size``, HR 4x) and a datasets file naming them."""
    rng = np.random.default_rng(0)
    w, h = size
    for i in range(n):
        base = rng.random((h // 8 + 2, w // 8 + 2, 3)).astype(np.float32)
        hr = Image.fromarray((base * 255).astype(np.uint8)).resize((4 * w, 4 * h), Image.BICUBIC)
        (root / "HR").mkdir(parents=True, exist_ok=True)
        (root / "LR").mkdir(parents=True, exist_ok=True)
        hr.save(root / "HR" / f"im{i:03d}.png")
        hr.resize((w, h), Image.BICUBIC).save(root / "LR" / f"im{i:03d}.png")
    sets = root / "sets.yaml"
    sets.write_text(f"datasets:\n  BenchSet:\n    lr: {root}/LR\n    hr: {root}/HR\n    scale: 4\n")
    return sets


def cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return sorted(f for f in flags if f in {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})


def stage_seconds(store: Path) -> dict[str, float]:
    """predict_s and metrics_s summed over the store's manifests (every rank's fragment)."""
    out = {"predict_s": 0.0, "metrics_s": 0.0}
    for path in store.glob("cells/*/*/manifest*.json"):
        timings = json.loads(path.read_text()).get("timings") or {}
        for key in out:
            out[key] += float(timings.get(key, 0.0))
    return out


def one_run(tree: Path, sets: Path, args: argparse.Namespace, nproc: int, extra: str) -> tuple[float, dict]:
    """Seconds for one whole ``run`` of the set by the source tree ``tree`` on a fresh store, and
    the runner's own per-stage seconds."""
    store = Path(tempfile.mkdtemp(prefix="bench-store-"))
    cmd = ["-m", "rsr_bench", "run", "--methods", args.method, "--datasets", "BenchSet", "--metrics", args.metrics,
           "--datasets-file", str(sets), "--device", args.device, "--quiet", "--store", str(store), *extra.split()]
    if nproc > 1:
        cmd = [str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc_per_node", str(nproc), *cmd]
    else:
        cmd = [sys.executable, *cmd]
    env = {**os.environ, "PYTHONPATH": str(tree), "RSR_BENCH_ROOT": str(tree)}
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    stages = stage_seconds(store)
    shutil.rmtree(store, ignore_errors=True)
    if proc.returncode != 0:
        raise SystemExit(f"{tree}: run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds, stages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", type=Path, help="source tree to compare against (a git worktree); omitted: this tree only")
    ap.add_argument("--method", default="bicubic.x4")
    ap.add_argument("--metrics", default="default")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--size", default="510x339", help="LR size WxH")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS for the runs (0: leave as is)")
    ap.add_argument("--nproc", type=int, default=1, help="ranks for this tree's runs (torchrun)")
    ap.add_argument("--base-args", default="", help="extra `run` options for the base runs")
    ap.add_argument("--this-args", default="", help="extra `run` options for this tree's runs (e.g. '--batch 8')")
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    variants = ([("base", args.base.resolve(), 1, args.base_args)] if args.base else []) + [
        ("this", HERE, args.nproc, args.this_args)]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        sets = make_set(Path(tmp), args.images, size)  # type: ignore[arg-type]
        best: dict[str, float] = {}
        for rep in range(args.repeats):
            for name, tree, nproc, extra in variants:
                s, stages = one_run(tree, sets, args, nproc, extra)
                best[name] = min(best.get(name, s), s)
                print(json.dumps({"variant": name, "args": extra, "repeat": rep, "seconds": round(s, 2),
                                  "images_per_min": round(60 * args.images / s, 2),
                                  **{k: round(v, 2) for k, v in stages.items()},
                                  "wall_over_predict": round(s / stages["predict_s"], 2) if stages["predict_s"] else None}),
                      flush=True)
    summary = {"method": args.method, "metrics": args.metrics, "device": args.device, "images": args.images,
               "lr_size": args.size, "best_images_per_min": {k: round(60 * args.images / v, 2) for k, v in best.items()},
               "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()],
               "cpu_flags": cpu_flags(), "threads": args.threads or os.environ.get("OMP_NUM_THREADS")}
    if "base" in best:
        summary["ratio_this_vs_base"] = round(best["base"] / best["this"], 3)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
