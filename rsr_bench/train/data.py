"""Training data: HR folders with MATLAB-bicubic LR made on the fly, or paired folders.

Why LR is computed from a window around each crop rather than from the crop itself: a x4
bicubic pixel depends on HR pixels up to two LR pixels away, so resizing the bare 128 px crop
would change its border pixels. Resizing a window with a margin of 4 LR pixels (clipped at the
image border, where MATLAB's mirror padding then applies exactly as for the full image) gives
the same LR as resizing the whole image first, which is what the official preparation does
(``DIV2K_train_LR_bicubic/X4``, then 480/120 px sub-images with step 240/60).

Sampling is iteration-based and resumable: every (epoch, position) pair has its own random
seed for crop and augmentation, so a resumed run sees exactly the batches an uninterrupted one
would, whatever the number of workers.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from ..errors import ConfigError
from ..image import list_images, read_image
from ..image import imresize

log = logging.getLogger("rsr_bench.train")

LR_MARGIN = 4  # LR pixels of context around a crop; the x4 bicubic footprint is +-2


@dataclass(frozen=True)
class Region:
    """A sub-image (or whole image) of HR image ``image``, in HR pixels, multiples of scale."""

    image: int
    top: int
    left: int
    height: int
    width: int


def subimage_positions(length: int, size: int, step: int, thresh: int = 0) -> list[int]:
    """Start offsets along one axis, as BasicSR's ``extract_subimages.py`` computes them."""
    if length <= size:
        return [0]
    pos = list(range(0, length - size + 1, step))
    if length - (pos[-1] + size) > thresh:
        pos.append(length - size)
    return pos


def _image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        w, h = im.size
    return h, w


