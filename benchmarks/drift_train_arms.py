"""Controlled fine-tuning arms for the dark drift: one factor changed at a time, same seeds.

Every arm starts from the same genuine generator, trains on the same BSD100 HR crops in the same
order (same seed, same sampler), with the same attack noise stream, for the same number of
iterations of the real training step (:class:`rsr_bench.train.step.RSRStep`); only the named
config keys differ. At fixed iterations the generator is scored on held-out real images (Set5 and
Set14 centre crops, MATLAB-bicubic LR from the sets' ``LR_bicubic_x4``): mean output minus mean GT
(brightness bias), std(out) / std(GT) (contrast ratio), and PSNR (RGB, [0, 1], no border crop).

    RSR_BENCH_REFERENCE_DATA=/work/shared/data OMP_NUM_THREADS=1 \
        .venv/bin/python benchmarks/drift_train_arms.py --arm plain --arm pgd --out /tmp/drift

``--list`` prints the arms. Each arm writes ``<out>/<arm>.json``; ``--table`` prints the table of
every arm found in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rsr_bench.image import read_image  # noqa: E402
from rsr_bench.train import config as C  # noqa: E402
from rsr_bench.train.data import ShardedSampler, SRTrainDataset, batches  # noqa: E402
from rsr_bench.train.discriminator import VGGStyleDiscriminator  # noqa: E402
from rsr_bench.train.losses import build_perceptual  # noqa: E402
from rsr_bench.train.step import RSRStep  # noqa: E402
from rsr_bench.train.trainer import _seed, init_generator  # noqa: E402

# one factor at a time against "pgd" (the official recipe at this scale) or "plain" (no attack)
ARMS: dict[str, dict[str, object]] = {
    "plain": {"attack.loss": "none"},
    "pgd": {},
    "noise": {"attack.alpha": 0.0},  # the structured start noise only: random, not adversarial
    "plain_nogan": {"attack.loss": "none", "train.gan_weight": 0.0},
    "pgd_nogan": {"train.gan_weight": 0.0},
    "pgd_l1w1": {"train.pixel_weight": 1.0},
    "plain_l1w1": {"attack.loss": "none", "train.pixel_weight": 1.0},
    "pgd_l1only": {"train.perceptual_weight": 0.0},
    "pgd_lr1e-5": {"train.lr": 1e-5},
    "plain_lr1e-5": {"attack.loss": "none", "train.lr": 1e-5},
    "pgd_batch8": {"data.batch_size": 8},
    "pgd_gt128": {"data.gt_size": 128},
    "pgd_realesrgan": {"model.pretrain_g": "REALESRGAN"},
    "plain_realesrgan": {"attack.loss": "none", "model.pretrain_g": "REALESRGAN"},
    "pgd_lowfreq": {"train.lowfreq_weight": 1.0},  # the option that is not in the paper
    "plain_lowfreq": {"attack.loss": "none", "train.lowfreq_weight": 1.0},
}

def cached_weights(asset: str, name: str) -> str:
    """The converted genuine weights in the asset cache (what ``model.pretrain_g=<method>`` loads)."""
    return str(Path(os.environ.get("RSR_BENCH_CACHE", Path.home() / ".cache" / "rsr-bench")) / "assets" / asset / name)


IMPRESSIONISM = cached_weights("impressionism-df2k-x4", "impressionism_df2k_x4.pth")
REALESRGAN = cached_weights("realesrgan-x4plus", "realesrgan_x4plus.pth")

BASE = {
    "model.pretrain_g": IMPRESSIONISM,
    "perceptual.backbone": "vgg16",
    "data.subimages": None, "data.gt_size": 64, "data.batch_size": 2, "data.num_workers": 0,
    "data.cache_images": 0,
    "train.device": "cpu", "train.threads": 1,
}


def eval_set(ref: Path, lq: int = 32, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Held-out real images: the first ``n`` colour images of Set5 + Set14, centre ``lq`` px LR crops."""
    lrs, hrs = [], []
    for s, n in (("set5", 5), ("set14", 14)):
        for i in range(1, n + 1):
            hr = read_image(ref / s / "HR" / f"img_{i:03d}.png")
            if torch.equal(hr[0], hr[1]) and torch.equal(hr[1], hr[2]):
                continue  # greyscale: says nothing about colour
            lr = read_image(ref / s / "LR_bicubic_x4" / f"img_{i:03d}.png")
            t, l_ = (lr.shape[1] - lq) // 2, (lr.shape[2] - lq) // 2
            lrs.append(lr[:, t : t + lq, l_ : l_ + lq])
            hrs.append(hr[:, 4 * t : 4 * (t + lq), 4 * l_ : 4 * (l_ + lq)])
    lrs, hrs = lrs[:n], hrs[:n]
    return torch.stack(lrs), torch.stack(hrs)


