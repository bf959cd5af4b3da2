"""Checkpoints in BasicSR's layout, their metadata, resumable training states, method cards.

Layout under the run folder (as BasicSR's ``experiments/<name>/``)::

    config.yaml                      the effective configuration
    models/net_g_<iter>.pth          {'params': state_dict}   (loadable by the rrdb adapter)
    models/net_g_<iter>.json         metadata: config, code version, data, perceptual backbone
    models/net_d_<iter>.pth          {'params': state_dict}
    models/net_g_latest.pth          copy of the newest generator
    training_states/<iter>.state     iteration, optimisers, schedulers (rank 0)
    training_states/<iter>.rng<r>    RNG states of rank r
    method_card.yaml                 makes the trained model a method for ``rsr-bench run``

Every file is written atomically and the ``.state`` file last, so a state file that exists
always has its networks next to it.
"""

from __future__ import annotations

import io
import logging
import random
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from ..files import atomic_write_bytes, atomic_write_json, atomic_write_text

log = logging.getLogger("rsr_bench.train")


def _torch_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def save_net(path: Path, net: torch.nn.Module) -> None:
    sd = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    atomic_write_bytes(path, _torch_bytes({"params": sd}))


def load_net(path: Path, net: torch.nn.Module) -> None:
    obj = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(obj["params"], strict=True)


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def code_version() -> dict[str, Any]:
    from .. import __version__

    info: dict[str, Any] = {"rsr_bench": __version__, "torch": torch.__version__}
    try:
        root = Path(__file__).resolve().parents[2]
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if rev.returncode == 0:
            info["git_commit"] = rev.stdout.strip()
            dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "rsr_bench"], capture_output=True, text=True, timeout=5)
            info["git_dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def save_checkpoint(
    out: Path, it: int, *, g: torch.nn.Module, d: torch.nn.Module, train_state: dict[str, Any], metadata: dict[str, Any]
) -> Path:
    """Rank 0: networks, metadata, latest copy, then the training state."""
    models = out / "models"
    g_path = models / f"net_g_{it}.pth"
    save_net(g_path, g)
    save_net(models / f"net_d_{it}.pth", d)
    atomic_write_json(models / f"net_g_{it}.json", {**metadata, "iteration": it, "weights": g_path.name})
    tmp = models / ".net_g_latest.pth.tmp"
    shutil.copyfile(g_path, tmp)
    tmp.replace(models / "net_g_latest.pth")
    atomic_write_json(models / "net_g_latest.json", {**metadata, "iteration": it, "weights": g_path.name})
    atomic_write_bytes(out / "training_states" / f"{it}.state", _torch_bytes({"iter": it, **train_state}))
    return g_path


def save_rng(out: Path, it: int, rank: int) -> None:
    atomic_write_bytes(out / "training_states" / f"{it}.rng{rank}", _torch_bytes(rng_state()))


def latest_state(out: Path) -> Path | None:
    states = out / "training_states"
    if not states.is_dir():
        return None
    found = []
    for p in states.glob("*.state"):
        m = re.fullmatch(r"(\d+)\.state", p.name)
        if m and (out / "models" / f"net_g_{m.group(1)}.pth").is_file():
            found.append((int(m.group(1)), p))
    return max(found)[1] if found else None


def load_state(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def card_label(cfg: dict[str, Any], metadata: dict[str, Any], it: int) -> str:
    """The "trained here" line of a trained model: what it is, on what data, how long, from what.

    Why in the card (its ``paper:`` field, which every results manifest copies): the paper table
    and the HTML report print it beside the published rows, so a project-trained model can never
    pass for an official checkpoint, and the facts are written once, from the run's own metadata.
    """
    from ..report.model import TRAINED_HERE

    data = metadata.get("data") or {}
    init = (metadata.get("generator_init") or {}).get("pretrain_g") or "random"
    sets = ", ".join(cfg["card"]["trained_on"] or []) or Path(str(data.get("hr_dir", "?"))).name
    world = int(metadata.get("world_size") or 1)
    batch = f"{cfg['data']['batch_size']}" + (f" x {world} ranks" if world > 1 else "")
    return (f"{TRAINED_HERE} (rsr-bench train, run {cfg['name']}; not a published checkpoint): "
            f"{metadata.get('recipe', '?')}, {it} iterations, batch {batch}, {cfg['data']['gt_size']} px GT, "
            f"data {sets} ({data.get('images', '?')} images), init {Path(str(init)).name}")


def write_card(path: Path, *, family: str, tag: str, weights: Path, cfg: dict[str, Any], description: str,
               label: str, init_licence: str = "") -> Path:
    """A method card so ``rsr-bench run --method-card PATH`` (or ``RSR_BENCH_METHODS``) can evaluate it.

    The current card format (``methods/cards.py``): the built-in ``rrdb`` adapter by its short
    name, the checkpoint as a local ``options.checkpoint`` (weights resolution takes a local file
    first), ``paper:`` holding the :func:`card_label`, so it reaches every manifest.
    """
    card = {
        "family": family,
        "adapter": "rrdb",
        "paper": label,
        "licence": "weights trained by the user of rsr-bench" + (f"; initialisation: {init_licence}" if init_licence else ""),
        "description": description,
        "variants": {
            tag: {
                "description": description,
                "trained_on": list(cfg["card"]["trained_on"] or []),
                "scale": int(cfg["scale"]),
                "options": {"checkpoint": str(Path(weights).resolve()), "param_key": "params"},
            }
        },
    }
    atomic_write_text(path, yaml.safe_dump(card, sort_keys=False, width=100))
    return path
