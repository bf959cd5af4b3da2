"""Cost of the robustness lab: where a sweep's time goes, and whether bf16 PGD is worth it on CPU.

A script, not a test. Two parts:

``--store DIR`` (breakdown): reads what a finished ``rsr-bench robust`` sweep recorded — the
generation seconds of every derived set (their cache manifests) and the predict / metrics seconds
of every cell (the store's manifests) — and prints them per method and per corruption family.

``--generation N``: makes every family x severity of demo_clean's first N images in a fresh
temporary cache (best of ``--repeats``), i.e. the one-off cost of the corrupted inputs.

``--pgd`` (precision): white-box PGD on an RRDBNet method (default realesrgan.x4plus) on a crop of
a demo image, fp32 vs bf16 autocast, interleaved, best of ``--repeats``; prints seconds per attack
and the attack effect (L1 to the HR after the attack, minus before) of each, and whether bf16
keeps the effect within 5 % *and* is faster (the lab's rule for using it; the CPU flags are
printed, since without native bf16 (avx512_bf16 / amx) bf16 is emulated and slow).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_robust.py --store /tmp/i10demo/store
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_robust.py --pgd --crop 32 --iters 2
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from pathlib import Path


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _cpu_flags() -> str:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    return " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags) or "none of avx2/avx512/amx"


def breakdown(root: Path) -> None:
    """Generation per family (cache manifests), predict and metrics per method and family (store)."""
    from rsr_bench import store
    from rsr_bench.files import cache_dir
    from rsr_bench.robust.naming import parse_derived

    def family(dataset: str) -> str:
        d = parse_derived(dataset) if "~" in dataset else None
        return "clean" if d is None else str(d.group)

    gen: dict[str, float] = defaultdict(float)
    datasets = {k[1] for k in store.load_manifests(root)}
    for m in (cache_dir() / "robust").rglob("manifest.json"):
        info = json.loads(m.read_text(encoding="utf-8"))
        if info.get("name") in datasets and "method" not in info:
            gen[family(info["name"])] += float(info.get("seconds", 0.0))
    cost: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for (method, dataset), man in store.load_manifests(root).items():
        t = man.get("timings") or {}
        c = cost[(method, family(dataset))]
        c[0] += float(t.get("predict_s", 0.0))
        c[1] += float(t.get("metrics_s", 0.0))
        c[2] += 1
    print(f"store {root}; load now {_load()}")
    print("generation (s, all severities, the images of the sweep):")
    for f, s in sorted(gen.items()):
        print(f"  {f:16s} {s:8.1f}")
    print(f"  {'total':16s} {sum(gen.values()):8.1f}")
    print("predict / metrics (s) per method and family [cells]:")
    for method in sorted({k[0] for k in cost}):
        rows = {f: v for (m, f), v in cost.items() if m == method}
        p, x = sum(v[0] for v in rows.values()), sum(v[1] for v in rows.values())
        print(f"  {method:26s} predict {p:8.1f}  metrics {x:7.1f}  [{sum(int(v[2]) for v in rows.values())} cells]")


def generation(limit: int, repeats: int) -> None:
    """Time making every family x severity of demo_clean's first ``limit`` images in a fresh cache."""
    import tempfile

    from rsr_bench.datasets import load_datasets, select_datasets
    from rsr_bench.robust.corruptions import CORRUPTIONS, SEVERITIES
    from rsr_bench.robust.derived import GenerationContext, generation_context

    per: dict[str, float] = defaultdict(lambda: float("inf"))
    for r in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["RSR_BENCH_CACHE"] = tmp
            specs = load_datasets()
            select_datasets(["demo_clean"], specs)[0].resolved()  # the demo set itself is made, not timed
            with generation_context(GenerationContext(limit=limit, progress=False)):
                for c in CORRUPTIONS:
                    t0 = time.perf_counter()
                    for sev in SEVERITIES:
                        select_datasets([f"demo_clean~{c}@{sev}"], specs)[0].resolved()
                    per[c] = min(per[c], time.perf_counter() - t0)
    print(f"generation of {len(CORRUPTIONS)} families x {len(SEVERITIES)} severities, {limit} image(s), fresh cache, "
          f"best of {repeats}; load {_load()}")
    for c, s in per.items():
        print(f"  {c:16s} {s:6.2f} s")
    print(f"  {'total':16s} {sum(per.values()):6.2f} s")


