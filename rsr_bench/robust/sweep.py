"""``rsr-bench robust``: a corruption and attack sweep of methods x paired datasets, into the store.

Order of work (every option is checked, and every name resolved, before anything runs):

1. generate the corrupted and transfer-attacked inputs once (:mod:`rsr_bench.robust.derived`);
2. one ordinary ``run`` over the clean base sets and all those derived sets: every method is
   loaded once, cells are resumable, manifests and skip reasons are the runner's own;
3. per differentiable method, the white-box PGD inputs (cached per method and weights), each
   evaluated with :func:`rsr_bench.runner.run_cell` into ``cells/<method>/<base>~pgd@eps<k>/``;
   a method with no gradient gets its "not differentiable" reason in ``skipped.json``.

Images a corruption or attack could not be applied to (too small, too large for memory) get an
error record in every cell of that set, so they show in the report's failures and the sweep
goes on. ``bicubic.x4``, the reference of the corruption error (mCE), is added to the methods
when it is not among them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from .. import store
from ..datasets import DatasetSpec, load_datasets, select_datasets
from ..errors import ConfigError, RsrBenchError
from ..files import store_root
from ..registry import select
from .naming import (ATTACK_LOSSES, ATTACKS, DEFAULT_ITERS, DEFAULT_SURROGATE, MARK, AttackSpec, Derived,
                     parse_eps, parse_severities)

REFERENCE = "bicubic.x4"
DEFAULT_EPS = "1/255,2/255,4/255,8/255"
DEFAULT_METRICS = "psnr,ssim,lpips"


def _names(value: str | Sequence[str]) -> list[str]:
    return [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else [str(v) for v in value]


@dataclass(frozen=True)
class RobustOptions:
    """One robustness sweep. ``corruptions`` None means ``all`` without attacks and ``none`` with
    them; ``attacks`` is ``pgd``, ``transfer``, both or none; ``eps`` like ``1/255,0.0157,eps4``;
    ``attack_step`` in 1/255 (None: 2.5 eps / iterations). The rest means what it means on ``run``."""

    methods: str | Sequence[str] = "all"
    datasets: str | Sequence[str] = "demo_clean"
    corruptions: str | Sequence[str] | None = None
    severities: str | Sequence[int] = "1-5"
    attacks: str | Sequence[str] = ()
    eps: str | Sequence[str] = DEFAULT_EPS
    attack_loss: str = "l1"
    attack_iters: int = DEFAULT_ITERS
    attack_step: float | None = None
    surrogate: str = DEFAULT_SURROGATE
    metrics: str | Sequence[str] = DEFAULT_METRICS
    store: str | Path | None = None
    limit: int | None = None
    device: str = "auto"
    method_cards: Sequence[str | Path] = ()
    datasets_files: Sequence[str | Path] = ()
    data_root: str | Path | None = None
    force: bool = False
    progress: bool = True
    checkpoint: str | Path | None = None
    tile: int | None = None
    precision: str | None = None

    def run_options(self, **over: Any):  # -> RunOptions (runner imported lazily: torch)
        """The ``run`` options of this sweep (``over`` replaces fields, e.g. the datasets)."""
        from ..runner import RunOptions

        fields = dict(methods=self.methods, datasets=self.datasets, metrics=self.metrics, store=self.store,
                      limit=self.limit, device=self.device, method_cards=self.method_cards,
                      datasets_files=self.datasets_files, data_root=self.data_root, force=self.force,
                      progress=self.progress, checkpoint=self.checkpoint, tile=self.tile, precision=self.precision)
        return RunOptions(**{**fields, **over})


@dataclass
class Plan:
    """What a sweep will do, resolved and checked before anything runs."""

    methods: list[str]
    bases: list[DatasetSpec]
    derived: list[Derived]  # corruption and transfer sets (ordinary datasets)
    whitebox: list[Derived]  # white-box PGD sets (per method)
    metrics: list[str]

    @property
    def run_datasets(self) -> list[str]:
        return [b.name for b in self.bases] + [d.name for d in self.derived]


def _attacks(o: RobustOptions, specs: Any) -> list[AttackSpec]:
    kinds = [] if _names(o.attacks) in ([], ["none"]) else select(o.attacks, ATTACKS, "attack")
    if not kinds:
        return []
    if o.attack_loss not in ATTACK_LOSSES:
        raise ConfigError(f"attack loss must be one of {', '.join(ATTACK_LOSSES)}, got {o.attack_loss!r}")
    if "transfer" in kinds:
        from ..methods.cards import get_spec

        get_spec(o.surrogate, specs)  # did-you-mean before anything runs
    eps = [parse_eps(e) for e in _names(o.eps)]
    if not eps:
        raise ConfigError("--eps is empty: give at least one eps, e.g. 4/255")
    step = float(o.attack_step) if o.attack_step is not None else None
    return [AttackSpec(k, e, o.attack_loss, int(o.attack_iters), step, o.surrogate) for k in kinds for e in eps]


def _bases(o: RobustOptions) -> list[DatasetSpec]:
    names = _names(o.datasets)
    derived = [n for n in names if MARK in n]
    if derived:
        raise ConfigError(f"--datasets names clean paired sets; {derived[0]!r} is already a derived set "
                          "(give its base and --corruptions / --attack)")
    from .derived import require_gt

    bases = select_datasets(names, load_datasets(o.datasets_files, o.data_root))
    for b in bases:
        require_gt(b)
        reason = b.missing_reason()
        if reason:
            raise ConfigError(f"dataset {b.name} is not on disk: {reason}")
    return bases


def plan(o: RobustOptions) -> Plan:
    """Resolve every name and check every value of ``o`` (did-you-mean errors), running nothing."""
    from ..methods.cards import load_method_specs, select_methods
    from ..metrics import select_metrics
    from .corruptions import CORRUPTIONS

    specs = load_method_specs(o.method_cards)
    methods = [m.name for m in select_methods(o.methods, specs)]
    if REFERENCE in specs and REFERENCE not in methods:
        methods.insert(0, REFERENCE)
    metrics = select_metrics(o.metrics)
    if not any(m.kind == "FR" for m in metrics):
        raise ConfigError(f"--metrics {o.metrics!r} has no full-reference metric; robustness compares with the clean HR")
    attacks = _attacks(o, specs)
    default_c = "none" if attacks else "all"
    corr = o.corruptions if o.corruptions is not None else default_c
    families = [] if _names(corr) == ["none"] else select(corr, CORRUPTIONS, "corruption")
    severities = parse_severities(o.severities) if families else ()
    if not families and not attacks:
        raise ConfigError("nothing to do: --corruptions none and no --attack")
    bases = _bases(o)
    derived = [Derived(b.name, corruption=c, severity=s) for b in bases for c in families for s in severities]
    derived += [Derived(b.name, attack=a) for b in bases for a in attacks if a.kind == "transfer"]
    whitebox = [Derived(b.name, attack=a) for b in bases for a in attacks if a.kind == "pgd"]
    return Plan(methods, bases, derived, whitebox, [m.name for m in metrics])


@dataclass
class RobustSummary:
    """What a sweep did: the ordinary run's summary, the white-box cells, and where the time went."""

    store: Path
    plan: Plan
    run: Any  # runner.RunSummary of the clean, corrupted and transfer cells
    whitebox_cells: list[Any] = field(default_factory=list)  # runner.CellResult
    failures: list[dict[str, str]] = field(default_factory=list)
    skipped: dict[tuple[str, str], str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # generation, attack, predict, metrics, total

    @property
    def exit_code(self) -> int:
        return 1 if self.failures or self.run.failures else 0

    def scores(self) -> pd.DataFrame:
        """The summary scores of this sweep's methods and base sets (see :mod:`rsr_bench.robust.summary`)."""
        from .summary import robustness_summary

        table = robustness_summary(self.store)
        return table[table["method"].isin(self.plan.methods) & table["dataset"].isin([b.name for b in self.plan.bases])]


def _generate(plan_: Plan, o: RobustOptions, log: Callable[[str], None]) -> list[DatasetSpec]:
    """Make every corrupted and transfer set (resumable); returns their materialised specs."""
    from .derived import derived_spec

    by_name = {b.name: b for b in plan_.bases}
    if plan_.derived:
        log(f"generating {len(plan_.derived)} corrupted/attacked input set(s) of "
            f"{', '.join(by_name)} (cached: made once, reused by every method and run)")
    return [derived_spec(d, by_name[d.base]).resolved() for d in plan_.derived]


def record_generation_errors(root: Path, methods: Sequence[str], spec: DatasetSpec, errors: dict[str, str],
                             stage: str) -> list[dict[str, str]]:
    """An error record per (method, image) that could not be made, unless a good record exists."""
    out = []
    for m in methods:
        for image, message in sorted(errors.items()):
            old = store.read_record(root, m, spec.name, image)
            if old is not None and not old.get("errors"):
                continue
            store.write_record(root, m, spec.name, {"image": image, "lr_path": None, "hr_path": None, "metrics": {},
                                                    "not_computable": {}, "errors": [{"stage": stage, "message": message}]})
            out.append({"method": m, "dataset": spec.name, "image": image, "stage": stage, "message": message})
    return out


def _cell_seconds(root: Path, cells: Sequence[Any]) -> dict[str, float]:
    manifests = store.load_manifests(root)
    out = {"predict": 0.0, "metrics": 0.0}
    for c in cells:
        t = (manifests.get((c.method, c.dataset)) or {}).get("timings") or {}
        out["predict"] += float(t.get("predict_s", 0.0))
        out["metrics"] += float(t.get("metrics_s", 0.0))
    return out


def run_robust(options: RobustOptions, *, log: Callable[[str], None] = print) -> RobustSummary:
    """Run the sweep ``options`` describes into its store; see the module docstring for the order."""
    from ..runner import run
    from .derived import GenerationContext, generation_context, generation_errors
    from .whitebox import run_whitebox

    t0 = time.perf_counter()
    p = plan(options)
    root = store_root(options.store)
    ctx = GenerationContext(limit=options.limit, method_cards=tuple(options.method_cards), device=options.device,
                            progress=options.progress)
    with generation_context(ctx):
        made = _generate(p, options, log)
        t_gen = time.perf_counter() - t0
        summary = run(options.run_options(methods=p.methods, datasets=p.run_datasets, store=root), log=log)
    out = RobustSummary(root, p, summary, seconds={"generation": t_gen})
    ran = {(c.method, c.dataset) for c in summary.cells}
    for spec in made:
        methods = [m for m in p.methods if (m, spec.name) in ran]
        out.failures += record_generation_errors(root, methods, spec, generation_errors(spec), "corrupt")
    if p.whitebox:
        t_att = run_whitebox(p, options, out, log)
        out.seconds["attack"] = t_att
    store.update_skipped(root, out.skipped, {(c.method, c.dataset) for c in out.whitebox_cells})
    out.seconds.update(_cell_seconds(root, [*summary.cells, *out.whitebox_cells]))
    out.seconds["total"] = time.perf_counter() - t0
    return out


def replace_lr(spec: DatasetSpec, lr_dir: Path) -> DatasetSpec:
    """A derived spec whose inputs are already on disk in ``lr_dir`` (nothing left to generate)."""
    if spec.base is None:
        raise RsrBenchError(f"{spec.name} is not a derived set")
    return replace(spec, lr_dir=lr_dir, hr_dir=spec.base.resolved().hr_dir, builtin=None)
