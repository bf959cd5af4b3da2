"""Which loss term pulls the output's brightness and contrast, at the start of fine-tuning?

A probe, not a training run: the generator's output ``out`` on real LR crops (clean and
PGD-perturbed) is fixed, and each training loss term is evaluated on ``a * out + c`` for a grid
of gains ``a`` and offsets ``c``. The derivative at (a, c) = (1, 0) says in which direction the
term pushes the output's contrast (a) and brightness (c); the minimising c over the grid says how
far. A term whose minimum lies at c < 0 or a < 1 rewards a darker / flatter output.

    RSR_BENCH_REFERENCE_DATA=/work/shared/data OMP_NUM_THREADS=1 \
        .venv/bin/python benchmarks/drift_train_probe.py --init impressionism.df2k

Prints one table row per (input, loss term); ``--json`` writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rsr_bench.image import read_image  # noqa: E402
from rsr_bench.train import config as C  # noqa: E402
from rsr_bench.train.attack import PGDConfig, pgd_attack  # noqa: E402
from rsr_bench.train.losses import VGGFeatures, build_perceptual  # noqa: E402
from rsr_bench.train.trainer import init_generator  # noqa: E402

LAYER_CUTS = {"vgg16": {"conv1_2": 3, "conv2_2": 8, "conv3_3": 15, "conv4_3": 22, "conv5_3": 29}}


def crops(ref: Path, n: int, lq: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre ``lq`` px LR crops (MATLAB bicubic x4 from the set) and their HR, BSD100 images 1..n."""
    lrs, hrs = [], []
    for i in range(1, n + 1):
        lr = read_image(ref / "bsd100" / "LR_bicubic_x4" / f"img_{i:03d}.png")
        hr = read_image(ref / "bsd100" / "HR" / f"img_{i:03d}.png")
        t, l_ = (lr.shape[1] - lq) // 2, (lr.shape[2] - lq) // 2
        lrs.append(lr[:, t : t + lq, l_ : l_ + lq])
        hrs.append(hr[:, 4 * t : 4 * (t + lq), 4 * l_ : 4 * (l_ + lq)])
    return torch.stack(lrs), torch.stack(hrs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--init", default="impressionism.df2k")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--lq", type=int, default=32)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    ref = Path(os.environ["RSR_BENCH_REFERENCE_DATA"])
    cfg = C.load_config(None, [f"model.pretrain_g={args.init}", "perceptual.backbone=vgg16"])
    g, _ = init_generator(cfg)
    g.eval()
    vgg, _ = build_perceptual(cfg)
    full = vgg.features
    lq, gt = crops(ref, args.n, args.lq)

    def percep_at(layer: str):
        cut = LAYER_CUTS["vgg16"][layer]
        sub = VGGFeatures.__new__(VGGFeatures)
        torch.nn.Module.__init__(sub)
        sub.features, sub.mean, sub.std = full[:cut], vgg.mean, vgg.std
        with torch.no_grad():
            target = sub(gt)
        return lambda x: F.l1_loss(sub(x), target)

    terms = {"0.01*L1": lambda x: 0.01 * F.l1_loss(x, gt)}
    for layer in LAYER_CUTS["vgg16"]:
        terms[f"percep {layer}"] = percep_at(layer)

    def attack_loss(o: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return 0.01 * F.l1_loss(o, t) + terms["percep conv5_3"](o)

    inputs = {"clean": lq}
    torch.manual_seed(0)
    res = pgd_attack(g, lq, gt, attack_loss, PGDConfig(), generator=torch.Generator().manual_seed(0))
    inputs["pgd 14/255"] = lq + res.delta
    cs = torch.linspace(-0.1, 0.1, 21)
    rows = []
    print(f"init {args.init}; {args.n} BSD100 centre crops {args.lq}px LR; gt mean {gt.mean():.4f} std {gt.std():.4f}")
    print(f"{'input':<11} {'term':<16} {'value':>9} {'dL/dc':>10} {'dL/da':>10} {'argmin c':>9} {'out-gt mean':>12}")
    for name, x in inputs.items():
        with torch.no_grad():
            out = g(x)
        for tname, fn in terms.items():
            a = torch.ones((), requires_grad=True)
            c = torch.zeros((), requires_grad=True)
            val = fn(a * out + c)
            da, dc = torch.autograd.grad(val, (a, c))
            with torch.no_grad():
                curve = torch.stack([fn(out + ci) for ci in cs])
            cmin = float(cs[curve.argmin()])
            row = {"input": name, "term": tname, "value": float(val), "dL_dc": float(dc), "dL_da": float(da),
                   "argmin_c": cmin, "out_minus_gt_mean": float(out.mean() - gt.mean())}
            rows.append(row)
            print(f"{name:<11} {tname:<16} {row['value']:9.4f} {row['dL_dc']:10.4f} {row['dL_da']:10.4f} "
                  f"{cmin:9.3f} {row['out_minus_gt_mean']:12.4f}")
    if args.json:
        args.json.write_text(json.dumps({"init": args.init, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
