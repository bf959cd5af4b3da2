"""Make the real-camera evaluation set of the RSR-vs-baseline experiment (docs/rsr-reproduction.md).

The RealSR camera pairs in the reference data (``realsr_camera/HR`` and ``LR_registered``, the LR
shot registered at HR size, Cai et al. 2019) become an x4 paired set: a centre crop of ``--crop`` px
of both, the LR crop downsampled x4 by MATLAB bicubic on uint8 (as benchmark LR are made). Whole
1800x1000 images would cost minutes per image per model on one CPU thread; 480 px crops keep the
evaluation of three checkpoints to minutes. Writes ``<out>/realsr_camera_c<crop>/{HR,LR}`` and
``<out>/datasets.yaml`` for ``rsr-bench run --datasets-file``.

    RSR_BENCH_REFERENCE_DATA=/work/shared/data .venv/bin/python benchmarks/prepare_train_eval_sets.py --out runs/eval_data
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rsr_bench.image import imresize_uint8, list_images, quantise, read_image, write_png  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", type=Path, default=Path(os.environ.get("RSR_BENCH_REFERENCE_DATA", "../shared/data")))
    ap.add_argument("--out", type=Path, default=Path("runs/eval_data"))
    ap.add_argument("--crop", type=int, default=480)
    args = ap.parse_args()
    if args.crop % 4:
        raise SystemExit("--crop must be a multiple of 4")
    src = args.ref / "realsr_camera"
    name = f"realsr_camera_c{args.crop}"
    dest = args.out / name
    for hr_path in list_images(src / "HR"):
        hr = read_image(hr_path)
        lr_reg = read_image(src / "LR_registered" / hr_path.name)
        _, h, w = hr.shape
        t, l_ = (h - args.crop) // 2 // 4 * 4, (w - args.crop) // 2 // 4 * 4
        hr_c = hr[:, t : t + args.crop, l_ : l_ + args.crop]
        lr_c = quantise(lr_reg[:, t : t + args.crop, l_ : l_ + args.crop])
        lr = imresize_uint8(lr_c, 0.25).to(torch.float32) / 255
        write_png(dest / "HR" / hr_path.name, hr_c)
        write_png(dest / "LR" / hr_path.name, lr)
    (args.out / "datasets.yaml").write_text(
        f"# written by benchmarks/prepare_train_eval_sets.py from {src}\n"
        f"root: {args.out.resolve()}\n"
        "datasets:\n"
        f"  {name}:\n"
        f"    lr: {name}/LR\n"
        f"    hr: {name}/HR\n"
        "    scale: 4\n"
    )
    print(f"wrote {dest} ({len(list_images(dest / 'HR'))} pairs) and {args.out / 'datasets.yaml'}")


if __name__ == "__main__":
    main()
