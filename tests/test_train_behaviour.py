"""Behavioural tests of the RSR training step: they fail when the training computation is wrong.

Each test runs the real code (:class:`rsr_bench.train.step.RSRStep`, the PGD attack, the losses,
the data pipeline) on tiny real networks (RRDBNet nf 8 / nb 1, VGG-style D nf 8 at 32 px, the
full VGG16/VGG19 feature stacks with seeded weights) and real photographs (scikit-image's
``chelsea``, ``coffee`` and ``astronaut``), in float64, deterministically, and compares it with an
independent computation written here from the recipe (conventions section 3), not with the code
under test.

Planted bugs these tests catch (``benchmarks/mutate_train.py`` plants each one in a temporary
copy of the package, runs the training tests and prints which were caught; every one must be):

 1. generator trained on the clean LR (perturbation computed but not applied)
 2. the attack's backward accumulates gradients into the generator
 3. VGG input not ImageNet-normalised
 4. perturbation added with the wrong sign in the training step
 5. perturbation 255x too large in the training step (0-255 vs 0-1 scale)
 6. training LR fed as BGR
 7. discriminator step swaps real and fake
 8. generator's relativistic GAN term swaps real and fake
 9. attack loss ignores the perceptual term
10. PGD steps skipped (only the structured start noise is used)
11. attack ascends with a flipped sign (descends the loss)
12. no projection onto [0, 1] / the eps-ball after a step
13. requires_grad not restored after the attack
14. the attack steps the generator
15. perceptual loss taken after the ReLU of conv5_x (one layer too deep)
16. generator's relativistic GAN term: labels of the real and fake terms swapped in the loss
17. training LR not the crop of the whole image's bicubic LR (crop position off by one LR pixel)
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rsr_bench.methods.rrdbnet import RRDBNet
from rsr_bench.train import config as C
from rsr_bench.train import step as step_mod
from rsr_bench.train.discriminator import VGGStyleDiscriminator
from rsr_bench.train.losses import PerceptualLoss, VGGFeatures
from rsr_bench.train.step import RSRStep

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
GT = 32  # the smallest patch the VGG-style D accepts
LQ = GT // 4


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---------------------------------------------------------------- real images, tiny real nets


def _photo(name: str) -> torch.Tensor:
    """A real photograph shipped with scikit-image, (3, H, W) float64 in [0, 1]."""
    import skimage.data

    return torch.from_numpy(getattr(skimage.data, name)().astype(np.float64) / 255).permute(2, 0, 1).contiguous()


def _imresize_quarter(hr: torch.Tensor) -> torch.Tensor:
    from rsr_bench.image import imresize

    return imresize(hr, 0.25)


def real_batch(n: int = 2, gt: int = GT) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` HR crops of real photographs and their MATLAB-bicubic x4 LR, float64."""
    spots = [("chelsea", 60, 140), ("coffee", 120, 220), ("astronaut", 40, 200), ("chelsea", 180, 260)]
    lqs, gts = [], []
    for name, top, left in spots[:n]:
        hr = _photo(name)[:, top : top + gt, left : left + gt]
        gts.append(hr)
        lqs.append(_imresize_quarter(hr).clamp(0, 1))
    return torch.stack(lqs), torch.stack(gts)