class SRTrainDataset(Dataset):
    """Random ``gt_size`` HR crops with their LR, flips and 90-degree rotations (BasicSR ``augment``).

    Indexed by ``(region_index, seed_tuple)`` items from :class:`ShardedSampler`.
    """

    def __init__(self, cfg: dict[str, Any]) -> None:
        d = cfg["data"]
        self.scale = int(cfg["scale"])
        self.gt_size = int(d["gt_size"])
        self.lq_size = self.gt_size // self.scale
        self.use_flip, self.use_rot = bool(d["use_flip"]), bool(d["use_rot"])
        self.quantize_lr = bool(d["quantize_lr"])
        self.hr_dir = Path(d["hr_dir"])
        if not self.hr_dir.is_dir():
            raise ConfigError(f"data.hr_dir {self.hr_dir} is not a folder")
        self.hr_paths = list_images(self.hr_dir)
        if not self.hr_paths:
            raise ConfigError(f"data.hr_dir {self.hr_dir} holds no images")
        self.lr_paths: list[Path] | None = None
        if d.get("lr_dir"):
            lr_by_stem = {p.stem: p for p in list_images(d["lr_dir"])}
            missing = [p.name for p in self.hr_paths if p.stem not in lr_by_stem]
            if missing:
                raise ConfigError(f"data.lr_dir {d['lr_dir']} lacks LR images for {missing[:5]} (matched by stem)")
            self.lr_paths = [lr_by_stem[p.stem] for p in self.hr_paths]
        self.cache_size = int(d.get("cache_images") or 0)
        self._cache: OrderedDict[int, tuple[torch.Tensor, torch.Tensor | None]] = OrderedDict()
        self.regions = self._regions(d.get("subimages"))

    def _regions(self, sub: dict[str, Any] | None) -> list[Region]:
        s = self.scale
        regions = []
        for i, p in enumerate(self.hr_paths):
            h, w = _image_size(p)
            h, w = h - h % s, w - w % s
            if h < self.gt_size or w < self.gt_size:
                log.warning("skipping %s: %dx%d is smaller than gt_size %d", p.name, w, h, self.gt_size)
                continue
            if sub:
                size, step = int(sub["size"]), int(sub["step"])
                thresh = int(sub.get("thresh", 0))
                for top in subimage_positions(h, size, step, thresh):
                    for left in subimage_positions(w, size, step, thresh):
                        t, l_ = top - top % s, left - left % s
                        regions.append(Region(i, t, l_, min(size, h - t), min(size, w - l_)))
            else:
                regions.append(Region(i, 0, 0, h, w))
        if not regions:
            raise ConfigError(f"no training samples in {self.hr_dir} (all images smaller than gt_size?)")
        return regions

    def __len__(self) -> int:
        return len(self.regions)

    def _load(self, i: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        hr = read_image(self.hr_paths[i])
        s = self.scale
        hr = hr[:, : hr.shape[1] - hr.shape[1] % s, : hr.shape[2] - hr.shape[2] % s]
        lr = read_image(self.lr_paths[i]) if self.lr_paths else None
        if lr is not None and tuple(lr.shape[1:]) != (hr.shape[1] // s, hr.shape[2] // s):
            raise ConfigError(
                f"{self.lr_paths[i]}: LR {tuple(lr.shape[1:])} is not HR {tuple(hr.shape[1:])} / {s}"
            )
        if self.cache_size:
            self._cache[i] = (hr, lr)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return hr, lr

    def bicubic_lr(self, hr: torch.Tensor, top: int, left: int) -> torch.Tensor:
        """LR pixels ``[top, top+lq) x [left, left+lq)`` of ``imresize(hr, 1/scale)``, from a window."""
        s, lq = self.scale, self.lq_size
        H, W = hr.shape[1] // s, hr.shape[2] // s
        t0, l0 = max(0, top - LR_MARGIN), max(0, left - LR_MARGIN)
        t1, l1 = min(H, top + lq + LR_MARGIN), min(W, left + lq + LR_MARGIN)
        window = hr[:, t0 * s : t1 * s, l0 * s : l1 * s].double()
        lr = imresize(window, 1 / s)[:, top - t0 : top - t0 + lq, left - l0 : left - l0 + lq]
        lr = lr.clamp(0, 1)
        if self.quantize_lr:
            lr = (lr * 255).round() / 255
        return lr.float()

    def __getitem__(self, item: tuple[int, tuple[int, ...]]) -> dict[str, Any]:
        idx, seed = item
        rng = np.random.default_rng(list(seed))
        r = self.regions[idx]
        hr, lr_full = self._load(r.image)
        s, lq = self.scale, self.lq_size
        top = r.top // s + int(rng.integers(0, r.height // s - lq + 1))
        left = r.left // s + int(rng.integers(0, r.width // s - lq + 1))
        gt = hr[:, top * s : (top + lq) * s, left * s : (left + lq) * s]
        if lr_full is not None:
            lr = lr_full[:, top : top + lq, left : left + lq]
        else:
            lr = self.bicubic_lr(hr, top, left)
        hflip = self.use_flip and rng.random() < 0.5
        vflip = self.use_rot and rng.random() < 0.5
        rot90 = self.use_rot and rng.random() < 0.5
        gt, lr = (_augment(x, hflip, vflip, rot90) for x in (gt, lr))
        return {"lq": lr.contiguous(), "gt": gt.contiguous(), "index": idx}


def _augment(x: torch.Tensor, hflip: bool, vflip: bool, rot90: bool) -> torch.Tensor:
    """BasicSR ``augment``: horizontal flip, vertical flip, then H/W transpose."""
    if hflip:
        x = x.flip(-1)
    if vflip:
        x = x.flip(-2)
    if rot90:
        x = x.transpose(-1, -2)
    return x


class ShardedSampler(Sampler):
    """Per-epoch permutation split across ranks with no duplicates, resumable mid-epoch.

    ``torch.utils.data.DistributedSampler`` pads the last round by repeating samples; here the
    tail that does not fill a whole round of ``world * batch`` samples is dropped instead (a new
    permutation each epoch means every sample is still used). Yields ``(index, seed)`` items.
    """

    def __init__(self, n: int, *, batch_size: int, world: int = 1, rank: int = 0, seed: int = 0) -> None:
        self.n, self.batch_size, self.world, self.rank, self.seed = n, batch_size, world, rank, seed
        self.batches_per_epoch = n // (world * batch_size)
        if self.batches_per_epoch < 1:
            raise ConfigError(
                f"{n} training samples cannot fill one batch of {batch_size} on each of {world} process(es)"
            )
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * self.batch_size

    def __iter__(self) -> Iterator[tuple[int, tuple[int, ...]]]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        perm = torch.randperm(self.n, generator=g)[: self.batches_per_epoch * self.world * self.batch_size]
        mine = perm[self.rank :: self.world].tolist()
        start = self.start_batch * self.batch_size
        for pos in range(start, len(mine)):
            yield mine[pos], (self.seed, self.epoch, self.rank, pos)


def batches(
    dataset: SRTrainDataset,
    sampler: ShardedSampler,
    *,
    start_iter: int,
    num_workers: int,
    pin_memory: bool = False,
) -> Iterator[dict[str, Any]]:
    """Endless batches; the first is the one for iteration ``start_iter + 1``."""
    bpe = sampler.batches_per_epoch
    epoch, offset = divmod(start_iter, bpe)
    while True:
        sampler.set_epoch(epoch, offset)
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=sampler.batch_size,
            sampler=sampler,
            drop_last=True,
            num_workers=num_workers,
            pin_memory=pin_memory,
            # own generator: creating an iterator must not consume the global torch RNG, or a
            # resumed run would draw different attack noise than an uninterrupted one
            generator=torch.Generator().manual_seed(0),
            persistent_workers=False,
        )
        yield from loader
        epoch, offset = epoch + 1, 0


def prepare_subimages(hr_dir: str | Path, out_dir: str | Path, *, scale: int = 4, size: int = 480, step: int = 240, thresh: int = 0) -> tuple[Path, Path]:
    """Write the official preparation to disk: HR sub-images and their MATLAB-bicubic LR.

    ``out_dir/HR_sub`` (``size`` px, ``step``) and ``out_dir/LR_bicubic_X{scale}_sub`` cut from the
    LR of the whole image, named ``<stem>_s001.png`` as BasicSR does. Decoding a 2K PNG per
    sample is slow; with these folders (``data.hr_dir``/``data.lr_dir``, ``data.subimages: null``)
    the loader reads small files instead.
    """
    from ..image import write_png

    out_dir = Path(out_dir)
    hr_out, lr_out = out_dir / "HR_sub", out_dir / f"LR_bicubic_X{scale}_sub"
    for p in list_images(hr_dir):
        hr = read_image(p)
        hr = hr[:, : hr.shape[1] - hr.shape[1] % scale, : hr.shape[2] - hr.shape[2] % scale]
        lr = imresize(hr.double(), 1 / scale).clamp(0, 1).float()
        h, w = hr.shape[1:]
        k = 0
        for top in subimage_positions(h, size, step, thresh):
            for left in subimage_positions(w, size, step, thresh):
                t, l_ = top - top % scale, left - left % scale
                k += 1
                write_png(hr_out / f"{p.stem}_s{k:03d}.png", hr[:, t : t + size, l_ : l_ + size])
                write_png(
                    lr_out / f"{p.stem}_s{k:03d}.png",
                    lr[:, t // scale : (t + size) // scale, l_ // scale : (l_ + size) // scale],
                )
    return hr_out, lr_out

