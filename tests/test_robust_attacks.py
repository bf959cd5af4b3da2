"""The lab's attack front-end over the one PGD of the project (rsr_bench.train.attack.pgd_attack).

Planted bugs this module catches (each tried by hand, one at a time):
- the gradient step descending instead of ascending (loss after the attack not higher);
- no projection onto the eps-ball or the [0, 1] range (the attacked input leaves either);
- the attack leaving ``requires_grad`` off, or gradients accumulated in the model's weights;
- the random start seeded from the clock or Python's ``hash()`` (two attacks differ);
- the same start for every image (seed not derived from the image id);
- a precomputed method crashing instead of getting a "not differentiable" reason;
- an image too large for memory crashing instead of a per-image ImageError;
- the 16-bit PNG of an attacked input rounding the perturbation to 8 bits.
"""

from __future__ import annotations

import pytest
import torch

from rsr_bench.errors import ImageError
from rsr_bench.image import imresize, read_image
from rsr_bench.methods.rrdbnet import RRDBNet
from rsr_bench.robust.attacks import _Differentiable, attack_image, attack_loss, check_memory, differentiable_forward
from rsr_bench.robust.derived import encode_png16
from rsr_bench.robust.naming import AttackSpec


def _pair(seed: int = 0, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    hr = torch.rand(3, 4 * size, 4 * size, generator=g)
    hr = torch.nn.functional.avg_pool2d(hr[None], 5, 1, 2)[0]  # some structure, not white noise
    return imresize(hr[None].double(), 0.25).float()[0].clamp(0, 1), hr


def _rrdb() -> _Differentiable:
    """A small RRDBNet as a residual over bicubic (an untrained RRDBNet alone outputs ~0, which the
    output clamp turns into a zero gradient)."""
    torch.manual_seed(0)
    net = RRDBNet(nf=8, nb=1, gc=4).eval()
    return _Differentiable(lambda x: imresize(x.double(), 4.0).float() + net(x), net, torch.device("cpu"), 0)


def _bicubic() -> _Differentiable:
    return _Differentiable(lambda x: imresize(x.double(), 4.0).float(), None, torch.device("cpu"), 0)


@pytest.mark.parametrize("make", [_rrdb, _bicubic], ids=["rrdbnet", "bicubic"])
def test_attack_raises_the_loss_and_stays_in_the_ball_and_range(make):
    fwd = make()
    lr, hr = _pair()
    lr[0, :2, :2] = 0.0  # pixels at the range limits: the projection must keep them inside
    lr[1, -2:, -2:] = 1.0
    loss = attack_loss("l1", torch.device("cpu"))
    spec = AttackSpec("pgd", 8.0, iters=5)
    before = [p.detach().clone() for p in fwd.parameters()]
    flags = [p.requires_grad for p in fwd.parameters()]
    adv = attack_image(fwd, lr, hr, spec, loss, "img")
    with torch.no_grad():
        clean_loss = float(loss(fwd(lr[None]), hr[None]))
        adv_loss = float(loss(fwd(adv[None]), hr[None]))
    assert adv_loss > clean_loss * 1.05
    assert float((adv - lr).abs().max()) <= spec.eps + 1e-6
    assert float((adv - lr).abs().max()) > 0.5 * spec.eps  # it did move
    assert adv.min() >= 0 and adv.max() <= 1
    for p, b, f in zip(fwd.parameters(), before, flags):
        assert torch.equal(p, b) and p.grad is None and p.requires_grad == f


def test_random_start_is_seeded_per_image_and_reproducible():
    fwd, (lr, hr) = _bicubic(), _pair()
    loss = attack_loss("l1", torch.device("cpu"))
    spec = AttackSpec("pgd", 4.0, iters=1, step255=0.001)  # the start dominates
    a = attack_image(fwd, lr, hr, spec, loss, "img")
    b = attack_image(fwd, lr, hr, spec, loss, "img")
    c = attack_image(fwd, lr, hr, spec, loss, "other")
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_sixteen_bit_png_keeps_the_perturbation(tmp_path):
    lr, _ = _pair()
    adv = (lr + 0.5 / 255).clamp(0, 1)  # half an 8-bit step
    p = tmp_path / "a.png"
    p.write_bytes(encode_png16(adv))
    back = read_image(p)
    assert float((back - adv).abs().max()) < 1 / 65535 + 1e-6
    assert float((back - lr).abs().mean()) > 0.3 / 255


def test_precomputed_method_is_not_differentiable(tmp_path):
    from rsr_bench.methods.cards import load_method, parse_card

    card = tmp_path / "pub.yaml"
    card.write_text("family: pub\nadapter: rsr_bench.adapters.precomputed:load\nvariants:\n  x4:\n    scale: 4\n"
                    f"    options: {{root: {tmp_path}}}\n")
    (spec,) = parse_card(card)
    fwd, reason = differentiable_forward(load_method(spec))
    assert fwd is None and reason.startswith("not differentiable") and "pub.x4" in reason


def test_image_too_large_for_memory_is_a_per_image_error():
    fwd = _Differentiable(lambda x: x, None, torch.device("cpu"), 10**15)
    with pytest.raises(ImageError, match="needs ~.* GiB"):
        check_memory(fwd, torch.zeros(3, 64, 64), "x.png (x)")
