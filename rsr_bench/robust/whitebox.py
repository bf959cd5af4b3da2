"""The white-box part of a sweep: per method, attack its own network, then evaluate it on the result.

A white-box input set depends on the method attacked, so it is not a registry dataset: its
images are cached per method and weights fingerprint
(``<cache>/robust/.../whitebox/<method>/<fingerprint>/<base>/...``) and the cell is evaluated
with :func:`rsr_bench.runner.run_cell`, landing in ``cells/<method>/<base>~pgd@eps<k>/`` like
any other cell. The attack always runs on the fp32 network (``--precision`` applies to the
evaluation of the attacked input, as everywhere else).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..datasets import DatasetSpec
from ..errors import RsrBenchError
from .attacks import attack_loss, differentiable_forward, load_for_attack, pgd_maker
from .derived import base_samples, build_set, derived_spec, set_folder
from .naming import Derived

if TYPE_CHECKING:
    from .sweep import Plan, RobustOptions, RobustSummary


def whitebox_set(method: Any, forward: Any, derived: Derived, base: DatasetSpec, options: RobustOptions
                 ) -> tuple[DatasetSpec, dict[str, str]]:
    """Attack ``method`` on the (first ``limit``) images of ``base``; the set's spec and its per-image errors."""
    assert derived.attack is not None
    resolved = base.resolved()
    folder = set_folder(resolved, derived.suffix, "whitebox", method.spec.name, str(method.fingerprint)[:16])
    samples = base_samples(resolved, options.limit)
    spec = derived_spec(derived, base)
    info = {"name": spec.name, "version": spec.version, "description": spec.description,
            "method": method.spec.name, "fingerprint": method.fingerprint}
    make = pgd_maker(forward, attack_loss(derived.attack.loss, forward.device), derived.attack, resolved.scale)
    manifest = build_set(folder, samples, make, info=info, desc=f"attack {method.spec.name} | {spec.name}",
                         progress=options.progress)
    (folder / "LR").mkdir(parents=True, exist_ok=True)
    ids = {s.id for s in samples}
    errors = {k: v for k, v in manifest.get("errors", {}).items() if k in ids}
    from .sweep import replace_lr

    return replace_lr(spec, folder / "LR"), errors


def _complete(root: Any, method: str, dataset: str, base: DatasetSpec, limit: int | None, metrics: list[str]) -> bool:
    """Whether the store already holds an error-free record with every metric for each image."""
    from .. import store

    for s in base_samples(base.resolved(), limit):
        rec = store.read_record(root, method, dataset, s.id)
        if rec is None or rec.get("errors") or not set(metrics) <= set(rec.get("metrics", {})) | set(rec.get("not_computable", {})):
            return False
    return True


def _skip_all(summary: RobustSummary, method: str, sets: list[Derived], reason: str, log: Callable[[str], None]) -> None:
    log(f"white-box attack: skipping {method}: {reason}")
    summary.skipped.update({(method, d.name): reason for d in sets})


def run_whitebox(plan: Plan, options: RobustOptions, summary: RobustSummary, log: Callable[[str], None]) -> float:
    """Attack and evaluate every method of ``plan`` on its white-box sets; returns the attack seconds."""
    from ..metrics import select_metrics
    from ..runner import resolve_device, run_cell
    from .sweep import record_generation_errors

    device = resolve_device(options.device)
    metrics = select_metrics(plan.metrics)
    bases = {b.name: b for b in plan.bases}
    run_opts = options.run_options(store=summary.store)
    attack_s = 0.0
    for name in plan.methods:
        try:
            method = load_for_attack(name, options.method_cards, device, run_opts.engine_options())
        except RsrBenchError as exc:
            _skip_all(summary, name, plan.whitebox, str(exc), log)
            continue
        forward, reason = differentiable_forward(method)
        if forward is None:
            _skip_all(summary, name, plan.whitebox, str(reason), log)
            continue
        for d in plan.whitebox:
            base = bases[d.base]
            if base.scale != method.spec.scale:
                summary.skipped[(name, d.name)] = f"scale mismatch: method x{method.spec.scale}, dataset x{base.scale}"
                continue
            if not options.force and _complete(summary.store, name, d.name, base, options.limit, plan.metrics):
                log(f"white-box: {name} on {d.name} is complete in the store (nothing to attack)")
                continue
            t0 = time.perf_counter()
            spec, errors = whitebox_set(method, forward, d, base, options)
            attack_s += time.perf_counter() - t0
            try:
                cell, failures = run_cell(method, spec, metrics, root=summary.store, device=device, options=run_opts)
            except RsrBenchError as exc:
                summary.skipped[(name, d.name)] = str(exc)
                log(f"skipping {name} on {d.name}: {exc}")
                continue
            summary.whitebox_cells.append(cell)
            summary.failures += failures + record_generation_errors(summary.store, [name], spec, errors, "attack")
    return attack_s
