"""Adapter for every RRDBNet method (ESRGAN, RSR, Impressionism, ESRGAN-FS, Real-ESRGAN).

The weights are found by :mod:`rsr_bench.methods.weights` (a local ``checkpoint``, the official
file dropped in by hand, or the card's asset), loaded with ``weights_only=True``, their key
layout detected and converted, and loaded strictly (:mod:`rsr_bench.methods.layouts`).
``fingerprint`` is the sha256 of the loaded file; ``provenance`` records the source
(``"registry mirror (fp16-rounded copy of the official weights)"``, ``"official"`` or
``"local file"``), URLs, layout and engine settings.

Options (card ``options``; ``checkpoint``, ``tile``, ``precision`` and ``compile`` also as run options)::

    checkpoint: path            param_key: params_ema | params
    tile: 0 | int (LR px)       tile_overlap: int      tile_batch: int
    precision: auto | fp32 | bf16 | fp16               channels_last: bool
    compile: bool (torch.compile; falls back to eager with a warning)
    memory_fraction: float      max_memory_gb: float
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..files import sha256_file
from . import weights
from .cards import Adapter, ImageKey, MethodSpec

if TYPE_CHECKING:  # the engine (torch) is imported on load: `rsr-bench list methods` stays under 1 s
    import torch

    from .engine import RRDBEngine


def _option_keys() -> set[str]:
    from .engine import EngineOptions

    return {"checkpoint", "param_key"} | set(EngineOptions.__dataclass_fields__)


@dataclass
class RRDBMethod:
    """A loaded RRDBNet method: ``predict`` runs the :class:`RRDBEngine`."""

    spec: MethodSpec
    engine: RRDBEngine
    fingerprint: str
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def predict(self, lr: torch.Tensor, images: Sequence[ImageKey] = ()) -> torch.Tensor:
        return self.engine(lr)


def _check_options(spec: MethodSpec, options: Mapping[str, Any]) -> None:
    from .layouts import LAYOUTS

    keys = _option_keys()
    extra = set(options) - keys
    if extra:
        moved = " (weight sources moved to the variant's `weights:` block)" if extra & {"asset", "official"} else ""
        raise ConfigError(f"method {spec.name}: unknown option(s) {sorted(extra)}; allowed: {sorted(keys)}{moved}")
    layout = spec.weights.official.layout if spec.weights and spec.weights.official else None
    if layout is not None and layout not in LAYOUTS:
        raise ConfigError(f"method {spec.name}: weights.official.layout must be one of {LAYOUTS}, got {layout!r}")


def load(spec: MethodSpec, *, device: torch.device | str, options: Mapping[str, Any]) -> RRDBMethod:
    """Resolve, verify and load the weights strictly; build the inference engine on ``device``."""
    from .engine import RRDBEngine, engine_options
    from .layouts import load_checkpoint

    _check_options(spec, options)
    eng_opts = engine_options(dict(options))
    path, prov, layout = weights.resolve(spec, options, download=True)
    loaded = load_checkpoint(path, layout=layout, param_key=options.get("param_key"))
    if loaded.arch.scale != spec.scale:
        raise ConfigError(f"method {spec.name}: card says x{spec.scale} but {path} is an x{loaded.arch.scale} network")
    sha = prov.get("sha256") or sha256_file(path)
    engine = RRDBEngine(loaded.net, device=device, options=eng_opts)
    provenance = {
        **{k: v for k, v in prov.items() if v is not None},
        "file": path.name,
        "sha256": sha,
        "layout": loaded.layout,
        "wrapper": loaded.wrapper,
        "arch": dict(loaded.arch.__dict__),
        "engine": engine.provenance(),
    }
    return RRDBMethod(spec=spec, engine=engine, fingerprint=sha, provenance=provenance)


def identify(spec: MethodSpec, options: Mapping[str, Any]) -> str | None:
    """The fingerprint :func:`load` gives (the weights' sha256), from the files alone: nothing
    is downloaded or built. ``None`` when the weights are not here yet (loading fetches them)."""
    path, prov, _ = weights.resolve(spec, options, download=False)
    return prov.get("sha256") or sha256_file(path)


ADAPTER = Adapter("rrdb", load, identify=identify, availability=weights.availability, fetch=weights.fetch,
                  run_options=frozenset({"checkpoint", "tile", "precision", "compile"}))
