"""Everything that puts files on disk, behind one call: :func:`fetch` (``rsr-bench fetch NAME...``).

One entry point, so every "X is missing; run `rsr-bench fetch X`" message works whatever X is.
``download``: HTTP with resume + sha256, safe archive extraction. ``assets``: named files from
ordered, verified sources. ``metric_models``: the metric model files (a table) and converters.
``datasets``, ``faces``: dataset archives per a datasets entry's ``fetch:`` block; the FACES_rw
builder. ``ncnn``: ncnn -> PyTorch weights. Submodules load when used: importing this is cheap.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import RsrBenchError, UnavailableError, UnknownNameError

if TYPE_CHECKING:
    from ..datasets import DatasetSpec
    from ..methods.cards import MethodSpec

#: ``report(label, status)``: status is "fetching", "ok", "ok (<result>)", "nothing to download" or "failed: <why>".
Report = Callable[[str, str], None]
Step = tuple[str, Callable[[], Any] | None]  # (label, action); None: nothing to download


def make_available(spec: MethodSpec) -> None:
    """Fetch a method's weights if they are not on this machine yet (cheap when they are); raise
    with the reason and the fixing command when they cannot be obtained."""
    from ..methods.cards import adapter_for

    adapter = adapter_for(spec)
    reason = adapter.availability(spec)
    if reason and adapter.fetch is not None:
        adapter.fetch(spec)
        reason = adapter.availability(spec)
    if reason:
        raise UnavailableError(reason)


def _method_steps(name: str) -> list[Step]:
    """A method name, family or glob -> one step per method (none when nothing matches)."""
    from ..methods.cards import adapter_for, load_method_specs
    from ..registry import select

    methods = load_method_specs()
    try:
        hits = [] if name == "all" else select([name], methods, "method")
    except UnknownNameError:
        return []
    fetchers = {m: adapter_for(methods[m]).fetch for m in hits}
    return [(f"method {m}", (lambda s=methods[m], f=f: f(s)) if f else None) for m, f in fetchers.items()]


def _steps(name: str, datasets: dict[str, DatasetSpec], data_root: os.PathLike, progress: bool, force: bool) -> list[Step]:
    """The steps for one NAME: a dataset, ``all-datasets``, ``all-assets``, a method (family, glob), an asset."""
    from .assets import ensure_asset, list_assets
    from .datasets import fetch_dataset

    def dataset(spec: DatasetSpec) -> Step:
        if spec.builtin:
            return (f"dataset {spec.name} (built in, generated on first use)", None)
        return (f"dataset {spec.name}", lambda: fetch_dataset(spec, data_root, progress=progress, force=force))

    if name == "all-datasets":
        return [dataset(s) for s in datasets.values() if s.fetch]
    if name in datasets:
        return [dataset(datasets[name])]
    assets = [a.name for a in list_assets()]
    if name == "all-assets":
        return [(f"asset {a}", lambda a=a: ensure_asset(a)) for a in assets]
    steps = _method_steps(name)
    if not steps and name in assets:
        steps = [(f"asset {name}", lambda: ensure_asset(name))]
    if not steps:
        from ..methods.cards import load_method_specs
        from ..registry import unknown

        raise unknown("dataset, method or asset", name, [*datasets, *load_method_specs(), *assets, "all-assets", "all-datasets"])
    return steps


def _attempt(label: str, action: Callable[[], Any], report: Report) -> str | None:
    """Run one step; the error message, or None when it worked."""
    report(label, "fetching")
    try:
        result = action()
    except RsrBenchError as exc:
        report(label, f"failed: {exc}")
        return f"{label}: {exc}"
    report(label, "ok" + (f" ({result})" if result is not None else ""))
    return None


def fetch(names: str | Iterable[str], *, data_root: str | os.PathLike | None = None,
          datasets_files: Sequence[str | os.PathLike] = (), force: bool = False, progress: bool = True,
          report: Report | None = None) -> None:
    """Put datasets, method weights and assets on disk: each NAME is a dataset, a method (name,
    family or glob such as ``impressionism.*``), an asset, ``all-datasets`` or ``all-assets``.

    Every name is resolved first, so a typo fails (with a did-you-mean) before any download
    starts; then every step is attempted even when an earlier one failed, and an
    :class:`RsrBenchError` listing the failures is raised at the end. Downloads resume after an
    interruption and are verified by size and sha256; ``force`` re-installs complete datasets
    and installs over folders rsr-bench did not create, moving what is there aside (never deleting it).
    ``report`` hears about each step (default: a line on stderr).
    """
    from ..datasets import load_datasets
    from ..files import data_root as resolve_data_root

    report = report or (lambda label, status: print(f"{label}: {status}", file=sys.stderr, flush=True))
    root = resolve_data_root(data_root)
    datasets = load_datasets(files=datasets_files, data_root=root)
    plan: list[Step] = []
    for name in [names] if isinstance(names, str) else names:
        plan += [s for s in _steps(name, datasets, root, progress, force) if s[0] not in {p[0] for p in plan}]
    failed = []
    for label, action in plan:
        if action is None:
            report(label, "nothing to download")
        elif (error := _attempt(label, action, report)) is not None:
            failed.append(error)
    if failed:
        raise RsrBenchError(f"{len(failed)} of {len(plan)} fetches failed:\n  " + "\n  ".join(failed))


def fetchable(*, data_root: str | os.PathLike | None = None,
              datasets_files: Sequence[str | os.PathLike] = ()) -> tuple[dict[str, str], list[str]]:
    """What :func:`fetch` can get: ``({dataset: "present" | "missing: why"}, [asset names])``."""
    from ..datasets import load_datasets
    from ..files import data_root as resolve_data_root
    from .assets import list_assets
    from .datasets import check_layout

    datasets = load_datasets(files=datasets_files, data_root=resolve_data_root(data_root))
    problems = {n: check_layout(s) for n, s in sorted(datasets.items()) if s.fetch}
    return {n: "missing: " + p[0] if p else "present" for n, p in problems.items()}, [a.name for a in list_assets()]
