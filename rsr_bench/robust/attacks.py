"""Adversarial inputs for the robustness lab, through the one PGD implementation of the project
(:func:`rsr_bench.train.attack.pgd_attack`, the attack RSR trains against).

Evaluation differs from training only in its settings: a uniform per-pixel random start
(``noise_scale=1``, not RSR's structured 1.5), ``iters`` steps of ``alpha`` (default
2.5 eps / iters), and the loss: the L1 (or LPIPS) distance between the method's clamped output
and the clean HR, ascended. The attacked input is ``clamp(lr + delta)`` with ``delta`` in the
eps-ball and ``lr + delta`` in [0, 1] (``pgd_attack`` projects after every step).

- **White-box** (``~pgd@eps<k>``): each differentiable method is attacked through its own
  network: RRDBNet methods through the fp32 network of their engine, bicubic through
  :func:`rsr_bench.image.imresize` (a differentiable matrix product). A method with no gradient
  (precomputed outputs, an adapter plugin that offers none) gets a "not differentiable" reason.
  A plugin method can opt in by offering ``differentiable_forward(lr) -> sr`` (a torch function).
- **Transfer** (``~transfer@eps<k>``): the perturbation is crafted once on a surrogate
  (default ``realesrgan.x4plus``) and every method, differentiable or not, is evaluated on the
  same attacked inputs.

The random start of image ``id`` at ``eps`` is seeded from (id, eps), the same for every method
and for both attacks, on the CPU generator (a CUDA run draws the same start). The whole image
goes through the network with gradients: an RRDBNet attack keeps ~0.3 MB of activations per LR
pixel (measured: benchmarks/bench_robust.py), so an image whose attack would exceed half the
available memory is a per-image error naming the estimate, and the sweep goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..datasets import Sample
from ..errors import ConfigError, ImageError
from ..image import imresize
from ..methods.cards import Method
from ..train.attack import PGDConfig, pgd_attack
from .corruptions import seed_for
from .naming import AttackSpec

#: Bytes of activations an RRDBNet (nf 64, nb 23) attack step keeps per LR pixel (fp32, measured
#: with benchmarks/bench_robust.py --memory; rounded up).
RRDB_ATTACK_BYTES_PER_PX = 330_000
MEMORY_FRACTION = 0.5

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class _Differentiable(nn.Module):
    """A method's forward as a module, so that ``pgd_attack`` can freeze (and restore) its parameters."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], net: nn.Module | None, device: torch.device,
                 bytes_per_px: int) -> None:
        super().__init__()
        self.fn, self.net, self.device, self.bytes_per_px = fn, net, device, bytes_per_px

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.fn(lr)


def differentiable_forward(method: Method) -> tuple[nn.Module | None, str | None]:
    """``(module, None)`` for a method gradients can pass through, else ``(None, reason)``."""
    from ..methods.bicubic import BicubicMethod
    from ..methods.engine import RRDBEngine

    offered = getattr(method, "differentiable_forward", None)
    engine = getattr(method, "engine", None)
    if callable(offered):
        return _Differentiable(offered, None, torch.device("cpu"), 0), None
    if isinstance(engine, RRDBEngine):
        net = engine.net32
        fmt = torch.channels_last if engine.options.channels_last else torch.contiguous_format

        def rrdb(x: torch.Tensor) -> torch.Tensor:
            return net(x.to(memory_format=fmt))

        return _Differentiable(rrdb, net, engine.device, RRDB_ATTACK_BYTES_PER_PX), None
    if isinstance(method, BicubicMethod):
        scale = float(method.spec.scale)
        return _Differentiable(lambda x: imresize(x.double(), scale).float(), None, method.device, 0), None
    return None, (f"not differentiable: {method.spec.name} ({method.spec.adapter} adapter) offers no gradient "
                  "for a white-box attack; its transfer-attack numbers are comparable")