@torch.no_grad()
def score(g: torch.nn.Module, lq: torch.Tensor, gt: torch.Tensor) -> dict[str, float]:
    was = g.training
    g.eval()
    out = torch.cat([g(lq[i : i + 4]) for i in range(0, len(lq), 4)]).clamp(0, 1)
    g.train(was)
    mse = ((out - gt) ** 2).flatten(1).mean(1)
    return {
        "mean_bias": float(out.mean() - gt.mean()),
        "contrast_ratio": float((out.flatten(1).std(1) / gt.flatten(1).std(1)).mean()),
        "psnr": float((10 * torch.log10(1 / mse)).mean()),
        "channel_bias": [float(v) for v in (out.mean((0, 2, 3)) - gt.mean((0, 2, 3)))],
    }


def run_arm(name: str, args: argparse.Namespace) -> dict:
    ref = Path(os.environ["RSR_BENCH_REFERENCE_DATA"])
    over = {**BASE, "data.hr_dir": str(ref / "bsd100" / "HR"), "seed": args.seed, **ARMS[name]}
    if over["model.pretrain_g"] == "REALESRGAN":
        over["model.pretrain_g"] = REALESRGAN
    cfg = C.load_config(None)
    C.apply_overrides(cfg, over)
    torch.set_num_threads(1)
    _seed(int(cfg["seed"]))
    g, _ = init_generator(cfg)
    vgg, pinfo = build_perceptual(cfg)
    d = VGGStyleDiscriminator(nf=cfg["model"]["d_nf"], input_size=cfg["data"]["gt_size"])
    step = RSRStep(cfg, g=g, d=d, vgg=vgg, device=torch.device("cpu"))
    ds = SRTrainDataset(cfg)
    sampler = ShardedSampler(len(ds), batch_size=int(cfg["data"]["batch_size"]), seed=int(cfg["seed"]))
    it_data = batches(ds, sampler, start_iter=0, num_workers=0)
    lq_e, gt_e = eval_set(ref, n=args.eval_images)
    curve = [{"iter": 0, **score(g, lq_e, gt_e)}]
    print(f"[{name}] iter 0 {curve[-1]}", flush=True)
    t0 = time.time()
    losses = []
    for it in range(1, args.iters + 1):
        b = next(it_data)
        logs = step(b["lq"], b["gt"], it)
        losses.append(logs)
        if it % args.every == 0:
            curve.append({"iter": it, **score(g, lq_e, gt_e), "s": round(time.time() - t0, 1)})
            print(f"[{name}] iter {it} {curve[-1]}", flush=True)
    res = {"arm": name, "overrides": ARMS[name], "base": BASE, "seed": args.seed, "iters": args.iters,
           "perceptual": pinfo.get("layer"), "eval_images": len(lq_e), "curve": curve,
           "last_losses": losses[-1], "s_per_it": round((time.time() - t0) / args.iters, 3)}
    return res


def table(out: Path) -> None:
    rows = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    order = {k: i for i, k in enumerate(ARMS)}
    rows.sort(key=lambda r: (r["seed"], order.get(r["arm"], 99)))
    print("| arm | change | seed | iter | mean out - GT | R / G / B out - GT | contrast ratio | PSNR | D loss (last) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        change = ", ".join(f"{k}={v}" for k, v in r["overrides"].items()) or "(official recipe)"
        for c in r["curve"]:
            if c["iter"] == 0 and r["arm"] != rows[0]["arm"]:
                continue  # the same initial generator for every arm: shown once
            if c["iter"] in (0, r["iters"]) or c["iter"] % (r["iters"] // 2 or 1) == 0:
                dl = r["last_losses"]["l_d_real"] + r["last_losses"]["l_d_fake"] if c["iter"] == r["iters"] else math.nan
                rgb = " / ".join(f"{v:+.3f}" for v in c["channel_bias"])
                print(f"| {r['arm']} | {change} | {r['seed']} | {c['iter']} | {c['mean_bias']:+.4f} | {rgb} | "
                      f"{c['contrast_ratio']:.3f} | {c['psnr']:.2f} | {'' if math.isnan(dl) else f'{dl:.3g}'} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arm", action="append", default=[])
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--every", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-images", type=int, default=8)
    ap.add_argument("--out", type=Path, default=Path("/tmp/drift"))
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--table", action="store_true")
    args = ap.parse_args()
    if args.list:
        for k, v in ARMS.items():
            print(k, v)
        return
    if args.table:
        table(args.out)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.arm:
        res = run_arm(name, args)
        suffix = "" if args.seed == 0 else f"_s{args.seed}"
        (args.out / f"{name}{suffix}.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
