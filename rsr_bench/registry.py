"""Name lookup helpers shared by the method, dataset and metric registries."""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from collections.abc import Iterable
from typing import Any

from .errors import ConfigError, UnknownNameError

#: Characters a registered name may not hold: a name becomes a folder of the results store
#: (path separators), a term of :func:`select` (``,`` and glob characters) and part of a
#: ``method|dataset`` key.
UNSAFE_NAME_CHARS = "/\\,*?[]|"


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be registered (a sentence fragment), or ``None`` when it can."""
    if not name or name.strip() != name:
        return "must be non-empty, without leading or trailing spaces"
    if name in (".", ".."):
        return "cannot be '.' or '..'"
    bad = sorted({c for c in name if c in UNSAFE_NAME_CHARS or ord(c) < 32 or ord(c) == 127})
    if bad:
        return f"contains {''.join(bad)!r}; a name cannot hold any of {UNSAFE_NAME_CHARS} or control characters"
    return None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """A short suggestion suffix for an unknown ``name`` ("" when nothing is close)."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def unknown(kind: str, name: str, known: Iterable[str]) -> UnknownNameError:
    known = sorted(known)
    return UnknownNameError(
        f"unknown {kind} {name!r}.{did_you_mean(name, known)} Known: {', '.join(known) or '(none)'}"
    )


def select(patterns: str | Iterable[str], known: Iterable[str], kind: str) -> list[str]:
    """Expand comma-separated names or globs (``all``, ``impressionism.*``) in registry order.

    A plain name that matches nothing raises :class:`UnknownNameError` with a suggestion.
    """
    known = list(known)
    if isinstance(patterns, str):
        patterns = [p.strip() for p in patterns.split(",") if p.strip()]
    chosen: list[str] = []
    for pat in patterns:
        if pat == "all":
            hits = known
        elif any(c in pat for c in "*?["):
            hits = [k for k in known if fnmatch.fnmatchcase(k, pat)]
            if not hits:
                raise unknown(f"{kind} pattern", pat, known)
        elif pat in known:
            hits = [pat]
        else:
            family = [k for k in known if k.startswith(pat + ".")]
            if not family:
                raise unknown(kind, pat, known)
            hits = family
        chosen.extend(h for h in hits if h not in chosen)
    return chosen


def import_object(ref: str) -> Any:
    """Import ``"package.module:attr"``; errors name the reference."""
    module_name, _, attr = ref.partition(":")
    if not attr:
        raise ConfigError(f"expected 'module:attribute', got {ref!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r} (from {ref!r}): {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"{module_name!r} has no attribute {attr!r} (from {ref!r})") from None
