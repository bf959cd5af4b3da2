"""The PGD attack RSR trains against (conventions section 3, ``RSRModel.pgd_attack``).

L-infinity PGD on the LR input: a single structured random start, ``iters`` signed-gradient
ascent steps of size ``alpha`` on the attack loss (weighted L1 and/or perceptual against the
clean HR; never the GAN term), each followed by projection onto the eps-ball and onto the valid
pixel range (delta in [-lr, 1 - lr]). G and D are frozen while it runs.

The official code calls ``F.interpolate(size=..., recompute_scale_factor=True)``, which PyTorch
rejects; the flag is dropped here (the intended nearest upsampling to H x W is kept).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, ContextManager

import torch
import torch.nn.functional as F
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class PGDConfig:
    eps: float = 14 / 255
    alpha: float = 1 / 255
    iters: int = 2
    noise_scale: float = 1.5

    @classmethod
    def from_cfg(cls, a: dict[str, Any]) -> "PGDConfig":
        return cls(float(a["eps"]), float(a["alpha"]), int(a["iters"]), float(a["noise_scale"]))


@dataclass
class AttackResult:
    delta: torch.Tensor
    losses: list[float] = field(default_factory=list)  # loss at each iterate (start .. final if tracked)


def start_grid(h: int, w: int, noise_scale: float) -> tuple[int, int]:
    """Grid the start noise is drawn on: ``int(H // s) x int(W // s)`` (21x21 for 32 px at 1.5)."""
    return int(h // noise_scale), int(w // noise_scale)


def structured_start(lq: torch.Tensor, eps: float, noise_scale: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform(-eps, eps) per channel on the coarse grid, nearest-upsampled to the input size."""
    n, c, h, w = lq.shape
    gh, gw = start_grid(h, w, noise_scale)
    delta = torch.empty(n, c, gh, gw, device=lq.device, dtype=torch.float32)
    delta.uniform_(-eps, eps, generator=generator)
    if (gh, gw) != (h, w):
        delta = F.interpolate(delta, size=(h, w), mode="nearest")
    return delta


def project(delta: torch.Tensor, lq: torch.Tensor, eps: float) -> torch.Tensor:
    """Onto the eps-ball, then so that ``lq + delta`` stays in [0, 1] (the official order)."""
    delta = delta.clamp(-eps, eps)
    return torch.max(torch.min(delta, 1 - lq), -lq)


@contextmanager
def frozen(modules: Iterable[nn.Module]) -> Iterator[None]:
    """``requires_grad=False`` on every parameter for the duration; restores the old flags."""
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)


def pgd_attack(
    g: nn.Module,
    lq: torch.Tensor,
    gt: torch.Tensor,
    loss_fn: LossFn,
    cfg: PGDConfig,
    *,
    freeze: Iterable[nn.Module] = (),
    autocast: Callable[[], ContextManager[Any]] = nullcontext,
    generator: torch.Generator | None = None,
    track: bool = False,
) -> AttackResult:
    """Return the adversarial perturbation for ``lq`` (detached, already projected).

    ``freeze``: modules (G, D) whose parameters must not receive gradients. With ``track`` the
    loss is recorded at the start and after every step (one extra forward), for tests and logs.
    """
    lq = lq.detach()
    gt = gt.detach()
    losses: list[float] = []
    with frozen([g, *freeze]):
        delta = structured_start(lq, cfg.eps, cfg.noise_scale, generator)
        for _ in range(cfg.iters):
            delta.requires_grad_(True)
            with autocast():
                loss = loss_fn(g(torch.clamp(lq + delta, 0.0, 1.0)), gt).float()
            (grad,) = torch.autograd.grad(loss, delta)
            losses.append(float(loss.detach()))
            delta = project(delta.detach() + cfg.alpha * grad.sign(), lq, cfg.eps)
        delta = project(delta.detach(), lq, cfg.eps)
        if track:
            with torch.no_grad(), autocast():
                losses.append(float(loss_fn(g(lq + delta), gt)))
    return AttackResult(delta, losses)
