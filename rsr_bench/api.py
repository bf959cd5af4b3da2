"""The public Python API (``import rsr_bench; rsr_bench.run(...)``): what a notebook calls, and
what each command is a thin layer over. Results come back as pandas DataFrames."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the runner imports torch: only `run` and `score` need it
    import pandas as pd

    from .runner import RunOptions


def run(options: RunOptions | None = None, /, *, log: Callable[[str], None] = print, **fields) -> pd.DataFrame:
    """Evaluate into the results store and return ``[method, dataset, metric, mean, std, n]``.

    Give a :class:`RunOptions` or its fields as keywords (``methods="bicubic", limit=2``; both:
    the keywords replace the object's fields). The table holds the store's means for the cells
    this call covered; ``df.attrs["summary"]`` is the :class:`~rsr_bench.runner.RunSummary`
    (skipped cells with reasons, per-image failures, the store's path).
    """
    from .runner import RunOptions, run as _run

    summary = _run(dataclasses.replace(options, **fields) if options else RunOptions(**fields), log=log)
    table = summary.table().reset_index(drop=True)
    table.attrs["summary"] = summary
    return table


def score(dist: str | os.PathLike, ref: str | os.PathLike | None = None, metrics: str | Iterable[str] = "default", *,
          device: str = "auto") -> pd.DataFrame:
    """Score an image or folder (``ref``: its references, paired by file stem) as ``rsr-bench score``
    does: ``[image, metric, value, reason, error]``, value NaN where not computable (``reason``)
    or failed (``error``); ``df.attrs["result"]`` is the ScoreResult (means, conventions)."""
    import pandas as pd

    from .metrics.score import ScoreRow, score_images
    from .runner import resolve_device

    result = score_images(dist, ref, metrics, device=resolve_device(device))
    table = pd.DataFrame(map(dataclasses.astuple, result.rows), columns=[f.name for f in dataclasses.fields(ScoreRow)])
    table["value"] = table["value"].astype(float)
    table.attrs["result"] = result
    return table


def _table(rows: list[tuple], columns: list[str], records: bool) -> pd.DataFrame | list:
    """A DataFrame, or with ``records`` a list of named tuples with the same fields (what
    ``itertuples`` gives, without importing pandas: ``rsr-bench list`` stays under 1 s)."""
    if records:
        from collections import namedtuple

        row = namedtuple("Row", columns)
        return [row(*r) for r in rows]
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)


def list_methods(method_cards: Sequence[str | os.PathLike] = (), *, records: bool = False) -> pd.DataFrame:
    """Every registered checkpoint and whether it can run here: ``[name, family, tag, scale,
    trained_on, available, reason]`` (``reason`` says what to do); ``records``: see :func:`_table`."""
    from .methods.cards import load_method_specs, method_availability

    rows = []
    for spec in load_method_specs(method_cards).values():
        try:
            reason = method_availability(spec)
        except Exception as exc:  # noqa: BLE001 - listing must survive one broken card
            reason = f"{type(exc).__name__}: {exc}"
        rows.append((spec.name, spec.family, spec.tag, spec.scale, tuple(spec.trained_on), reason is None, reason or ""))
    return _table(rows, ["name", "family", "tag", "scale", "trained_on", "available", "reason"], records)


def list_datasets(datasets_files: Sequence[str | os.PathLike] = (), data_root: str | os.PathLike | None = None,
                  *, records: bool = False) -> pd.DataFrame:
    """Every registered dataset and whether it can run: ``[name, kind, scale, has_gt, status,
    available, reason, notes]``. ``status`` is ``ready``, ``missing`` (folder not on disk) or
    ``unusable`` (on disk, but a run would refuse it, e.g. two files with one image id);
    ``reason`` says why and what to do; ``notes`` names entries a run will skip (dangling links)."""
    from .datasets import load_datasets

    rows = []
    for s in load_datasets(datasets_files, data_root).values():
        missing = s.missing_reason()
        error, notes = (None, "") if missing else s.listing_problem()
        status = "missing" if missing else "unusable" if error else "ready"
        rows.append((s.name, s.kind, s.scale, s.has_gt, status, status == "ready", missing or error or "", notes))
    return _table(rows, ["name", "kind", "scale", "has_gt", "status", "available", "reason", "notes"], records)


def list_metrics(*, records: bool = False) -> pd.DataFrame:
    """The metric table in display order: ``[name, kind, higher_is_better, default, conventions]``."""
    from .metrics import METRICS

    rows = [(m.name, m.kind, m.higher_is_better, m.default, m.conventions()) for m in METRICS.values()]
    return _table(rows, ["name", "kind", "higher_is_better", "default", "conventions"], records)
