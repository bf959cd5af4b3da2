"""Training configuration: defaults = the official RSR recipe, YAML files, ``KEY=VALUE`` overrides.

The defaults reproduce ``options/train/RSR.yml`` of BCV-Uniandes/RSR (conventions section 3),
so a config file only states what it changes. Unknown keys are errors (with a did-you-mean),
because a misspelt key that is silently ignored would train the wrong recipe for hours.
Values written as ``a/b`` (``attack.eps=14/255``) are read as fractions.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..registry import did_you_mean
from ..files import read_yaml_mapping

ATTACK_LOSSES = ("l1", "perceptual", "l1+perceptual", "none")

DEFAULTS: dict[str, Any] = {
    "name": "rsr",
    "seed": 0,
    "out": None,  # default: experiments/<name> under the current directory
    "scale": 4,
    "model": {
        "nf": 64,
        "nb": 23,
        "gc": 32,
        # generator init: a checkpoint file (any official RRDBNet layout), a method name known to
        # `rsr-bench list` (e.g. realesrgan.x4plus), or null for random init. The paper starts
        # from ESRGAN_SRx4_DF2KOST_official, which is not obtainable offline.
        "pretrain_g": None,
        "pretrain_d": None,
        "d_nf": 64,
    },
    "data": {
        "hr_dir": "datasets/DIV2K/DIV2K_train_HR",
        "lr_dir": None,  # set -> paired folders (matched by stem); null -> MATLAB bicubic LR on the fly
        "subimages": {"size": 480, "step": 240, "thresh": 0},  # null -> one sample per image
        "gt_size": 128,
        "use_flip": True,
        "use_rot": True,
        "quantize_lr": True,  # official LR are uint8 PNGs written by MATLAB
        "batch_size": 16,  # per process
        "num_workers": 6,  # per process
        "cache_images": 4,  # decoded images kept per worker (LRU)
    },
    "train": {
        "total_iter": 30000,
        "lr": 1e-4,
        "lr_d": None,  # null -> same as lr
        "betas": [0.9, 0.99],
        "weight_decay": 0.0,
        "milestones": [4000, 8000, 10000, 12000, 16000, 20000, 25000],
        "gamma": 0.5,
        "pixel_weight": 1e-2,
        "perceptual_weight": 1.0,
        "gan_weight": 5e-3,
        # NOT part of the paper's recipe (0 = off, as in RSR.yml): weight of an L1 loss between the
        # output and the GT both box-averaged by `scale` (colour/brightness/coarse-contrast anchor).
        # On in configs/train/small_cpu_*.yaml against the dark drift of short small-batch runs.
        "lowfreq_weight": 0.0,
        "device": "auto",  # auto | cpu | cuda
        "amp": "auto",  # auto (bf16 on cuda, off on cpu) | bf16 | off
        "resume": "auto",  # auto (latest state in out/) | off | path to a .state file
        "stop_after": None,  # stop (as if killed) after this iteration; for tests and time budgets
        "deterministic": False,
        "threads": None,  # CPU threads per process (torch.set_num_threads); null = torch's default
    },
    "perceptual": {
        # auto: vgg19 conv5_4 when vgg19_weights is set (the paper), else vgg16 conv5_3 from the
        # LPIPS mirror (a logged deviation). random-vgg16: untrained weights, tests only.
        "backbone": "auto",
        "vgg19_weights": None,
    },
    "attack": {
        "loss": "l1+perceptual",  # l1 | perceptual | l1+perceptual | none (= plain ESRGAN)
        "eps": 14 / 255,
        "alpha": 1 / 255,
        "iters": 2,
        "noise_scale": 1.5,  # structured start grid int(H//s) x int(W//s); 1 = per pixel
    },
    "logger": {
        "print_freq": 100,
        "save_checkpoint_freq": 1000,
        "tensorboard": True,
        "log_samples": False,  # write the sample indices each rank consumed (tests)
        "progress": True,
    },
    "val": {
        "freq": None,  # iterations; null -> no periodic validation
        "datasets": [],
        "metrics": ["psnr", "lpips"],
        "limit": None,
    },
    "card": {
        "family": "trained",
        "tag": None,  # default: name
        "trained_on": ["DIV2K"],
        "description": None,
    },
}

_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
_FRACTION = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*/\s*(\d+(?:\.\d*)?)\s*$")


def parse_value(text: str) -> Any:
    """YAML scalar parsing plus ``a/b`` fractions (``12/255``) and ``2e-4`` (a string in YAML 1.1)."""
    m = _FRACTION.match(text)
    if m:
        return float(m.group(1)) / float(m.group(2))
    if _NUMBER.match(text) and not text.strip().lstrip("+-").isdigit():
        return float(text)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse value {text!r}: {exc}") from exc


def _fractions(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _fractions(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_fractions(v) for v in obj]
    if isinstance(obj, str) and (_FRACTION.match(obj) or _NUMBER.match(obj)):
        return parse_value(obj)
    return obj


def _known_keys(tree: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for k, v in tree.items():
        keys.append(prefix + k)
        if isinstance(v, dict) and k != "subimages":
            keys += _known_keys(v, f"{prefix}{k}.")
    return keys


def set_key(cfg: dict[str, Any], dotted: str, value: Any, *, where: str = "override") -> None:
    """Set ``a.b.c`` in ``cfg``; the key must exist in :data:`DEFAULTS`."""
    parts = dotted.split(".")
    node: Any = cfg
    ref: Any = DEFAULTS
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        is_free = ref is None or (isinstance(ref, dict) and parts[i - 1 : i] == ["subimages"])
        if not isinstance(ref, dict) or (part not in ref and not is_free):
            raise ConfigError(
                f"{where}: unknown key {dotted!r}.{did_you_mean(dotted, _known_keys(DEFAULTS))}"
            )
        ref = ref.get(part) if isinstance(ref, dict) else None
        if last:
            node[part] = value
        else:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]


def _merge(cfg: dict[str, Any], data: Mapping[str, Any], prefix: str, where: str) -> None:
    for k, v in data.items():
        key = f"{prefix}{k}"
        ref = DEFAULTS
        for part in key.split("."):
            ref = ref.get(part) if isinstance(ref, dict) else None
        if isinstance(v, dict) and isinstance(ref, dict) and k != "subimages":
            _merge(cfg, v, key + ".", where)
        else:
            set_key(cfg, key, v, where=where)


def load_config(path: str | os.PathLike | None = None, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Defaults, then the YAML file (which may name a ``base:`` file), then ``KEY=VALUE`` items."""
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        for layer, where in _file_layers(Path(path)):
            _merge(cfg, layer, "", where)
    apply_overrides(cfg, overrides)
    validate(cfg)
    return cfg


