"""Training throughput and peak memory of the RSR recipe (PGD + G + D update per iteration).

Times exactly the step a training run executes (:class:`rsr_bench.train.step.RSRStep`) on
synthetic batches, so no dataset, download or network access is needed (a lent GPU machine has
none). VGG weights are random: the cost of the perceptual loss does not depend on them.

Full recipe on a GPU (batch 16, 128 px GT, nb 23, VGG19 conv5_4, bf16 and fp32, RSR and the
no-attack ESRGAN baseline)::

    python benchmarks/bench_train.py --device cuda --json bench_train.json

CPU estimate (a short run on a smaller batch, scaled linearly to batch 16)::

    python benchmarks/bench_train.py --device cpu --batch 1 --iters 2 --warmup 1 --recipes rsr
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rsr_bench.methods.rrdbnet import RRDBNet  # noqa: E402
from rsr_bench.train import config as C  # noqa: E402
from rsr_bench.train.discriminator import VGGStyleDiscriminator  # noqa: E402
from rsr_bench.train.losses import VGGFeatures  # noqa: E402
from rsr_bench.train.step import RSRStep  # noqa: E402


def bench(args: argparse.Namespace, recipe: str, amp: str) -> dict:
    dev = torch.device(args.device)
    cfg = C.load_config(None, [
        f"model.nb={args.nb}", f"model.nf={args.nf}", f"data.gt_size={args.gt_size}", f"data.batch_size={args.batch}",
        f"train.amp={amp}", f"attack.loss={'none' if recipe == 'esrgan' else args.attack_loss}",
        f"attack.iters={args.attack_iters}",
    ])
    torch.manual_seed(0)
    g = RRDBNet(nf=args.nf, nb=args.nb)
    d = VGGStyleDiscriminator(nf=64, input_size=args.gt_size)
    vgg = VGGFeatures(args.backbone, None)
    step = RSRStep(cfg, g=g, d=d, vgg=vgg, device=dev)
    lq_size = args.gt_size // 4
    gen = torch.Generator(device="cpu").manual_seed(1)
    batches = [
        (torch.rand(args.batch, 3, lq_size, lq_size, generator=gen).to(dev),
         torch.rand(args.batch, 3, args.gt_size, args.gt_size, generator=gen).to(dev))
        for _ in range(2)
    ]
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    for i in range(args.warmup):
        step(*batches[i % 2], i + 1)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(args.iters):
        step(*batches[i % 2], args.warmup + i + 1)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / args.iters
    res = {
        "recipe": recipe, "amp": "bf16" if step.bf16 else "off", "batch": args.batch, "gt_size": args.gt_size,
        "nb": args.nb, "backbone": args.backbone, "attack_iters": args.attack_iters if recipe == "rsr" else 0,
        "s_per_it": round(dt, 4), "it_per_s": round(1 / dt, 3),
    }
    if dev.type == "cuda":
        res["peak_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        res["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
    else:
        res["max_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
        # throughput scales ~linearly with the number of pixels on a saturated CPU
        res["est_s_per_it_batch16"] = round(dt * 16 / args.batch, 1)
    del step, g, d, vgg
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--gt-size", type=int, default=128)
    p.add_argument("--nb", type=int, default=23)
    p.add_argument("--nf", type=int, default=64)
    p.add_argument("--backbone", default="vgg19", choices=["vgg19", "vgg16"])
    p.add_argument("--attack-loss", default="l1+perceptual")
    p.add_argument("--attack-iters", type=int, default=2)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--recipes", default="rsr,esrgan", help="comma list of rsr (PGD) and esrgan (no attack)")
    p.add_argument("--amp", default=None, help="comma list of bf16,off (default: bf16,off on cuda, off on cpu)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
    amps = (args.amp or ("bf16,off" if args.device == "cuda" else "off")).split(",")
    env = {"torch": torch.__version__, "python": platform.python_version(), "device": args.device,
           "threads": torch.get_num_threads()}
    if args.device == "cuda":
        env["gpu"] = torch.cuda.get_device_name()
    results = []
    for amp in amps:
        for recipe in args.recipes.split(","):
            r = bench(args, recipe, amp)
            print(json.dumps(r), flush=True)
            results.append(r)
    out = {"env": env, "results": results}
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(env))


if __name__ == "__main__":
    main()