def attack_loss(name: str, device: torch.device) -> LossFn:
    """The distance the attack ascends between the clamped output and the clean HR."""
    if name == "l1":
        return lambda out, gt: (out.clamp(0, 1) - gt).abs().mean()
    if name == "lpips":
        from ..metrics import create_metric

        net = create_metric("lpips", device).net
        return lambda out, gt: net(out.clamp(0, 1), gt, normalize=True).mean()
    raise ConfigError(f"attack loss must be l1 or lpips, got {name!r}")


def check_memory(forward: nn.Module, lr: torch.Tensor, what: str) -> None:
    """Refuse (per image) an attack whose activations would not fit in the device's memory budget."""
    from ..methods.engine import available_memory

    need = forward.bytes_per_px * lr.shape[-2] * lr.shape[-1]
    avail = available_memory(forward.device) if need else None
    if avail is not None and need > MEMORY_FRACTION * avail:
        raise ImageError(f"{what}: a whole-image attack on {lr.shape[-1]}x{lr.shape[-2]} LR needs ~{need / 2**30:.1f} GiB "
                         f"of activations, more than {MEMORY_FRACTION:.0%} of the {avail / 2**30:.1f} GiB available "
                         "on this device (crop the images or use a larger device)")


def attack_image(forward: nn.Module, lr: torch.Tensor, hr: torch.Tensor, attack: AttackSpec, loss_fn: LossFn,
                 image_id: str, *, autocast: Callable[[], Any] = nullcontext) -> torch.Tensor:
    """The attacked LR ``(3, h, w)`` in [0, 1] of one image (``lr``/``hr``: ``(3, H, W)`` clean inputs)."""
    cfg = PGDConfig(eps=attack.eps, alpha=attack.alpha, iters=attack.iters, noise_scale=1.0)
    gen = torch.Generator(device=forward.device).manual_seed(seed_for(image_id, "attack-start", attack.level))
    x = lr[None].to(forward.device)
    res = pgd_attack(forward, x, hr[None].to(forward.device), loss_fn, cfg, generator=gen, autocast=autocast)
    return (x + res.delta).clamp(0, 1)[0].detach().cpu()


def pgd_maker(forward: nn.Module, loss_fn: LossFn, attack: AttackSpec, scale: int) -> Callable[[Sample], bytes]:
    """``make(sample) -> PNG bytes`` of the attacked LR, for :func:`rsr_bench.robust.derived.build_set`."""
    from .derived import encode_png16, load_pair

    def make(sample: Sample) -> bytes:
        lr, hr = load_pair(sample, scale)
        check_memory(forward, lr, f"{sample.lr_path} ({sample.id})")
        return encode_png16(attack_image(forward, lr, hr, attack, loss_fn, sample.id))

    return make


def load_for_attack(name: str, method_cards: Sequence[str | Path], device: str | torch.device,
                    run_options: dict[str, Any] | None = None) -> Method:
    """Fetch (on first use) and load a registered method as a run does: a ``checkpoint`` run
    option the adapter takes replaces the card's weight sources, so nothing is fetched then."""
    from ..fetch import make_available
    from ..methods.cards import adapter_for, get_spec, load_method, load_method_specs
    from ..runner import resolve_device

    spec = get_spec(name, load_method_specs(method_cards))
    opts = dict(run_options or {})
    if not (opts.get("checkpoint") and "checkpoint" in adapter_for(spec).run_options):
        make_available(spec)
    return load_method(spec, device=resolve_device(device), run_options=opts)


def transfer_maker(attack: AttackSpec, scale: int, ctx: Any) -> tuple[Callable[[Sample], bytes], dict[str, str]]:
    """The maker of a transfer set (PGD on ``attack.surrogate``) and the surrogate's identity."""
    method = load_for_attack(attack.surrogate, ctx.method_cards, ctx.device)
    forward, reason = differentiable_forward(method)
    if forward is None:
        raise ConfigError(f"transfer surrogate {attack.surrogate}: {reason}")
    if method.spec.scale != scale:
        raise ConfigError(f"transfer surrogate {attack.surrogate} is x{method.spec.scale}, the dataset is x{scale}")
    info = {"name": method.spec.name, "fingerprint": method.fingerprint}
    return pgd_maker(forward, attack_loss(attack.loss, forward.device), attack, scale), info