def vgg_state(arch: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """torchvision's VGG ``features`` with torchvision's own init, seeded: a stand-in for ImageNet weights."""
    from torchvision.models import vgg as tv_vgg

    torch.manual_seed(seed)
    feats = tv_vgg.make_layers(tv_vgg.cfgs[{"vgg16": "D", "vgg19": "E"}[arch]], batch_norm=False)
    for m in feats.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.normal_(m.bias, std=0.05)
    return {f"features.{k}": v for k, v in feats.state_dict().items()}


def ref_features(arch: str, state: dict[str, torch.Tensor], x: torch.Tensor, normalise: bool = True) -> torch.Tensor:
    """Reference: ImageNet-normalise with torchvision, run the VGG layers one by one, return the
    output of the last conv of block 5 (conv5_3 / conv5_4) before its ReLU."""
    from torchvision.models import vgg as tv_vgg
    from torchvision.transforms.functional import normalize

    feats = tv_vgg.make_layers(tv_vgg.cfgs[{"vgg16": "D", "vgg19": "E"}[arch]], batch_norm=False).to(x.dtype)
    feats.load_state_dict({k[len("features.") :]: v for k, v in state.items()})
    n_convs = {"vgg16": 13, "vgg19": 16}[arch]
    h = normalize(x, IMAGENET_MEAN, IMAGENET_STD) if normalise else x
    seen = 0
    for layer in feats:
        h = layer(h)
        if isinstance(layer, nn.Conv2d):
            seen += 1
            if seen == n_convs:
                return h
    raise AssertionError("unreachable")


class Nets:
    """Tiny G and D, a VGG16 perceptual net, an independent reference perceptual loss."""

    def __init__(self, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.g = RRDBNet(nf=8, nb=1, gc=8).double()
        self.d = VGGStyleDiscriminator(nf=8, input_size=GT).double()
        self.state = vgg_state("vgg16", seed)
        self.vgg = VGGFeatures("vgg16", self.state).double()

    def percep(self, out: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """Independent perceptual loss: L1 between reference conv5_3 features, GT side detached."""
        with torch.no_grad():
            target = ref_features("vgg16", self.state, gt)
        return (ref_features("vgg16", self.state, out) - target).abs().mean()


def cfg_for(**over: object) -> dict:
    cfg = C.load_config(None)
    C.apply_overrides(cfg, {"model.nf": 8, "model.nb": 1, "model.gc": 8, "model.d_nf": 8, "data.gt_size": GT,
                            "train.device": "cpu", **over})
    return cfg


def make_step(nets: Nets, **over: object) -> RSRStep:
    return RSRStep(cfg_for(**over), g=nets.g, d=nets.d, vgg=nets.vgg, device=torch.device("cpu"))


class AttackSpy:
    """Wraps the attack the step calls: records its result and whether G/D held gradients after it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, nets: Nets) -> None:
        self.results: list = []
        self.grads_after: list[bool] = []
        real = step_mod.pgd_attack

        def spy(*args, **kwargs):
            res = real(*args, **kwargs)
            self.results.append(res)
            params = [*nets.g.parameters(), *nets.d.parameters()]
            self.grads_after.append(any(p.grad is not None and p.grad.abs().sum() > 0 for p in params))
            return res

        monkeypatch.setattr(step_mod, "pgd_attack", spy)


def rel_gan_g(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    """ESRGAN's relativistic-average G loss, written from the paper: fakes judged more real than the
    average real image (label 1), reals judged less real than the average fake (label 0)."""
    real_pred = real_pred.detach()
    bce = F.binary_cross_entropy_with_logits
    return (bce(real_pred - fake_pred.mean(), torch.zeros_like(real_pred))
            + bce(fake_pred - real_pred.mean(), torch.ones_like(fake_pred))) / 2


def rel_gan_d(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    bce = F.binary_cross_entropy_with_logits
    return 0.5 * (bce(real_pred - fake_pred.detach().mean(), torch.ones_like(real_pred))
                  + bce(fake_pred - real_pred.detach().mean(), torch.zeros_like(fake_pred)))


def grads_of(step: RSRStep, net: nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in net.parameters()]


def assert_grads_close(got: list[torch.Tensor], want: list[torch.Tensor], what: str) -> None:
    num = sum(float((a - b).abs().sum()) for a, b in zip(got, want))
    den = sum(float(b.abs().sum()) for b in want)
    assert den > 0, f"{what}: the reference gradient is zero"
    assert num <= 1e-6 * den, f"{what}: relative L1 difference {num / den:.3g} from the reference"


# ---------------------------------------------------------------- perceptual network


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_perceptual_features_equal_torchvision_reference(arch: str) -> None:
    """conv5_3 (VGG16) / conv5_4 (VGG19) before ReLU, on ImageNet-normalised input, of a real photo."""
    state = vgg_state(arch, seed=1)
    ours = VGGFeatures(arch, state).double()
    x = _photo("coffee")[None, :, 100:164, 200:264]
    want = ref_features(arch, state, x)
    got = ours(x)
    assert got.shape == want.shape == (1, 512, 4, 4)
    assert torch.allclose(got, want, rtol=1e-6, atol=1e-6)  # ImageNet constants stored as float32
    assert (got < 0).any(), "features before the ReLU take negative values"
    # the input normalisation matters for this image: without it the features differ a lot
    unnorm = ref_features(arch, state, x, normalise=False)
    assert (unnorm - want).abs().mean() > 0.1 * want.abs().mean()
    # the genuine frozen feature extractor takes no gradient and stays in eval mode
    ours.train()
    assert not ours.training and not any(p.requires_grad for p in ours.parameters())


def test_perceptual_loss_value_is_l1_of_reference_features() -> None:
    nets = Nets()
    lq, gt = real_batch()
    out = nets.g(lq)
    got = PerceptualLoss(nets.vgg, 0.7)(out, gt)
    assert torch.allclose(got, 0.7 * nets.percep(out, gt), rtol=1e-6)


# ---------------------------------------------------------------- the attack inside the step


def reference_pgd(nets: Nets, lq: torch.Tensor, gt: torch.Tensor, seed: int, *, eps: float, alpha: float,
                  iters: int, noise_scale: float, loss: str) -> tuple[torch.Tensor, torch.Tensor]:
    """PGD as the official RSRModel does it, written independently: structured uniform start drawn
    from the global RNG on an int(H//s) x int(W//s) grid (float32, nearest-upsampled), then signed
    ascent steps on the attack loss with projection onto the eps-ball and [-lq, 1 - lq]."""
    torch.manual_seed(seed)
    n, c, h, w = lq.shape
    start = torch.empty(n, c, int(h // noise_scale), int(w // noise_scale)).uniform_(-eps, eps)
    start = F.interpolate(start, size=(h, w), mode="nearest").double()
    g = copy.deepcopy(nets.g)

    def attack_loss(x: torch.Tensor) -> torch.Tensor:
        out = g(x)
        total = out.new_zeros(())
        if "l1" in loss:
            total = total + 0.01 * (out - gt).abs().mean()
        if "perceptual" in loss:
            total = total + nets.percep(out, gt)
        return total

    delta = start.clone()
    for _ in range(iters):
        delta.requires_grad_(True)
        (grad,) = torch.autograd.grad(attack_loss(torch.clamp(lq + delta, 0, 1)), delta)
        delta = delta.detach() + alpha * grad.sign()
        delta = torch.maximum(torch.minimum(delta.clamp(-eps, eps), 1 - lq), -lq)
    return start, delta


@pytest.mark.parametrize("loss", ["l1+perceptual", "perceptual", "l1"])
def test_attack_in_step_is_pgd_on_the_recipe_loss(monkeypatch: pytest.MonkeyPatch, loss: str) -> None:
    """The perturbation the step trains on equals an independent PGD on the configured attack loss,
    and that PGD raises the (independently computed) attack loss."""
    nets = Nets()
    lq, gt = real_batch()
    ref_start, ref_delta = reference_pgd(nets, lq, gt, 7, eps=14 / 255, alpha=1 / 255, iters=2, noise_scale=1.5, loss=loss)
    g0 = copy.deepcopy(nets.g)  # the step updates G; the loss is evaluated with the G the attack saw
    spy = AttackSpy(monkeypatch, nets)
    step = make_step(nets, **{"attack.loss": loss})
    torch.manual_seed(7)
    step(lq, gt, 1)
    (res,) = spy.results
    assert res.delta.shape == lq.shape
    assert torch.allclose(res.delta.double(), ref_delta, atol=1e-6), (
        f"attack delta differs from reference PGD in {(res.delta - ref_delta).abs().gt(1e-6).float().mean():.1%} of pixels")
    assert res.delta.abs().max() <= 14 / 255 + 1e-7
    assert ((lq + res.delta) >= -1e-7).all() and ((lq + res.delta) <= 1 + 1e-7).all()
    # the steps moved the perturbation away from its random start, and raised the attack loss
    assert (res.delta.double() - ref_start).abs().max() > 0.5 / 255
    def loss_at(delta: torch.Tensor) -> float:
        with torch.no_grad():
            out = g0(torch.clamp(lq + delta, 0, 1))
            val = 0.0
            if "l1" in loss:
                val += 0.01 * float((out - gt).abs().mean())
            if "perceptual" in loss:
                val += float(nets.percep(out, gt))
            return val

    assert loss_at(ref_delta) > loss_at(ref_start)


def test_attack_value_is_the_recipe_loss() -> None:
    """RSRStep.attack_loss = 0.01 L1 + 1.0 perceptual (the training weights), nothing else."""
    nets = Nets()
    lq, gt = real_batch()
    out = nets.g(lq).detach()
    step = make_step(nets)
    want = 0.01 * (out - gt).abs().mean() + nets.percep(out, gt)
    assert torch.allclose(step.attack_loss(out, gt).double(), want, rtol=1e-6)


def test_attack_leaves_no_gradient_on_g_or_d_in_step(monkeypatch: pytest.MonkeyPatch) -> None:
    nets = Nets()
    lq, gt = real_batch()
    spy = AttackSpy(monkeypatch, nets)
    step = make_step(nets)
    torch.manual_seed(3)
    step(lq, gt, 1)
    assert spy.grads_after == [False], "the attack's backward left gradients on G or D"


# ---------------------------------------------------------------- the generator update


def test_generator_update_is_the_recipe_on_the_attacked_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """G's gradient in the step = d/dG [0.01 L1 + perceptual + 5e-3 RaGAN] of G(lq + delta) against the
    clean HR, computed independently on copies of G and D; and it is not the clean-input gradient."""
    nets = Nets()
    lq, gt = real_batch()
    g_ref, d_ref = copy.deepcopy(nets.g), copy.deepcopy(nets.d)
    spy = AttackSpy(monkeypatch, nets)
    step = make_step(nets)
    torch.manual_seed(11)
    step(lq, gt, 1)
    delta = spy.results[0].delta.double()
    assert delta.abs().max() > 1 / 255  # an attack that did something

    def ref_grads(x: torch.Tensor) -> list[torch.Tensor]:
        g, d = copy.deepcopy(g_ref), copy.deepcopy(d_ref)
        out = g(x)
        real_pred = d(gt).detach()
        fake_pred = d(out)
        loss = 0.01 * (out - gt).abs().mean() + nets.percep(out, gt) + 5e-3 * rel_gan_g(real_pred, fake_pred)
        return list(torch.autograd.grad(loss, list(g.parameters())))

    got = grads_of(step, nets.g)
    assert_grads_close(got, ref_grads(lq + delta), "G gradient on the attacked input")
    clean = ref_grads(lq)
    diff = sum(float((a - b).abs().sum()) for a, b in zip(got, clean)) / sum(float(b.abs().sum()) for b in clean)
    assert diff > 1e-3, "G's update does not depend on the perturbation"
    # Adam's first step moves every parameter against its gradient's sign
    moved = [p.detach() - q.detach() for p, q in zip(nets.g.parameters(), g_ref.parameters())]
    agree = sum(int(((m * gr < 0) & (gr.abs() > 1e-10)).sum()) for m, gr in zip(moved, got))
    total = sum(int((gr.abs() > 1e-10).sum()) for gr in got)
    assert agree == total


def test_generator_gan_step_makes_fakes_look_more_real() -> None:
    """With only the GAN term, one G step raises D's relativistic score of the fakes (D fixed)."""
    nets = Nets(seed=2)
    lq, gt = real_batch()
    step = make_step(nets, **{"attack.loss": "none", "train.pixel_weight": 0.0, "train.perceptual_weight": 0.0,
                              "train.gan_weight": 1.0, "train.lr": 1e-5, "train.lr_d": 0.0})
    g_ref, d_ref = copy.deepcopy(nets.g), copy.deepcopy(nets.d)

    def score(g: nn.Module) -> tuple[float, float]:
        d = copy.deepcopy(d_ref)
        with torch.no_grad():
            real, fake = d(gt), d(g(lq))
        return float((fake - real.mean()).mean()), float(rel_gan_g(real, fake))

    before_margin, before_loss = score(g_ref)
    step(lq, gt, 1)
    # the gradient is the independent RaGAN gradient
    g2, d2 = copy.deepcopy(g_ref), copy.deepcopy(d_ref)
    out = g2(lq)
    want = torch.autograd.grad(rel_gan_g(d2(gt).detach(), d2(out)), list(g2.parameters()))
    assert_grads_close(grads_of(step, nets.g), list(want), "G's GAN gradient")
    after_margin, after_loss = score(nets.g)
    assert after_margin > before_margin and after_loss < before_loss


# ---------------------------------------------------------------- the discriminator update


def test_discriminator_step_learns_real_versus_fake() -> None:
    """One D step (G frozen by lr 0) lowers the independent RaGAN D loss on (HR, G(LR)) and widens
    the gap between D's scores of real and fake; its gradient is the reference gradient."""
    nets = Nets(seed=3)
    lq, gt = real_batch()
    step = make_step(nets, **{"attack.loss": "none", "train.lr": 0.0, "train.lr_d": 1e-4})
    g_ref, d_ref = copy.deepcopy(nets.g), copy.deepcopy(nets.d)
    with torch.no_grad():
        fake = g_ref(lq)

    def d_stats(d: nn.Module) -> tuple[float, float]:
        d = copy.deepcopy(d)
        with torch.no_grad():
            rp, fp = d(gt), d(fake)
        return float(rel_gan_d(rp, fp)), float(rp.mean() - fp.mean())

    loss0, gap0 = d_stats(d_ref)
    step(lq, gt, 1)
    d2 = copy.deepcopy(d_ref)
    want = torch.autograd.grad(rel_gan_d(d2(gt), d2(fake)), list(d2.parameters()))
    assert_grads_close(grads_of(step, nets.d), list(want), "D gradient")
    loss1, gap1 = d_stats(nets.d)
    assert loss1 < loss0 and gap1 > gap0
    assert all(torch.equal(a, b) for a, b in zip(nets.g.parameters(), g_ref.parameters()))


# ---------------------------------------------------------------- training data: channel order


def test_training_lr_is_rgb_crop_of_whole_image_bicubic(tmp_path: Path) -> None:
    """A strongly red/orange real photo (chelsea): every training LR is the RGB crop of the whole
    image's MATLAB-bicubic LR at its GT's position, through the dataset and the batch loader."""
    from rsr_bench.image import read_image, write_png
    from rsr_bench.train.data import ShardedSampler, SRTrainDataset, batches

    photo = _photo("chelsea")[:, :200, :240].float()
    write_png(tmp_path / "hr" / "cat.png", photo)
    hr = read_image(tmp_path / "hr" / "cat.png")
    assert hr[0].mean() - hr[2].mean() > 0.1  # asymmetric colour: red well above blue
    full_lr = (_imresize_quarter(hr.double()).clamp(0, 1) * 255).round() / 255
    cfg = C.load_config(None, [f"data.hr_dir={tmp_path / 'hr'}", "data.subimages=null", "data.gt_size=64",
                               "data.use_flip=false", "data.use_rot=false", "data.num_workers=0"])
    ds = SRTrainDataset(cfg)
    sampler = ShardedSampler(len(ds), batch_size=1, seed=4)
    it = batches(ds, sampler, start_iter=0, num_workers=0)
    for _ in range(4):
        b = next(it)
        lq, gt = b["lq"][0].double(), b["gt"][0]
        # where is this GT in the HR image?
        hits = [(t, l_) for t in range(0, 200 - 64 + 1, 4) for l_ in range(0, 240 - 64 + 1, 4)
                if torch.equal(hr[:, t : t + 64, l_ : l_ + 64], gt)]
        assert len(hits) == 1
        t, l_ = hits[0][0] // 4, hits[0][1] // 4
        assert torch.allclose(lq, full_lr[:, t : t + 16, l_ : l_ + 16].double(), atol=1e-6)
        assert float(lq[0].mean() - lq[2].mean()) == pytest.approx(float(gt[0].mean() - gt[2].mean()), abs=0.02)


# ---------------------------------------------------------------- the option that is not in the paper


def test_lowfreq_anchor_off_in_official_recipe_and_exact_when_on() -> None:
    """``train.lowfreq_weight`` (not in the paper) is 0 in the official config; when on, G's gradient
    gains exactly w * d/dG L1(4x4-box-mean(out), 4x4-box-mean(GT))."""
    configs = Path(__file__).resolve().parents[1] / "configs" / "train"
    assert C.load_config(configs / "rsr_official.yaml")["train"]["lowfreq_weight"] == 0
    assert C.load_config(configs / "esrgan_baseline.yaml")["train"]["lowfreq_weight"] == 0
    nets = Nets(seed=4)
    lq, gt = real_batch()
    g_ref, d_ref = copy.deepcopy(nets.g), copy.deepcopy(nets.d)
    step = make_step(nets, **{"attack.loss": "none", "train.lowfreq_weight": 2.0})
    logs = step(lq, gt, 1)

    def box(x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.reshape(n, c, h // 4, 4, w // 4, 4).mean((3, 5))

    out = g_ref(lq)
    low = (box(out) - box(gt)).abs().mean()
    loss = (0.01 * (out - gt).abs().mean() + nets.percep(out, gt)
            + 5e-3 * rel_gan_g(d_ref(gt).detach(), d_ref(out)) + 2.0 * low)
    want = torch.autograd.grad(loss, list(g_ref.parameters()))
    assert_grads_close(grads_of(step, nets.g), list(want), "G gradient with the low-frequency anchor")
    assert logs["l_g_lowfreq"] == pytest.approx(2.0 * float(low.detach()), rel=1e-6)
