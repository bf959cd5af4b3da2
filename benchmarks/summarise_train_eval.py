"""Markdown tables of a results store for docs/rsr-reproduction.md: means with image-level spread,
and paired per-image differences between two methods.

Reads only ``<store>/cells/<method>/<dataset>/records/*.json`` (the per-image records ``rsr-bench run``
writes), so it runs anywhere the store is.

    .venv/bin/python benchmarks/summarise_train_eval.py runs/eval_store \
        --pair trained.small_cpu_rsr trained.small_cpu_esrgan --pair trained.small_cpu_esrgan impressionism.df2k
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path

LOWER_IS_BETTER = {"lpips", "niqe", "brisque", "piqe"}


def load(store: Path) -> dict[tuple[str, str, str], dict[str, float]]:
    """(method, dataset, metric) -> {image: value}."""
    out: dict[tuple[str, str, str], dict[str, float]] = defaultdict(dict)
    for rec_path in sorted(store.glob("cells/*/*/records/*.json")):
        method, dataset = rec_path.parent.parent.parent.name, rec_path.parent.parent.name
        rec = json.loads(rec_path.read_text())
        for metric, value in rec.get("metrics", {}).items():
            out[(method, dataset, metric)][rec["image"]] = float(value)
    return out


def stats(values: list[float]) -> tuple[float, float, float, float]:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std, min(values), max(values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("store", type=Path)
    ap.add_argument("--methods", nargs="*")
    ap.add_argument("--pair", nargs=2, action="append", default=[], metavar=("A", "B"))
    args = ap.parse_args()
    data = load(args.store)
    methods = args.methods or sorted({m for m, _, _ in data})
    datasets = sorted({d for _, d, _ in data})
    metrics = [m for m in ("psnr", "ssim", "lpips", "niqe") if any(k[2] == m for k in data)]
    for ds in datasets:
        ms = [m for m in metrics if any((meth, ds, m) in data for meth in methods)]
        n = max(len(data.get((meth, ds, ms[0]), {})) for meth in methods) if ms else 0
        print(f"\n**{ds}** ({n} images; mean ± sample std over images, [min, max])\n")
        print("| method | " + " | ".join(ms) + " |")
        print("|---|" + "---|" * len(ms))
        for meth in methods:
            cells = []
            for m in ms:
                vals = list(data.get((meth, ds, m), {}).values())
                if not vals:
                    cells.append("—")
                    continue
                mean, std, lo, hi = stats(vals)
                digits = 2 if m in ("psnr", "niqe") else 4
                cells.append(f"{mean:.{digits}f} ± {std:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]")
            print(f"| {meth} | " + " | ".join(cells) + " |")
    for a, b in args.pair:
        print(f"\n**{a} minus {b}, paired per image** (mean ± sample std of the differences; "
              f"wins = images where {a} is better)\n")
        print("| dataset | " + " | ".join(metrics) + " |")
        print("|---|" + "---|" * len(metrics))
        for ds in datasets:
            cells = []
            for m in metrics:
                va, vb = data.get((a, ds, m), {}), data.get((b, ds, m), {})
                common = sorted(set(va) & set(vb))
                if not common:
                    cells.append("—")
                    continue
                diffs = [va[i] - vb[i] for i in common]
                mean, std, _, _ = stats(diffs)
                better = sum((d < 0) if m in LOWER_IS_BETTER else (d > 0) for d in diffs)
                digits = 2 if m in ("psnr", "niqe") else 4
                cells.append(f"{mean:+.{digits}f} ± {std:.{digits}f} ({better}/{len(diffs)})")
            print(f"| {ds} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
