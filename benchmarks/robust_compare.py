"""Robustness tables (and one plot) of the RSR-vs-baseline experiment, from a robustness store.

Reads the per-image records of ``rsr-bench robust`` cells (``<base>~<family>@<severity>``) and
prints, for docs/rsr-reproduction.md: per family and severity the mean ± image-level std of each
method; each method's degradation (corrupted - clean, paired per image, averaged over the
severities present); and method A minus method B paired per image, both in absolute quality
and in degradation ("does A degrade less than B?"), with the number of images where A is better.
Why a script and not the report: the report's robustness section gives means and mCE; the paired
per-image view is what says whether a difference between two models is more than image noise.

    .venv/bin/python benchmarks/robust_compare.py runs/robust_store --pair trained.small_cpu_rsr trained.small_cpu_esrgan \
        --plot docs/rsr-robustness.png
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from summarise_train_eval import LOWER_IS_BETTER, load, stats  # noqa: E402

DIGITS = {"psnr": 2, "ssim": 3, "lpips": 3}


def _level(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _order(level: int | str) -> float:
    """Severity 1-5, or an attack budget such as ``eps4`` (sorted by its number)."""
    digits = "".join(ch for ch in str(level) if ch.isdigit() or ch == ".")
    return float(digits) if digits else 0.0


def corrupted(datasets: set[str], base: str) -> dict[str, dict[int | str, str]]:
    """family -> level -> dataset name, for the ``base~family@level`` sets present (corruptions
    ``jpeg@3``, attacks ``pgd@eps4``)."""
    out: dict[str, dict[int | str, str]] = defaultdict(dict)
    for d in datasets:
        head, sep, tail = d.partition("~")
        if head == base and sep and "@" in tail:
            family, _, level = tail.partition("@")
            out[family][_level(level)] = d
    return {f: dict(sorted(v.items(), key=lambda kv: _order(kv[0]))) for f, v in sorted(out.items())}


def _fmt(values: list[float], metric: str, signed: bool = False) -> str:
    if not values:
        return "—"
    mean, std, _, _ = stats(values)
    k = DIGITS.get(metric, 3)
    return f"{mean:+.{k}f} ± {std:.{k}f}" if signed else f"{mean:.{k}f} ± {std:.{k}f}"


def degradation(data: dict, method: str, base: str, sets: dict[int, str], metric: str) -> dict[str, float]:
    """image -> mean over severities of (corrupted - clean), only images scored at every severity."""
    clean = data.get((method, base, metric), {})
    per = [data.get((method, d, metric), {}) for d in sets.values()]
    common = set(clean).intersection(*per) if per else set()
    return {i: sum(p[i] - clean[i] for p in per) / len(per) for i in sorted(common)}


def level_table(data: dict, methods: list[str], base: str, fams: dict, metric: str) -> list[str]:
    lines = [f"| input | n | {' | '.join(methods)} |", "|---|---|" + "---|" * len(methods)]
    rows = [("clean", base)] + [(f"{f} @{s}", d) for f, sets in fams.items() for s, d in sets.items()]
    for label, d in rows:
        n = max(len(data.get((m, d, metric), {})) for m in methods)
        lines.append(f"| {label} | {n} | " + " | ".join(_fmt(list(data.get((m, d, metric), {}).values()), metric)
                                                          for m in methods) + " |")
    return lines


def degradation_table(data: dict, methods: list[str], base: str, fams: dict, metrics: list[str]) -> list[str]:
    head = [f"{m} Δ{x}" for x in metrics for m in methods]
    lines = [f"| family | {' | '.join(head)} |", "|---|" + "---|" * len(head)]
    for f, sets in fams.items():
        cells = [_fmt(list(degradation(data, m, base, sets, x).values()), x, signed=True) for x in metrics for m in methods]
        lines.append(f"| {f} ({','.join(map(str, sets))}) | " + " | ".join(cells) + " |")
    return lines


def _paired(va: dict[str, float], vb: dict[str, float], metric: str) -> str:
    common = sorted(set(va) & set(vb))
    if not common:
        return "—"
    diffs = [va[i] - vb[i] for i in common]
    better = sum((x < 0) if metric in LOWER_IS_BETTER else (x > 0) for x in diffs)
    return f"{_fmt(diffs, metric, signed=True)} ({better}/{len(diffs)})"


def pair_table(data: dict, a: str, b: str, base: str, fams: dict, metrics: list[str]) -> list[str]:
    """A - B per family: the quality under corruption (mean over severities) and the degradation."""
    head = [f"{x} under corruption" for x in metrics] + [f"Δ{x} (degradation)" for x in metrics]
    lines = [f"| family | {' | '.join(head)} |", "|---|" + "---|" * len(head)]
    clean = [_paired(data.get((a, base, x), {}), data.get((b, base, x), {}), x) for x in metrics]
    lines.append("| clean | " + " | ".join(clean + ["—"] * len(metrics)) + " |")
    for f, sets in fams.items():
        level = []
        for x in metrics:
            da, db = ({i: v + data[(m, base, x)][i] for i, v in degradation(data, m, base, sets, x).items()}
                      for m in (a, b))
            level.append(_paired(da, db, x))
        deg = [_paired(degradation(data, a, base, sets, x), degradation(data, b, base, sets, x), x) for x in metrics]
        lines.append(f"| {f} | " + " | ".join(level + deg) + " |")
    return lines


def plot(data: dict, methods: list[str], base: str, fams: dict, metrics: list[str], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(metrics), len(fams), figsize=(2.4 * len(fams), 2.1 * len(metrics)), squeeze=False)
    for r, x in enumerate(metrics):
        for c, (f, sets) in enumerate(fams.items()):
            ax = axes[r][c]
            for m in methods:
                xs, ys = [0], [stats(list(data[(m, base, x)].values()))[0]] if (m, base, x) in data else ([], [])
                for s, d in sets.items():
                    if (m, d, x) in data:
                        xs.append(_order(s))
                        ys.append(stats(list(data[(m, d, x)].values()))[0])
                ax.plot(xs[:len(ys)], ys, marker="o", ms=3, label=m)
            ax.set_title(f if r == 0 else "", fontsize=9)
            ax.set_xlabel(("eps x 255" if f.startswith("pgd") else "severity") + " (0 = clean)" if r == len(metrics) - 1 else "",
                          fontsize=8)
            ax.set_ylabel(x.upper() + (" ↓" if x in LOWER_IS_BETTER else " ↑") if c == 0 else "", fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    print(f"\nwrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("store", type=Path)
    ap.add_argument("--base", default="demo_clean")
    ap.add_argument("--methods", nargs="*")
    ap.add_argument("--metrics", nargs="*", default=["psnr", "ssim", "lpips"])
    ap.add_argument("--pair", nargs=2, action="append", default=[], metavar=("A", "B"))
    ap.add_argument("--plot", type=Path)
    args = ap.parse_args()
    data = load(args.store)
    methods = args.methods or sorted({m for m, d, _ in data if d == args.base})
    # only the corrupted sets every compared method has, so every mean is over the same inputs
    fams = corrupted({d for _, d, _ in data if all((m, d, args.metrics[0]) in data for m in methods)}, args.base)
    for x in args.metrics:
        print(f"\n**{x.upper()} on {args.base} and its corrupted/attacked copies** (mean ± sample std over the n images)\n")
        print("\n".join(level_table(data, methods, args.base, fams, x)))
    print("\n**Degradation: corrupted - clean, paired per image, mean over the levels shown** (± std over images)\n")
    print("\n".join(degradation_table(data, methods, args.base, fams, ["psnr", "lpips"])))
    for a, b in args.pair:
        print(f"\n**{a} minus {b}, paired per image** (mean over severities; ± std over images; "
              f"(k/n) = images where {a} is better)\n")
        print("\n".join(pair_table(data, a, b, args.base, fams, args.metrics)))
    if args.plot:
        plot(data, methods, args.base, fams, ["psnr", "lpips"], args.plot)


if __name__ == "__main__":
    main()