def _file_layers(path: Path, depth: int = 0) -> list[tuple[dict[str, Any], str]]:
    if depth > 8:
        raise ConfigError(f"{path}: 'base:' chain too deep")
    data = read_yaml_mapping(path, what="training config")
    data = _fractions(data)
    layers = []
    base = data.pop("base", None)
    if base:
        layers += _file_layers((path.parent / base).resolve(), depth + 1)
    # relative data paths are resolved against the working directory, as BasicSR does
    layers.append((data, str(path)))
    return layers


def apply_overrides(cfg: dict[str, Any], overrides: Iterable[str] | Mapping[str, Any]) -> None:
    items = overrides.items() if isinstance(overrides, Mapping) else (_split(o) for o in overrides)
    for key, value in items:
        set_key(cfg, key, parse_value(value) if isinstance(value, str) else value)
    validate(cfg)


def _split(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} must look like KEY=VALUE (e.g. attack.eps=12/255)")
    return key.strip(), value


def get(cfg: Mapping[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def validate(cfg: dict[str, Any]) -> None:
    """Cheap checks that fail before any model is built."""
    a = cfg["attack"]
    if a["loss"] not in ATTACK_LOSSES:
        raise ConfigError(f"attack.loss must be one of {ATTACK_LOSSES}, got {a['loss']!r}")
    for key in ("eps", "alpha", "noise_scale"):
        if not isinstance(a[key], (int, float)) or a[key] < 0:
            raise ConfigError(f"attack.{key} must be a non-negative number, got {a[key]!r}")
    if a["noise_scale"] < 1:
        raise ConfigError(f"attack.noise_scale must be >= 1, got {a['noise_scale']}")
    if not isinstance(a["iters"], int) or a["iters"] < 0:
        raise ConfigError(f"attack.iters must be a non-negative integer, got {a['iters']!r}")
    d = cfg["data"]
    if d["gt_size"] % cfg["scale"]:
        raise ConfigError(f"data.gt_size {d['gt_size']} must be a multiple of scale {cfg['scale']}")
    if cfg["train"]["amp"] is False:  # YAML 1.1 reads a bare `off` as false
        cfg["train"]["amp"] = "off"
    if cfg["train"]["amp"] not in ("auto", "bf16", "off"):
        raise ConfigError(f"train.amp must be auto, bf16 or off, got {cfg['train']['amp']!r}")
    if cfg["perceptual"]["backbone"] not in ("auto", "vgg19", "vgg16", "random-vgg16"):
        raise ConfigError(
            f"perceptual.backbone must be auto, vgg19, vgg16 or random-vgg16, got {cfg['perceptual']['backbone']!r}"
        )
    if "." in str(cfg["card"]["family"]):
        raise ConfigError("card.family must not contain '.'")


def out_dir(cfg: Mapping[str, Any]) -> Path:
    return Path(cfg["out"]) if cfg["out"] else Path("experiments") / str(cfg["name"])


def dump(cfg: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(cfg), sort_keys=False)
