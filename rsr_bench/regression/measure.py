"""The measured side of a check: evaluate into a store (kept, or temporary) or read one, so that the
comparison never cares where its numbers came from, only that they cover the baseline's images."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .baseline import CheckSetupError, Selection

# Per-image error messages that mean "cannot run on this machine" rather than "the numbers moved".
SETUP_ERROR_PATTERN = r"^(?:ModuleNotFoundError|ImportError|UnavailableError)\b"


@dataclass(frozen=True)
class MeasureOptions:
    """Where a check's numbers come from: a fresh evaluation into ``store`` (None: a temporary
    folder deleted afterwards), or with ``evaluate=False`` what ``store`` already holds."""

    store: str | Path | None = None
    evaluate: bool = True
    force: bool = False  # recompute every image (cached records do not see code changes)
    device: str = "auto"
    #: Inference precision; None: a check uses its baseline's (fp32 baselines stay comparable on a
    #: GPU or bf16 CPU, where the run's default ``auto`` would pick bf16), an update the run's default.
    precision: str | None = None
    method_cards: Sequence[str | Path] = ()
    datasets_files: Sequence[str | Path] = ()


@dataclass
class Measured:
    """What a store holds for the selected cells, restricted to the pinned images."""

    summary: pd.DataFrame  # [method, dataset, metric, mean, std, n]
    manifests: dict[tuple[str, str], dict]
    skipped: dict[tuple[str, str], str]
    failures: pd.DataFrame  # [method, dataset, image, stage, message]
    root: Path
    images: dict[str, list[str]] = field(default_factory=dict)

    def setup_problems(self, cells: Iterable[tuple[str, str]], dataset_versions: Mapping[str, str] | None = None) -> list[str]:
        """Why these numbers cannot be compared at all (exit 2): skipped or absent cells, a metric or
        model that could not even be set up here, a dataset version other than ``dataset_versions``."""
        problems = []
        have = set(zip(self.summary["method"], self.summary["dataset"])) if not self.summary.empty else set()
        for m, d in cells:
            if (m, d) in self.skipped:
                problems.append(f"{m} on {d} was not evaluated: {self.skipped[(m, d)]}")
            elif (m, d) not in have and (m, d) not in self.manifests:
                problems.append(f"{m} on {d}: no results in store {self.root} (run it, or drop --from-store to evaluate)")
        if not self.failures.empty:  # a package or model file missing is not a regression of the numbers
            setup = self.failures[self.failures["message"].astype(str).str.contains(SETUP_ERROR_PATTERN, regex=True)]
            for (m, d, stage), grp in setup.groupby(["method", "dataset", "stage"], sort=True):
                problems.append(f"{m} on {d}: {stage} could not run here ({len(grp)} image(s)): {grp['message'].iloc[0]}")
        want = dataset_versions or {}
        for (m, d), manifest in sorted(self.manifests.items()):
            got = (manifest.get("dataset") or {}).get("version")
            if d in want and got is not None and str(got) != want[d]:
                problems.append(f"{m} on {d}: dataset version {got!r} differs from the baseline's {want[d]!r}; "
                                "the numbers are not comparable (regenerate the baseline with --update)")
        return problems


def _pinned_images(df: pd.DataFrame, selection: Selection) -> dict[str, list[str]]:
    """Per dataset the pinned image ids, else the first ``limit`` ids (sorted) of the store."""
    chosen = {}
    for d in selection.datasets:
        if selection.images and d in selection.images:
            chosen[d] = list(selection.images[d])
        else:
            ids = sorted(set(df.loc[df["dataset"] == d, "image"]))
            chosen[d] = ids[: selection.limit] if selection.limit is not None else ids
    return chosen


def read_store(root: str | Path, selection: Selection) -> Measured:
    """The selected cells of a store; a store may hold more images than the baseline used, so
    only the pinned (or first ``limit``) images count."""
    from .. import store

    root = Path(root)
    methods, datasets = list(selection.methods), list(selection.datasets)
    ours = lambda df: df[df["method"].isin(methods) & df["dataset"].isin(datasets)]  # noqa: E731
    df = ours(store.load_results(root))
    chosen = _pinned_images(df, selection)
    keep = pd.Series(False, index=df.index)
    for d, ids in chosen.items():
        keep |= (df["dataset"] == d) & df["image"].isin(ids)
    cells = lambda items: {k: v for k, v in items if k[0] in methods and k[1] in datasets}  # noqa: E731
    return Measured(summary=store.aggregate(df[keep]), manifests=cells(store.load_manifests(root).items()),
                    skipped=cells(store.load_skipped(root).items()), failures=ours(store.load_failures(root)),
                    root=root, images=chosen)


def evaluate(selection: Selection, root: Path, source: MeasureOptions) -> None:
    """Run the evaluation into the store ``root`` (resumable; ``source.force`` recomputes)."""
    from ..runner import RunOptions, run

    run(RunOptions(methods=list(selection.methods), datasets=list(selection.datasets), metrics=list(selection.metrics),
                   store=root, limit=selection.limit, device=source.device, precision=source.precision,
                   method_cards=source.method_cards,
                   datasets_files=source.datasets_files, keep_going=True, force=source.force))


def measure_selection(selection: Selection, source: MeasureOptions = MeasureOptions(), *,
            log: Callable[[str], None] = print) -> Measured:
    """Evaluate ``selection`` (or read it from ``source.store`` when ``source.evaluate`` is off)."""
    if not source.evaluate:
        if source.store is None or not Path(source.store).is_dir():
            raise CheckSetupError(f"--from-store {source.store} does not exist")
        return read_store(source.store, selection)
    keep = source.store is not None
    with (nullcontext(str(source.store)) if keep else tempfile.TemporaryDirectory(prefix="rsr-bench-check-")) as root:
        limit = f", {selection.limit} image(s) each" if selection.limit else ""
        log(f"evaluating {len(selection.methods)} method(s) x {len(selection.datasets)} dataset(s) x "
            f"{len(selection.metrics)} metric(s){limit} into {root} ...")
        evaluate(selection, Path(root), source)
        return read_store(root, selection)
