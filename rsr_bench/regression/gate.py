"""The regression gate end to end, as ``rsr-bench check`` runs it and a notebook can::

    result = check("reports/baselines/bicubic.x4.yaml")                            # evaluate, compare
    result = check("b.yaml", MeasureOptions(store="runs/nightly", evaluate=False))  # compare a store
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from .baseline import (Baseline, CheckSetupError, Selection, Tolerance, build_baseline, default_tolerances, load_baseline,
                       save_baseline)
from .compare import EXIT_OK, CheckResult, check_measurement
from .measure import MeasureOptions, measure_selection


def check(baseline: str | Path, source: MeasureOptions = MeasureOptions(), *,
          tolerances: Mapping[str, Tolerance] | None = None, allow_improvements: bool = False,
          check_fingerprints: bool = True, log: Callable[[str], None] = print) -> CheckResult:
    """Evaluate exactly what the baseline file names (or read it from a store) and compare.

    ``tolerances`` override the baseline's per metric (``"default"`` for unlisted metrics). The
    result's ``exit_code`` is 0 (all hold), 1 (regression) or 2 (setup problem: the check could
    not be carried out); an unreadable baseline raises :class:`CheckSetupError`.
    """
    pinned = load_baseline(baseline)
    if source.evaluate and source.precision is None:  # measure as the baseline was measured
        source = replace(source, precision=pinned.provenance.get("precision"))
    measured = measure_selection(pinned.selection, source, log=log)
    return check_measurement(pinned, measured, overrides=tolerances, allow_improvements=allow_improvements,
                             check_fingerprints=check_fingerprints)


def update_baseline(path: str | Path, source: MeasureOptions = MeasureOptions(), *, methods: Sequence[str] = (),
                    datasets: Sequence[str] = (), metrics: Sequence[str] = (), limit: int | None = None,
                    tolerances: Mapping[str, Tolerance] | None = None, log: Callable[[str], None] = print) -> Baseline:
    """Measure and (re)write the baseline at ``path``, with provenance.

    What is pinned defaults to the existing file's methods, datasets, metrics and limit; its
    hand-edited tolerances are kept (``tolerances`` override them). The file written must read
    back and hold against the same measurement, or :class:`CheckSetupError` is raised.
    """
    path = Path(path)
    old = load_baseline(path) if path.exists() else None
    was = old.selection if old else Selection([], [], [])
    pin = Selection(list(methods or was.methods), list(datasets or was.datasets), list(metrics or was.metrics),
                    was.limit if limit is None else limit)
    if not (pin.methods and pin.datasets and pin.metrics):
        raise CheckSetupError(f"{path} does not exist yet: name what to pin with --methods, --datasets, "
                              "--metrics (and --limit)")
    measured = measure_selection(pin, source, log=log)
    new = build_baseline(measured, pin, tolerances={**(old.tolerances if old else default_tolerances()), **(tolerances or {})},
                         other_device=old.other_device if old else None,
                         other_precision=old.other_precision if old else None)
    save_baseline(new, path)
    again = check_measurement(load_baseline(path), measured)
    if again.exit_code != EXIT_OK:
        raise CheckSetupError(f"{path} was written but does not round-trip: {again.summary_line()}")
    new.path = path
    return new
