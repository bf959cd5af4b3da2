"""One RSR training iteration: PGD on the LR input, then the G and D updates on the attacked input.

Kept apart from the driver (data, logging, checkpoints) so the benchmark and tests can time
and inspect exactly the computation a training run does.
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from ..methods.rrdbnet import RRDBNet
from .attack import PGDConfig, frozen, pgd_attack
from .discriminator import PairD, VGGStyleDiscriminator
from .losses import PerceptualLoss, VGGFeatures, d_gan_losses, g_gan_loss


class RSRStep:
    """Nets, optimisers, schedulers and the per-iteration update of the official recipe."""

    def __init__(
        self,
        cfg: dict[str, Any],
        *,
        g: RRDBNet,
        d: VGGStyleDiscriminator,
        vgg: VGGFeatures,
        device: torch.device,
        world: int = 1,
    ) -> None:
        t = cfg["train"]
        self.cfg, self.device = cfg, device
        self.g, self.d = g.to(device), d.to(device)
        self.g.train()
        self.d.train()
        self.vgg = vgg.to(device)
        self.perceptual = PerceptualLoss(self.vgg, float(t["perceptual_weight"]))
        self.pixel_weight = float(t["pixel_weight"])
        # NOT in the paper's recipe (0 there): L1 between the x`scale` box-averaged output and GT,
        # which pins colour, brightness and coarse contrast (see docs/training.md, "dark drift")
        self.lowfreq_weight = float(t.get("lowfreq_weight") or 0.0)
        self.scale = int(cfg["scale"])
        self.gan_weight = float(t["gan_weight"])
        pair = PairD(self.d)
        if world > 1:
            ids = [device.index] if device.type == "cuda" else None
            self.g_run: nn.Module = DDP(self.g, device_ids=ids)
            self.pd_run: nn.Module = DDP(pair, device_ids=ids)
        else:
            self.g_run, self.pd_run = self.g, pair
        betas = tuple(t["betas"])
        lr_d = t["lr_d"] if t["lr_d"] is not None else t["lr"]
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=t["lr"], betas=betas, weight_decay=t["weight_decay"])
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=lr_d, betas=betas, weight_decay=t["weight_decay"])
        self.sched_g = torch.optim.lr_scheduler.MultiStepLR(self.opt_g, t["milestones"], t["gamma"])
        self.sched_d = torch.optim.lr_scheduler.MultiStepLR(self.opt_d, t["milestones"], t["gamma"])
        amp = t["amp"]
        self.bf16 = device.type == "cuda" and amp in ("auto", "bf16")
        a = cfg["attack"]
        self.attack_loss_name = a["loss"]
        self.pgd = PGDConfig.from_cfg(a)

    def autocast(self):  # noqa: ANN201 - a context manager
        if self.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def pixel(self, out: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(out, gt) * self.pixel_weight

    def lowfreq(self, out: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """``lowfreq_weight * L1(avgpool_s(out), avgpool_s(gt))``, s = the SR scale (off: 0)."""
        s = self.scale
        return F.l1_loss(F.avg_pool2d(out, s), F.avg_pool2d(gt, s)) * self.lowfreq_weight

    def attack_loss(self, out: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """The official attack objective: the training L1 and/or perceptual terms, same weights."""
        name = self.attack_loss_name
        loss = out.new_zeros(())
        if name in ("l1", "l1+perceptual"):
            loss = loss + self.pixel(out.float(), gt)
        if name in ("perceptual", "l1+perceptual"):
            loss = loss + self.perceptual(out, gt).float()
        return loss

    def scheduler_step(self, it: int) -> None:
        """BasicSR ``update_learning_rate``: step every scheduler before iterations 2, 3, ..."""
        if it > 1:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "step() before optimizer.step()"
                self.sched_g.step()
                self.sched_d.step()

    def __call__(self, lq: torch.Tensor, gt: torch.Tensor, it: int) -> dict[str, float]:
        self.scheduler_step(it)
        logs: dict[str, float] = {}
        if self.attack_loss_name != "none" and self.pgd.iters > 0:
            res = pgd_attack(self.g, lq, gt, self.attack_loss, self.pgd, freeze=[self.d], autocast=self.autocast)
            lq_in = lq + res.delta
            logs["attack_loss_start"] = res.losses[0]
            logs["attack_loss_last"] = res.losses[-1]
            logs["delta_linf"] = float(res.delta.abs().max())
        else:
            lq_in = lq

        # generator: L1 + perceptual + relativistic GAN on the attacked input, D frozen
        self.opt_g.zero_grad(set_to_none=True)
        with frozen([self.d]):
            with self.autocast():
                out = self.g_run(lq_in)
                l_pix = self.pixel(out.float(), gt)
                l_percep = self.perceptual(out, gt).float()
                real_pred = self.d(gt).detach().float()
                fake_pred = self.d(out).float()
                l_gan = g_gan_loss(real_pred, fake_pred) * self.gan_weight
                l_total = l_pix + l_percep + l_gan
                if self.lowfreq_weight:
                    l_low = self.lowfreq(out.float(), gt)
                    l_total = l_total + l_low
                    logs["l_g_lowfreq"] = float(l_low.detach())
            l_total.backward()
        self.opt_g.step()

        # discriminator: relativistic average, real and fake as separate BN batches
        self.opt_d.zero_grad(set_to_none=True)
        with self.autocast():
            real_pred, fake_pred = self.pd_run(gt, out.detach())
        l_d_real, l_d_fake = d_gan_losses(real_pred.float(), fake_pred.float())
        (l_d_real + l_d_fake).backward()
        self.opt_d.step()

        logs.update(
            l_g_pix=float(l_pix.detach()),
            l_g_percep=float(l_percep.detach()),
            l_g_gan=float(l_gan.detach()),
            l_d_real=float(l_d_real.detach()),
            l_d_fake=float(l_d_fake.detach()),
            out_d_real=float(real_pred.detach().mean()),
            out_d_fake=float(fake_pred.detach().mean()),
            lr=self.opt_g.param_groups[0]["lr"],
        )
        return logs

    def state(self) -> dict[str, Any]:
        return {
            "optimizers": [self.opt_g.state_dict(), self.opt_d.state_dict()],
            "schedulers": [self.sched_g.state_dict(), self.sched_d.state_dict()],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.opt_g.load_state_dict(state["optimizers"][0])
        self.opt_d.load_state_dict(state["optimizers"][1])
        self.sched_g.load_state_dict(state["schedulers"][0])
        self.sched_d.load_state_dict(state["schedulers"][1])
