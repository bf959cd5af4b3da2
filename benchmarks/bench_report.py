"""Time `build_report` on a synthetic store of 4 methods x 4 datasets x 100 images.

The issue asks for < 10 s on the development machine. The store (small PNGs, synthetic metric
rows) is built first and not timed; then the full report (HTML with plots and grids, CSV,
Markdown, LaTeX) is rendered in a fresh interpreter, timed end to end including imports, as
`rsr-bench report` would run.

    .venv/bin/python benchmarks/bench_report.py [--images 100] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METHODS = {
    "bicubic.default": ("bicubic", "default", (), 0.0),
    "impressionism.ntire": ("impressionism", "ntire", ("NTIRE_syn",), 0.8),
    "esrgan.div2k": ("esrgan", "div2k", ("DIV2K",), 0.3),
    "rsr.div2k": ("rsr", "div2k", ("DIV2K",), 1.0),
}
DATASETS = {
    "NTIRE_syn": (True, (), "synthetic"),
    "AIM_syn": (True, (), "synthetic"),
    "DPED_rw": (False, ("DPED",), "real"),
    "FACES_rw": (False, (), "real"),
}

RENDER = """
import resource, sys, time
t0 = time.perf_counter()
from rsr_bench.report import build_report
t1 = time.perf_counter()
build_report(sys.argv[1], sys.argv[2])
t2 = time.perf_counter()
ru = resource.getrusage(resource.RUSAGE_SELF)
print(f"{t1 - t0:.2f} {t2 - t1:.2f} {ru.ru_utime + ru.ru_stime:.2f}")
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--size", default="128x96", help="SR width x height of the synthetic PNGs")
    ap.add_argument("--keep", type=Path, default=None, help="keep the store and report under DIR")
    ap.add_argument("--limit", type=float, default=10.0, help="fail (exit 1) above this many seconds")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test suite's store builder
    from synthetic_store import build_synthetic_store

    w, h = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        store, out = base / "store", base / "report"
        t = time.perf_counter()
        build_synthetic_store(store, methods=METHODS, datasets=DATASETS, n_images=args.images, size=(w, h),
                              skipped={}, failed={("esrgan.div2k", "AIM_syn", "img007")})
        print(f"store: {len(METHODS)} methods x {len(DATASETS)} datasets x {args.images} images "
              f"built in {time.perf_counter() - t:.1f} s (not timed)")
        t = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", RENDER, str(store), str(out)], capture_output=True, text=True, check=False)
        total = time.perf_counter() - t
        if res.returncode:
            print(res.stderr)
            return 2
        imp, render, cpu = res.stdout.split()
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
        load = os.getloadavg()[0]
        print(f"report: {total:.2f} s wall end to end (imports {imp} s, build_report {render} s), "
              f"{cpu} s CPU; load average {load:.1f} on {os.cpu_count()} CPUs; {size:.1f} MB in {out}")
        return 0 if total < args.limit else 1


if __name__ == "__main__":
    sys.exit(main())