def _attack_once(fwd, lr, hr, iters: int, autocast) -> tuple[float, float]:
    import torch

    from rsr_bench.train.attack import PGDConfig, pgd_attack

    cfg = PGDConfig(eps=8 / 255, alpha=2.5 * 8 / 255 / iters, iters=iters, noise_scale=1.0)
    loss = lambda out, gt: (out.clamp(0, 1) - gt).abs().mean()  # noqa: E731
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    res = pgd_attack(fwd, lr, hr, loss, cfg, generator=gen, autocast=autocast)
    seconds = time.perf_counter() - t0
    with torch.no_grad():  # the effect is always measured in fp32
        effect = float(loss(fwd(lr + res.delta), hr) - loss(fwd(lr), hr))
    return seconds, effect


def pgd_precision(method: str, crop: int, iters: int, repeats: int) -> None:
    import torch

    from rsr_bench.datasets.demo import ensure_demo_dataset
    from rsr_bench.image import read_image
    from rsr_bench.robust.attacks import differentiable_forward, load_for_attack

    fwd, reason = differentiable_forward(load_for_attack(method, (), "cpu"))
    if fwd is None:
        raise SystemExit(reason)
    lr_dir, hr_dir = ensure_demo_dataset("demo_clean")
    lr = read_image(lr_dir / "coffee.png")[None, :, :crop, :crop].contiguous()
    hr = read_image(hr_dir / "coffee.png")[None, :, :4 * crop, :4 * crop].contiguous()
    modes = {"fp32": lambda: torch.autocast("cpu", enabled=False),
             "bf16": lambda: torch.autocast("cpu", dtype=torch.bfloat16)}
    best: dict[str, float] = {}
    effect: dict[str, float] = {}
    print(f"PGD on {method}, {crop}x{crop} LR crop, {iters} iterations, eps 8/255; threads {torch.get_num_threads()}; "
          f"CPU flags: {_cpu_flags()}; load before {_load()}")
    for r in range(repeats):
        for name, ac in modes.items():  # interleaved
            s, e = _attack_once(fwd, lr, hr, iters, ac)
            best[name] = min(best.get(name, float("inf")), s)
            effect[name] = e
            print(f"  repeat {r} {name}: {s:.2f} s, effect {e:+.5f} (L1 after - before)  load {_load()}")
    rel = abs(effect["bf16"] - effect["fp32"]) / max(abs(effect["fp32"]), 1e-12)
    speed = best["fp32"] / best["bf16"]
    print(f"best fp32 {best['fp32']:.2f} s, bf16 {best['bf16']:.2f} s (bf16 speed-up x{speed:.2f}); "
          f"effect differs by {100 * rel:.1f} %")
    print("decision: " + ("use bf16 (within 5 % and faster)" if rel <= 0.05 and speed > 1 else
                          "attack in fp32 (bf16 is " + ("not faster" if speed <= 1 else "") +
                          (" and " if speed <= 1 and rel > 0.05 else "") + ("off by more than 5 %" if rel > 0.05 else "") + ")"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, help="a finished robustness sweep's store: print the cost breakdown")
    ap.add_argument("--pgd", action="store_true", help="time PGD in fp32 vs bf16 autocast")
    ap.add_argument("--generation", type=int, metavar="N", help="time making every corrupted set of N demo images")
    ap.add_argument("--method", default="realesrgan.x4plus")
    ap.add_argument("--crop", type=int, default=32)
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    if not a.store and not a.pgd and not a.generation:
        ap.error("give --store DIR, --generation N and/or --pgd")
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    if a.store:
        breakdown(a.store)
    if a.generation:
        generation(a.generation, a.repeats)
    if a.pgd:
        pgd_precision(a.method, a.crop, a.iters, a.repeats)


if __name__ == "__main__":
    main()
