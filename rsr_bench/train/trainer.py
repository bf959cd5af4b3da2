"""The training driver: one run of the RSR recipe (or the plain ESRGAN baseline) end to end.

Launch with ``rsr-bench train CONFIG.yaml [KEY=VALUE ...]`` for one process, or under torchrun
(``torchrun --nproc_per_node N -m rsr_bench.train CONFIG.yaml ...``) for DDP. Rank 0 logs,
checkpoints and writes the method card; every rank saves its own RNG state so a resumed run
continues exactly where an uninterrupted one would be.
"""

from __future__ import annotations

import csv
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..files import atomic_write_text, sha256_file
from ..errors import ConfigError
from ..methods.rrdbnet import RRDBNet
from . import checkpoint as ckpt
from . import config as C
from . import dist
from .data import ShardedSampler, SRTrainDataset, batches
from .discriminator import VGGStyleDiscriminator
from .losses import build_perceptual
from .step import RSRStep

log = logging.getLogger("rsr_bench.train")

CSV_FIELDS = [
    "iter", "lr", "l_g_pix", "l_g_percep", "l_g_gan", "l_d_real", "l_d_fake", "out_d_real", "out_d_fake",
    "attack_loss_start", "attack_loss_last", "delta_linf", "l_g_lowfreq", "time_s",
]


def _setup_logging(out: Path, is_main: bool) -> None:
    log.setLevel(logging.INFO if is_main else logging.WARNING)
    log.propagate = False
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(fmt)
    log.addHandler(console)
    if is_main:
        fh = logging.FileHandler(out / "train.log", encoding="utf-8")
        fh.setFormatter(fmt)
        log.addHandler(fh)


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def init_generator(cfg: dict[str, Any]) -> tuple[RRDBNet, dict[str, Any]]:
    """Build G and initialise it from ``model.pretrain_g`` (file or method name), strictly."""
    m = cfg["model"]
    g = RRDBNet(nf=m["nf"], nb=m["nb"], gc=m["gc"], scale=cfg["scale"])
    ref = m.get("pretrain_g")
    if not ref:
        log.info("generator: random initialisation (model.pretrain_g is null)")
        return g, {"pretrain_g": None}
    if Path(str(ref)).is_file():
        from ..methods.layouts import load_checkpoint

        loaded = load_checkpoint(ref)
        src: dict[str, Any] = {"pretrain_g": str(Path(ref).resolve()), "layout": loaded.layout,
                               "sha256": sha256_file(ref)}
        net = loaded.net
    else:
        net, src = _net_from_method(str(ref))
    try:
        g.load_state_dict(net.state_dict(), strict=True)
    except RuntimeError as exc:
        raise ConfigError(f"model.pretrain_g {ref}: does not fit nf={m['nf']} nb={m['nb']} gc={m['gc']}: {exc}") from None
    log.info("generator: initialised from %s", ref)
    return g, src


