"""Methods: the predict interface, method cards (``methods/*.yaml``) and the method registry.

A method card is data: one YAML file per family, one entry per checkpoint variant. The code
that turns a card into a runnable :class:`Method` is an *adapter* named in the card
(``"module:function"``), imported only when that method is used.

Card format::

    family: impressionism            # names become "impressionism.<tag>"
    adapter: rsr_bench.methods.rrdb:load
    paper: "..."                     # optional: paper, licence, url, description
    licence: "..."
    defaults: {scale: 4}             # merged into every variant
    variants:
      df2k:
        description: "..."
        trained_on: [NTIRE_syn]      # dataset names / training-domain labels (DIV2K, DF2K, ...)
        scale: 4
        options: {...}               # adapter-specific, validated by the adapter

An adapter module provides ``load(spec, *, device, options) -> Method`` and may provide
``availability(spec) -> str | None`` (``None`` when it can run, otherwise the reason and the
command that fixes it), which must be cheap: no network, no model construction.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from ..errors import ConfigError
from ..files import project_root
from ..registry import import_object, select, unknown
from ..files import read_yaml_mapping

CARD_KEYS = {"family", "adapter", "paper", "licence", "url", "description", "defaults", "variants"}
VARIANT_KEYS = {"description", "trained_on", "scale", "options", "adapter"}


@dataclass(frozen=True)
class MethodSpec:
    """Everything known about one method checkpoint before anything heavy is loaded."""

    name: str
    family: str
    tag: str
    adapter: str
    scale: int
    trained_on: tuple[str, ...] = ()
    description: str = ""
    paper: str = ""
    licence: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    card_path: Path | None = None


@runtime_checkable
class Method(Protocol):
    """A loaded method. ``predict`` maps ``(N,3,h,w)`` RGB float [0,1] to ``(N,3,h*s,w*s)``.

    Stateless between calls; device, precision and tiling are fixed at load time. Outputs may
    leave [0, 1]: the runner clamps and quantises once. ``fingerprint`` identifies the weights
    (sha256 of the checkpoint, or a constant for weight-free methods) so stale results are
    detected; ``provenance`` is recorded in each cell's manifest.
    """

    spec: MethodSpec
    fingerprint: str
    provenance: Mapping[str, Any]

    def predict(self, lr: torch.Tensor) -> torch.Tensor: ...


def _card_error(path: Path, msg: str) -> ConfigError:
    return ConfigError(f"method card {path}: {msg}")


def parse_card(path: Path) -> list[MethodSpec]:
    """Parse one card file into specs. Unknown keys are rejected by name."""
    data = read_yaml_mapping(path, what="method card")
    extra = set(data) - CARD_KEYS
    if extra:
        raise _card_error(path, f"unknown key(s) {sorted(extra)}; allowed: {sorted(CARD_KEYS)}")
    for key in ("family", "adapter", "variants"):
        if key not in data:
            raise _card_error(path, f"missing required key {key!r}")
    family = str(data["family"])
    if "." in family:
        raise _card_error(path, f"family {family!r} must not contain '.'")
    defaults = data.get("defaults") or {}
    variants = data["variants"]
    if not isinstance(variants, dict) or not variants:
        raise _card_error(path, "'variants' must be a non-empty mapping of tag -> entry")
    specs = []
    for tag, entry in variants.items():
        merged = {**defaults, **(entry or {})}
        extra = set(merged) - VARIANT_KEYS
        if extra:
            raise _card_error(path, f"variant {tag!r}: unknown key(s) {sorted(extra)}; allowed: {sorted(VARIANT_KEYS)}")
        trained_on = merged.get("trained_on") or []
        if isinstance(trained_on, str):
            trained_on = [trained_on]
        try:
            scale = int(merged.get("scale", 4))
        except (TypeError, ValueError):
            raise _card_error(path, f"variant {tag!r}: scale must be an integer") from None
        specs.append(
            MethodSpec(
                name=f"{family}.{tag}",
                family=family,
                tag=str(tag),
                adapter=str(merged.get("adapter", data["adapter"])),
                scale=scale,
                trained_on=tuple(str(t) for t in trained_on),
                description=str(merged.get("description", data.get("description", ""))),
                paper=str(data.get("paper", "")),
                licence=str(data.get("licence", "")),
                options=dict(merged.get("options") or {}),
                card_path=path,
            )
        )
    return specs


def card_dirs(extra: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """Card folders: the project's ``methods/``, ``RSR_BENCH_METHODS`` (os.pathsep list), extras."""
    dirs = [project_root() / "methods"]
    env = os.environ.get("RSR_BENCH_METHODS")
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs += [Path(p) for p in extra]
    return dirs


def load_method_specs(extra_cards: Iterable[str | os.PathLike] = ()) -> dict[str, MethodSpec]:
    """All registered method specs by name. ``extra_cards`` may be card files or folders."""
    specs: dict[str, MethodSpec] = {}
    for d in card_dirs(extra_cards):
        files = sorted(d.glob("*.yaml")) if d.is_dir() else [d]
        for f in files:
            if not f.is_file():
                raise ConfigError(f"method card {f} does not exist")
            for spec in parse_card(f):
                if spec.name in specs and specs[spec.name].card_path != f:
                    raise ConfigError(f"method {spec.name!r} defined in both {specs[spec.name].card_path} and {f}")
                specs[spec.name] = spec
    return specs


def select_methods(patterns: str | Iterable[str], specs: Mapping[str, MethodSpec]) -> list[MethodSpec]:
    return [specs[n] for n in select(patterns, specs, "method")]


def get_spec(name: str, specs: Mapping[str, MethodSpec]) -> MethodSpec:
    if name not in specs:
        raise unknown("method", name, specs)
    return specs[name]


def method_availability(spec: MethodSpec) -> str | None:
    """``None`` when the method can run here, otherwise the reason (with the fixing command)."""
    module_name = spec.adapter.partition(":")[0]
    check = import_object(f"{module_name}:availability") if _has_attr(module_name, "availability") else None
    return check(spec) if check else None


def _has_attr(module_name: str, attr: str) -> bool:
    import importlib

    try:
        return hasattr(importlib.import_module(module_name), attr)
    except ImportError as exc:
        raise ConfigError(f"cannot import adapter module {module_name!r}: {exc}") from exc


def load_method(spec: MethodSpec, *, device: torch.device | str = "cpu", **overrides: Any) -> Method:
    """Build the runnable method. ``overrides`` update the card's adapter options."""
    loader = import_object(spec.adapter)
    options = {**spec.options, **{k: v for k, v in overrides.items() if v is not None}}
    return loader(spec, device=torch.device(device), options=options)
