"""rsr-bench: a reproducible evaluation harness for real-world super-resolution.

The Python API (``rsr_bench.run``, ``check``, ``score``, ``load_results``, ``build_report``,
``list_methods``, ``list_datasets``, ``list_metrics``) is imported on first use, so that
``import rsr_bench`` and ``rsr-bench --help`` stay fast (no torch, no pandas).
"""

import importlib

__version__ = "0.1.0"

_PUBLIC = {  # public name -> module defining it
    "run": "api", "score": "api", "list_methods": "api", "list_datasets": "api", "list_metrics": "api",
    "check": "regression", "update_baseline": "regression", "MeasureOptions": "regression",
    "load_results": "store", "build_report": "report", "ReportOptions": "report", "RunOptions": "runner",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> object:
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value = getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