def _net_from_method(name: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The RRDBNet of a registered method (e.g. a genuine checkpoint from a registry mirror).

    Written against both card layouts (``adapter: rrdb`` with a ``weights:`` block, and the older
    ``adapter: rsr_bench.methods.rrdb:load`` with ``options.asset``), so a card change elsewhere in
    the package does not break training from a method name.
    """
    from ..methods import cards
    from ..methods.layouts import load_checkpoint

    spec = cards.get_spec(name, cards.load_method_specs())
    adapter = getattr(cards, "adapter_name", lambda ref: ref)(spec.adapter)
    if adapter.partition(":")[0] not in ("rrdb", "rsr_bench.methods.rrdb"):
        raise ConfigError(f"model.pretrain_g {name!r}: not an RRDBNet method (adapter {spec.adapter})")
    try:
        from ..methods.weights import fetch as fetch_weights
    except ImportError:  # the older layout: the adapter module fetches
        from ..methods.rrdb import fetch as fetch_weights
    path = fetch_weights(spec)  # downloads / converts a mirror on first use, sha256-verified
    loaded = load_checkpoint(path, param_key=spec.options.get("param_key"))
    src: dict[str, Any] = {"pretrain_g": name, "file": str(path), "sha256": sha256_file(path), "layout": loaded.layout}
    try:
        from ..fetch.assets import asset_provenance

        asset = getattr(getattr(spec, "weights", None), "asset", None) or spec.options.get("asset")
        if asset:
            src["provenance"] = asset_provenance(asset if not isinstance(asset, str) else str(asset))
    except Exception as exc:  # provenance is informative only
        src["provenance"] = {"error": str(exc)}
    return loaded.net, src


def _csv_append(path: Path, row: dict[str, Any]) -> None:
    new = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow(row)


def _csv_truncate(path: Path, last_iter: int) -> None:
    """After a resume, drop rows the crashed run logged past the checkpoint."""
    if not path.exists():
        return
    with path.open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["iter"]) <= last_iter]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def _tensorboard(out: Path, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.info("TensorBoard not installed: losses go to losses.csv only")
        return None
    return SummaryWriter(str(out / "tb"))


def train(cfg: dict[str, Any]) -> Path:
    """Run (or resume) one training run; returns the run folder."""
    threads = torch.get_num_threads()
    try:
        return _train(cfg)
    finally:
        torch.set_num_threads(threads)  # train.threads must not leak into the caller's process
        for h in list(log.handlers):
            if isinstance(h, logging.FileHandler):
                log.removeHandler(h)
                h.close()


def _train(cfg: dict[str, Any]) -> Path:
    t = cfg["train"]
    info = dist.init(t["device"])
    out = C.out_dir(cfg)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
    dist.barrier()
    _setup_logging(out, info.is_main)
    if t.get("threads"):
        torch.set_num_threads(int(t["threads"]))
    _seed(int(cfg["seed"]) + info.rank)  # BasicSR: seed + rank
    if t.get("deterministic"):
        torch.use_deterministic_algorithms(True, warn_only=True)
    if info.device.type == "cuda":
        torch.backends.cudnn.benchmark = not t.get("deterministic")

    # rank 0 first: it may download and convert weights (generator mirror, VGG16 features) that
    # the other ranks then find in the cache instead of fetching them concurrently
    if not info.is_main:
        dist.barrier()
    g, g_source = init_generator(cfg)
    vgg, percep_info = build_perceptual(cfg)
    if info.is_main:
        dist.barrier()
    d = VGGStyleDiscriminator(nf=cfg["model"]["d_nf"], input_size=cfg["data"]["gt_size"])
    if cfg["model"].get("pretrain_d"):
        ckpt.load_net(Path(cfg["model"]["pretrain_d"]), d)
    step = RSRStep(cfg, g=g, d=d, vgg=vgg, device=info.device, world=info.world)

    dataset = SRTrainDataset(cfg)
    bs = int(cfg["data"]["batch_size"])
    sampler = ShardedSampler(len(dataset), batch_size=bs, world=info.world, rank=info.rank, seed=int(cfg["seed"]))

    start_iter = 0
    resume = t.get("resume", "auto")
    state_path = None
    if resume not in (None, "off", False):
        state_path = ckpt.latest_state(out) if resume == "auto" else Path(resume)
    if state_path is not None:
        state = ckpt.load_state(state_path)
        start_iter = int(state["iter"])
        run_dir = state_path.parent.parent
        ckpt.load_net(run_dir / "models" / f"net_g_{start_iter}.pth", g)
        ckpt.load_net(run_dir / "models" / f"net_d_{start_iter}.pth", d)
        step.load_state(state)
        rng = state_path.with_name(f"{start_iter}.rng{info.rank}")
        if rng.is_file():
            ckpt.set_rng_state(torch.load(rng, map_location="cpu", weights_only=True))
        else:
            log.warning("no RNG state for rank %d at iteration %d: reseeding", info.rank, start_iter)
            _seed(int(cfg["seed"]) * 7919 + start_iter + info.rank)
        log.info("resumed from %s at iteration %d", state_path, start_iter)
        if info.is_main:
            _csv_truncate(out / "losses.csv", start_iter)

    total = int(t["total_iter"])
    metadata = {
        "config": cfg,
        "code": ckpt.code_version(),
        "data": {"hr_dir": str(Path(cfg["data"]["hr_dir"]).resolve()), "lr_dir": cfg["data"]["lr_dir"],
                 "images": len(dataset.hr_paths), "samples": len(dataset), "lr": "paired folder" if cfg["data"]["lr_dir"]
                 else "MATLAB bicubic x%d on the fly" % cfg["scale"]},
        "perceptual": percep_info,
        "generator_init": g_source,
        "attack": cfg["attack"],
        "world_size": info.world,
        "device": str(info.device),
        "amp": "bf16" if step.bf16 else "off",
        "recipe": "esrgan (no attack)" if cfg["attack"]["loss"] == "none" else "rsr (PGD)",
    }
    if info.is_main:
        atomic_write_text(out / "config.yaml", C.dump(cfg))
        log.info("run folder %s; %d samples from %d images; world %d; device %s; amp %s",
                 out, len(dataset), len(dataset.hr_paths), info.world, info.device, metadata["amp"])
    if start_iter >= total:
        log.info("nothing to do: iteration %d >= train.total_iter %d", start_iter, total)
        if info.is_main:
            _finish(cfg, out, start_iter, metadata, None)
        return out

    tb = _tensorboard(out, bool(cfg["logger"]["tensorboard"])) if info.is_main else None
    lg = cfg["logger"]
    stop_after = t.get("stop_after")
    sample_log = (out / f"samples_rank{info.rank}.txt").open("a") if lg.get("log_samples") else None
    data_iter = batches(dataset, sampler, start_iter=start_iter, num_workers=int(cfg["data"]["num_workers"]),
                        pin_memory=info.device.type == "cuda")
    bar = None
    if info.is_main and lg.get("progress", True):
        from tqdm import tqdm

        bar = tqdm(total=total, initial=start_iter, unit="it", dynamic_ncols=True, desc=cfg["name"])
    last_saved = None
    t0 = time.time()
    it = start_iter
    try:
        while it < total:
            batch = next(data_iter)
            it += 1
            lq = batch["lq"].to(info.device, non_blocking=True)
            gt = batch["gt"].to(info.device, non_blocking=True)
            if sample_log:
                sample_log.write(" ".join(str(int(i)) for i in batch["index"]) + "\n")
                sample_log.flush()
            logs = step(lq, gt, it)
            if it % int(lg["print_freq"]) == 0 or it == total or it == start_iter + 1:
                logs = dist.mean_across(logs, info.device)
                if info.is_main:
                    row = {"iter": it, "time_s": round(time.time() - t0, 3), **logs}
                    _csv_append(out / "losses.csv", row)
                    if tb:
                        for k, v in logs.items():
                            tb.add_scalar(f"train/{k}", v, it)
                    log.info("iter %d lr %.3g l_pix %.4f l_percep %.4f l_gan %.4f l_d %.4f/%.4f%s", it, logs["lr"],
                             logs["l_g_pix"], logs["l_g_percep"], logs["l_g_gan"], logs["l_d_real"], logs["l_d_fake"],
                             f" attack {logs['attack_loss_start']:.4f}->{logs['attack_loss_last']:.4f}" if "attack_loss_start" in logs else "")
            if bar:
                bar.update(1)
            if it % int(lg["save_checkpoint_freq"]) == 0 or it == total or (stop_after and it >= stop_after):
                _save(out, it, g, d, step, metadata, info)
                last_saved = it
            vf = cfg["val"].get("freq")
            if vf and it % int(vf) == 0 and info.is_main:
                if last_saved != it:
                    _save(out, it, g, d, step, metadata, info, sync=False)
                    last_saved = it
                validate(cfg, out, it, tb)
            if stop_after and it >= int(stop_after):
                log.warning("stopping at iteration %d (train.stop_after)", it)
                return out
    finally:
        if bar:
            bar.close()
        if sample_log:
            sample_log.close()
        if tb:
            tb.close()
    if info.is_main:
        elapsed = time.time() - t0
        log.info("done: %d iterations in %.1f s (%.3f it/s)", it - start_iter, elapsed, (it - start_iter) / max(elapsed, 1e-9))
        _finish(cfg, out, it, metadata, tb)
    dist.barrier()
    return out


def _save(out: Path, it: int, g: Any, d: Any, step: RSRStep, metadata: dict[str, Any], info: dist.DistInfo, sync: bool = True) -> None:
    if info.is_main:
        ckpt.save_checkpoint(out, it, g=g, d=d, train_state=step.state(), metadata=metadata)
    ckpt.save_rng(out, it, info.rank)
    if sync:
        dist.barrier()


def card_names(cfg: dict[str, Any]) -> tuple[str, str]:
    tag = str(cfg["card"]["tag"] or cfg["name"]).replace(".", "_")
    return str(cfg["card"]["family"]), tag


def _finish(cfg: dict[str, Any], out: Path, it: int, metadata: dict[str, Any], tb: Any) -> None:
    family, tag = card_names(cfg)
    weights = out / "models" / f"net_g_{it}.pth"
    desc = cfg["card"]["description"] or (
        f"{metadata['recipe']} trained by rsr-bench: {it} iterations, perceptual {metadata['perceptual'].get('backbone')}"
        f", init {metadata['generator_init'].get('pretrain_g')}"
    )
    init_licence = str(((metadata["generator_init"] or {}).get("provenance") or {}).get("licence") or "")
    path = ckpt.write_card(out / "method_card.yaml", family=family, tag=tag, weights=weights, cfg=cfg, description=desc,
                           label=ckpt.card_label(cfg, metadata, it), init_licence=init_licence)
    log.info("method card %s: evaluate with  rsr-bench run --methods %s.%s --method-card %s", path, family, tag, path)


def validate(cfg: dict[str, Any], out: Path, it: int, tb: Any) -> dict[str, float] | None:
    """Evaluate checkpoint ``it`` through the harness's own runner; failures are logged, not fatal."""
    v = cfg["val"]
    if not v.get("datasets"):
        return None
    family, tag = card_names(cfg)
    card = ckpt.write_card(out / "val" / f"card_{it}.yaml", family=family, tag=f"{tag}_iter{it}",
                           weights=out / "models" / f"net_g_{it}.pth", cfg=cfg, description=f"validation at iteration {it}")
    method = f"{family}.{tag}_iter{it}"
    try:
        from .. import store
        from ..runner import RunOptions, run

        store_dir = out / "val" / "store"
        run(RunOptions(methods=[method], datasets=list(v["datasets"]), metrics=list(v["metrics"]), store=store_dir,
                       limit=v.get("limit"), method_cards=[card], keep_going=True, progress=False), log=log.info)
        df = store.load_results(store_dir)
        means = df[df["method"] == method].groupby(["dataset", "metric"])["value"].mean()
    except Exception as exc:  # validation must never kill a long training run
        log.warning("validation at iteration %d failed: %s", it, exc)
        return None
    result = {f"{d}/{m}": float(val) for (d, m), val in means.items()}
    for key, val in result.items():
        log.info("validation iter %d %s = %.4f", it, key, val)
        if tb:
            tb.add_scalar(f"val/{key}", val, it)
    path = out / "val.csv"
    new = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        if new:
            w.writerow(["iter", "dataset", "metric", "value"])
        for (d, m), val in means.items():
            w.writerow([it, d, m, f"{val:.6f}"])
    return result
