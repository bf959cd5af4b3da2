"""Plant known training bugs one at a time and show that the training tests catch each of them.

A script, not a test. It copies the working tree (tracked and untracked-but-not-ignored files) to a
temporary folder, checks that the unmutated copy passes the training tests, then for every mutation
below rewrites one file of the copy (each snippet must occur exactly once), runs the training tests
of the copy with the copy first on ``PYTHONPATH`` (the repository itself is never modified), and
restores the file. It prints a table and exits 1 if any mutation survived.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mutate_train.py            # all mutations
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mutate_train.py --only 3 7  # some of them

By default the suite run is ``pytest -m "not slow" -x tests/test_train_*.py`` (what CI runs);
``--slow`` includes the slow end-to-end tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    description: str
    file: str
    hunks: tuple[tuple[str, str], ...]  # (exact original snippet, mutated snippet)


M = Mutation
MUTATIONS: list[Mutation] = [
    M("generator trained on the clean LR (perturbation computed but not applied)", "rsr_bench/train/step.py",
      (("lq_in = lq + res.delta", "lq_in = lq + 0 * res.delta"),)),
    M("the attack's backward accumulates gradients into the generator", "rsr_bench/train/attack.py",
      (("    with frozen([g, *freeze]):", "    with frozen(list(freeze)):"),
       ("            (grad,) = torch.autograd.grad(loss, delta)",
        "            loss.backward()\n            grad = delta.grad"))),
    M("VGG input not ImageNet-normalised", "rsr_bench/train/losses.py",
      (("return self.features((x - self.mean) / self.std)", "return self.features(x)"),)),
    M("perturbation added with the wrong sign in the training step", "rsr_bench/train/step.py",
      (("lq_in = lq + res.delta", "lq_in = lq - res.delta"),)),
    M("perturbation 255x too large in the training step (0-255 vs 0-1 scale)", "rsr_bench/train/step.py",
      (("lq_in = lq + res.delta", "lq_in = lq + res.delta * 255"),)),
    M("training LR fed as BGR", "rsr_bench/train/data.py",
      (('return {"lq": lr.contiguous(),', 'return {"lq": lr.flip(0).contiguous(),'),)),
    M("discriminator step swaps real and fake", "rsr_bench/train/step.py",
      (("real_pred, fake_pred = self.pd_run(gt, out.detach())", "real_pred, fake_pred = self.pd_run(out.detach(), gt)"),)),
    M("generator's relativistic GAN term swaps real and fake", "rsr_bench/train/step.py",
      (("l_gan = g_gan_loss(real_pred, fake_pred) * self.gan_weight", "l_gan = g_gan_loss(fake_pred, real_pred) * self.gan_weight"),)),
    M("attack loss ignores the perceptual term", "rsr_bench/train/step.py",
      (('        if name in ("perceptual", "l1+perceptual"):\n            loss = loss + self.perceptual(out, gt).float()',
        '        if name in ("perceptual",):\n            loss = loss + self.perceptual(out, gt).float()'),)),
    M("PGD steps skipped (only the structured start noise is used)", "rsr_bench/train/attack.py",
      (("delta = project(delta.detach() + cfg.alpha * grad.sign(), lq, cfg.eps)", "delta = project(delta.detach(), lq, cfg.eps)"),)),
    M("attack ascends with a flipped sign (descends the loss)", "rsr_bench/train/attack.py",
      (("delta.detach() + cfg.alpha * grad.sign()", "delta.detach() - cfg.alpha * grad.sign()"),)),
    M("no projection onto [0, 1] / the eps-ball after a step", "rsr_bench/train/attack.py",
      (("    delta = delta.clamp(-eps, eps)\n    return torch.max(torch.min(delta, 1 - lq), -lq)", "    return delta"),)),
    M("requires_grad not restored after the attack", "rsr_bench/train/attack.py",
      (("            p.requires_grad_(f)", "            pass"),)),
    M("the attack steps the generator", "rsr_bench/train/attack.py",
      (("    with frozen([g, *freeze]):", "    with frozen(list(freeze)):"),
       ("            (grad,) = torch.autograd.grad(loss, delta)",
        "            grad, *gps = torch.autograd.grad(loss, [delta, *g.parameters()])\n"
        "            with torch.no_grad():\n"
        "                for p, gp in zip(g.parameters(), gps):\n"
        "                    p.sub_(1e-4 * gp.sign())"))),
    M("perceptual loss taken after the ReLU of conv5_x (one layer too deep)", "rsr_bench/train/losses.py",
      (('CUT = {"vgg19": 35, "vgg16": 29}', 'CUT = {"vgg19": 36, "vgg16": 30}'),)),
    M("generator's relativistic GAN loss: real and fake labels swapped", "rsr_bench/train/losses.py",
      (("real_pred - fake_pred.mean(), torch.zeros_like(real_pred))", "real_pred - fake_pred.mean(), torch.ones_like(real_pred))"),
       ("fake_pred - real_pred.mean(), torch.ones_like(fake_pred))\n    return (l_real + l_fake) / 2",
        "fake_pred - real_pred.mean(), torch.zeros_like(fake_pred))\n    return (l_real + l_fake) / 2"))),
    M("training LR not the crop at its GT's position (one LR pixel off)", "rsr_bench/train/data.py",
      (("lr = self.bicubic_lr(hr, top, left)", "lr = self.bicubic_lr(hr, max(top - 1, 0), left)"),)),
]


def tree_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return [f for f in out.split("\0") if f and (ROOT / f).is_file()]


def copy_tree(dest: Path) -> None:
    for f in tree_files():
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, dest / f)


def run_suite(copy: Path, slow: bool) -> tuple[bool, str, float]:
    tests = sorted(str(p.relative_to(copy)) for p in (copy / "tests").glob("test_train*.py"))
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *([] if slow else ["-m", "not slow"]), *tests]
    env = {**os.environ, "PYTHONPATH": str(copy), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("FAILED") or ln.startswith("ERROR")]
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-200:]
    if proc.returncode != 0 and os.environ.get("MUTATE_VERBOSE"):
        print(proc.stdout[-4000:], proc.stderr[-2000:])
    return proc.returncode == 0, (lines[0] if lines else summary), time.time() - t0


def check_import(copy: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(copy)}
    where = subprocess.run([sys.executable, "-c", "import rsr_bench; print(rsr_bench.__file__)"], cwd=copy, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    if not Path(where).resolve().is_relative_to(copy.resolve()):
        raise SystemExit(f"the copy is not what Python imports ({where}); refusing to run")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", type=int, nargs="*", help="mutation numbers (1-based)")
    ap.add_argument("--slow", action="store_true", help="also run the slow training tests")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    chosen = [(i, m) for i, m in enumerate(MUTATIONS, 1) if not args.only or i in args.only]
    if args.list:
        for i, m in chosen:
            print(f"{i:2d}. {m.description}  [{m.file}]")
        return 0
    with tempfile.TemporaryDirectory(prefix="mutate-train-") as tmp:
        copy = Path(tmp)
        copy_tree(copy)
        check_import(copy)
        os.environ["MUTATE_VERBOSE"] = "1"
        ok, msg, dt = run_suite(copy, args.slow)
        del os.environ["MUTATE_VERBOSE"]
        print(f"unmutated copy: {'passes' if ok else 'FAILS'} ({dt:.0f} s) {'' if ok else msg}", flush=True)
        if not ok:
            return 2
        rows = []
        for i, m in chosen:
            path = copy / m.file
            original = path.read_text()
            text = original
            for old, new in m.hunks:
                n = text.count(old)
                if n != 1:
                    raise SystemExit(f"mutation {i}: snippet occurs {n} times in {m.file}: {old!r}")
                text = text.replace(old, new)
            try:
                path.write_text(text)
                passed, msg, dt = run_suite(copy, args.slow)
            finally:
                path.write_text(original)
            rows.append((i, m, not passed, msg, dt))
            print(f"{i:2d} {'caught' if not passed else 'NOT CAUGHT':<10} {dt:5.0f} s  {m.description}  <- {msg}", flush=True)
    caught = sum(r[2] for r in rows)
    print(f"\n| # | planted bug | file | caught | first failing test |\n|---|---|---|---|---|")
    for i, m, c, msg, _ in rows:
        first = msg.split(" - ")[0].replace("FAILED ", "").replace("ERROR ", "") if c else "-"
        print(f"| {i} | {m.description} | {m.file.split('/')[-1]} | {'yes' if c else '**no**'} | {first} |")
    print(f"\ncaught {caught} of {len(rows)}")
    return 0 if caught == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
