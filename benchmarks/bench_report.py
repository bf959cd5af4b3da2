"""Time `build_report` on a synthetic store of 4 methods x 4 datasets x 100 images.

Issue 15 asks for < 3 s on the development machine. The store (small PNGs, synthetic metric
rows) is built first and not timed (or reused with --store); then the full report (HTML with
plots and grids, CSV, Markdown, LaTeX) is rendered in a fresh interpreter, timed end to end
including imports, as `rsr-bench report` would run: a first build into a new folder, then a
rebuild over it. ``--tree DIR`` renders with the rsr_bench of another checkout (e.g. an older
commit exported with ``git archive``) so before/after runs interleave; best of --repeat.

    .venv/bin/python benchmarks/bench_report.py [--images 100] [--keep DIR] [--store DIR]
        [--repeat 3] [--tree OLD_CHECKOUT ...]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
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


def _render(store: Path, out: Path, tree: Path | None) -> tuple[float, str]:
    """Wall seconds of one report build in a fresh interpreter, and its 'imports build cpu' line."""
    env = dict(os.environ, PYTHONPATH=str(tree)) if tree else None
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", RENDER, str(store), str(out)], capture_output=True, text=True,
                         check=False, env=env, cwd=tree)
    total = time.perf_counter() - t
    if res.returncode:
        raise RuntimeError(f"report build failed ({tree or 'this tree'}):\n{res.stderr}")
    return total, res.stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--size", default="128x96", help="SR width x height of the synthetic PNGs")
    ap.add_argument("--keep", type=Path, default=None, help="keep the store and report under DIR")
    ap.add_argument("--store", type=Path, default=None, help="reuse this store (built by an earlier --keep)")
    ap.add_argument("--repeat", type=int, default=1, help="repeats per tree, interleaved; the best is reported")
    ap.add_argument("--tree", type=Path, action="append", default=[],
                    help="also time the rsr_bench of this checkout (repeatable)")
    ap.add_argument("--limit", type=float, default=3.0, help="fail (exit 1) above this many seconds (first build)")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test suite's store builder
    from synthetic_store import build_synthetic_store

    w, h = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        store = args.store or base / "store"
        if args.store is None:
            t = time.perf_counter()
            build_synthetic_store(store, methods=METHODS, datasets=DATASETS, n_images=args.images, size=(w, h),
                                  skipped={}, failed={("esrgan.div2k", "AIM_syn", "img007")})
            print(f"store: {len(METHODS)} methods x {len(DATASETS)} datasets x {args.images} images "
                  f"built in {time.perf_counter() - t:.1f} s (not timed)")
        trees: list[Path | None] = [None, *(t.resolve() for t in args.tree)]
        best: dict[tuple[int, str], float] = {}
        for rep in range(args.repeat):
            for k, tree in enumerate(trees):
                out = base / f"report{k}"
                shutil.rmtree(out, ignore_errors=True)
                for kind in ("first build", "rebuild"):
                    total, parts = _render(store, out, tree)
                    imp, render, cpu = parts.split()
                    best[(k, kind)] = min(best.get((k, kind), math.inf), total)
                    print(f"[{rep + 1}] {tree or 'this tree'}: {kind} {total:.2f} s wall (imports {imp} s, "
                          f"build_report {render} s, {cpu} s CPU), load average {os.getloadavg()[0]:.1f}")
        size = sum(p.stat().st_size for p in (base / "report0").rglob("*") if p.is_file()) / 1e6
        print(f"best of {args.repeat} on {os.cpu_count()} CPUs; report {size:.1f} MB")
        for (k, kind), v in best.items():
            ratio = f" (this tree {v / best[(0, kind)]:.1f}x faster)" if k else ""
            print(f"  {trees[k] or 'this tree'}: {kind} {v:.2f} s{ratio}")
        return 0 if best[(0, "first build")] < args.limit else 1


if __name__ == "__main__":
    sys.exit(main())
