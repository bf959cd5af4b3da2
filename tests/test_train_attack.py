"""PGD attack, discriminator and losses of the RSR recipe (conventions section 3)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rsr_bench.methods.rrdbnet import RRDBNet
from rsr_bench.train.attack import PGDConfig, pgd_attack, project, start_grid, structured_start
from rsr_bench.train.discriminator import VGGStyleDiscriminator
from rsr_bench.train.losses import d_gan_losses, g_gan_loss


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny convs on a shared CPU run many times faster on one thread; restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _tiny_g(seed: int = 0) -> RRDBNet:
    torch.manual_seed(seed)
    return RRDBNet(nf=8, nb=1, gc=8).double()


def _l1(out: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(out, gt)


def test_structured_start_grid_21x21_for_32px_at_1_5() -> None:
    assert start_grid(32, 32, 1.5) == (21, 21)
    assert start_grid(32, 32, 1) == (32, 32)
    assert start_grid(32, 32, 2) == (16, 16)
    lq = torch.zeros(2, 3, 32, 32)
    delta = structured_start(lq, 14 / 255, 1.5, torch.Generator().manual_seed(0))
    assert delta.shape == lq.shape
    # nearest upsampling of a 21-cell grid: each row has exactly 21 distinct runs
    runs = (delta[0, 0, 0, 1:] != delta[0, 0, 0, :-1]).sum().item() + 1
    assert runs == 21
    assert delta.abs().max() <= 14 / 255
    # per channel: channels are drawn independently
    assert not torch.equal(delta[:, 0], delta[:, 1])
    # s = 1: per-pixel noise, no upsampling
    d1 = structured_start(lq, 0.1, 1.0, torch.Generator().manual_seed(0))
    assert (d1[0, 0, 0, 1:] != d1[0, 0, 0, :-1]).all()


def test_attack_stays_in_eps_ball_and_valid_range() -> None:
    g = _tiny_g()
    torch.manual_seed(1)
    lq = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    lq[0, 0, :4] = 0.0  # pixels at the range limits: projection must keep lq + delta in [0, 1]
    lq[0, 1, :4] = 1.0
    gt = torch.rand(2, 3, 64, 64, dtype=torch.float64)
    eps = 14 / 255
    cfg = PGDConfig(eps=eps, alpha=4 / 255, iters=5, noise_scale=1.5)
    delta = pgd_attack(g, lq, gt, _l1, cfg).delta
    assert delta.abs().max() <= eps + 1e-12
    x = lq + delta
    assert x.min() >= 0 and x.max() <= 1
    assert not delta.requires_grad


def test_project_order_matches_official() -> None:
    lq = torch.tensor([0.0, 0.5, 0.99])
    d = project(torch.tensor([-0.2, 0.2, 0.05]), lq, 0.1)
    assert torch.allclose(d, torch.tensor([0.0, 0.1, 0.01]))


def test_each_pgd_step_does_not_decrease_loss() -> None:
    """Small steps on a fixed smooth network: signed-gradient ascent raises the loss every step."""
    g = _tiny_g()
    torch.manual_seed(2)
    lq = torch.rand(1, 3, 16, 16, dtype=torch.float64) * 0.6 + 0.2  # away from the range limits
    gt = torch.rand(1, 3, 64, 64, dtype=torch.float64)
    cfg = PGDConfig(eps=8 / 255, alpha=1e-4, iters=6, noise_scale=1.5)
    res = pgd_attack(g, lq, gt, _l1, cfg, generator=torch.Generator().manual_seed(0), track=True)
    assert len(res.losses) == cfg.iters + 1
    for a, b in zip(res.losses, res.losses[1:]):
        assert b >= a


def test_attack_leaves_g_and_d_untouched() -> None:
    g = _tiny_g()
    d = VGGStyleDiscriminator(nf=8, input_size=64).double()
    before_g = {k: v.clone() for k, v in g.state_dict().items()}
    before_d = {k: v.clone() for k, v in d.state_dict().items()}
    flags = [p.requires_grad for p in (*g.parameters(), *d.parameters())]
    lq = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    gt = torch.rand(1, 3, 64, 64, dtype=torch.float64)
    pgd_attack(g, lq, gt, _l1, PGDConfig(iters=2), freeze=[d])
    for k, v in g.state_dict().items():
        assert torch.equal(v, before_g[k])
    for k, v in d.state_dict().items():
        assert torch.equal(v, before_d[k])
    assert all(p.grad is None for p in (*g.parameters(), *d.parameters()))
    assert [p.requires_grad for p in (*g.parameters(), *d.parameters())] == flags


def test_discriminator_keys_match_basicsr_128() -> None:
    d = VGGStyleDiscriminator(nf=64, input_size=128)
    sd = d.state_dict()
    assert sd["linear1.weight"].shape == (100, 512 * 4 * 4)
    assert sd["conv0_0.bias"].shape == (64,) and "conv0_1.bias" not in sd
    assert sd["conv4_1.weight"].shape == (512, 512, 4, 4) and "bn4_1.running_mean" in sd
    assert sum(p.numel() for p in d.parameters()) == 14_499_401  # BasicSR VGGStyleDiscriminator128, counted layer by layer


def test_relativistic_losses() -> None:
    real, fake = torch.tensor([2.0, 1.0]), torch.tensor([-1.0, 0.0])
    bce = F.binary_cross_entropy_with_logits
    expect_g = (bce(real - fake.mean(), torch.zeros(2)) + bce(fake - real.mean(), torch.ones(2))) / 2
    assert torch.allclose(g_gan_loss(real, fake), expect_g)
    lr_, lf = d_gan_losses(real, fake)
    assert torch.allclose(lr_, 0.5 * bce(real - fake.mean(), torch.ones(2)))
    assert torch.allclose(lf, 0.5 * bce(fake - real.mean(), torch.zeros(2)))
