"""Names of the robustness lab's derived datasets: one name, one set of inputs.

A corrupted or attacked copy of a paired dataset is an ordinary dataset whose name says exactly
how its LR images were made, so the runner, the store, ``check`` and the report handle it like
any other set (``cells/<method>/demo_clean~jpeg@3/...``) and two different inputs can never
share a name (and so never mix in a store)::

    <base>~<corruption>@<severity>              demo_clean~jpeg@3
    <base>~pgd[<options>]@eps<k>                demo_clean~pgd@eps4        white-box, per method
    <base>~transfer[<options>]@eps<k>           demo_clean~transfer@eps4   crafted once on a surrogate

``k`` is eps in units of 1/255 (``eps4`` = 4/255, ``eps0.5`` = 0.5/255; "4/255" would put a
``/`` in a folder name). Attack options are written only when they differ from the defaults,
in this order: ``-lpips`` (attack loss; default L1), ``-i<N>`` (PGD iterations), ``-a<S>``
(step in 1/255; default 2.5 eps / N), ``-from-<method>`` (transfer surrogate), e.g.
``demo_clean~pgd-lpips-i20@eps8``. A name that parses but is not written in this canonical form
is refused with the canonical spelling, so one input set has exactly one name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ConfigError
from ..registry import did_you_mean

MARK = "~"
SEVERITIES = (1, 2, 3, 4, 5)  # the one home of the severity range (corruptions.py imports it)
ATTACKS = ("pgd", "transfer")
ATTACK_LOSSES = ("l1", "lpips")
DEFAULT_ITERS = 10
DEFAULT_SURROGATE = "realesrgan.x4plus"
_LEVEL = re.compile(r"eps(\d+(?:\.\d+)?)")


def fmt_num(x: float) -> str:
    """A number as names and labels write it: at most 4 decimals, no trailing zeros (``2.55``, ``4``)."""
    return f"{x:.4f}".rstrip("0").rstrip(".")


def parse_eps(text: str) -> float:
    """``"4/255"``, ``"0.0157"`` or ``"eps4"`` -> eps in units of 1/255 (4.0), checked to lie in (0, 1]."""
    t = str(text).strip()
    try:
        if t.startswith("eps"):
            value = float(t[3:]) / 255
        elif "/" in t:
            num, den = t.split("/", 1)
            value = float(num) / float(den)
        else:
            value = float(t)
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"eps {text!r} is not a number (write 4/255, 0.0157 or eps4)") from None
    if not 0 < value <= 1:
        raise ConfigError(f"eps {text!r} = {value:g} is outside (0, 1]: eps is an L-inf bound on [0, 1] images")
    return float(fmt_num(value * 255))


def parse_severities(text: str | int | list[int] | tuple[int, ...]) -> tuple[int, ...]:
    """``"1-5"``, ``"1,3,5"``, ``3`` or a list -> sorted severities, each checked to lie in 1..5."""
    if isinstance(text, int):
        items: list[int] = [text]
    elif isinstance(text, (list, tuple)):
        items = [int(x) for x in text]
    else:
        items = []
        for part in (p.strip() for p in str(text).split(",") if p.strip()):
            lo, sep, hi = part.partition("-")
            try:
                items += list(range(int(lo), int(hi) + 1)) if sep else [int(part)]
            except ValueError:
                raise ConfigError(f"severity {part!r} is not a number or range (write 1-5 or 1,3,5)") from None
    bad = [s for s in items if s not in SEVERITIES]
    if bad or not items:
        raise ConfigError(f"severities must lie in 1-5, got {text!r}")
    return tuple(sorted(set(items)))


@dataclass(frozen=True)
class AttackSpec:
    """One adversarial input set: L-inf PGD with a random start, at ``eps255``/255."""

    kind: str  # "pgd" (white-box, per method) or "transfer" (crafted on ``surrogate``)
    eps255: float
    loss: str = "l1"
    iters: int = DEFAULT_ITERS
    step255: float | None = None  # None: 2.5 * eps / iters (Madry et al.'s rule)
    surrogate: str = DEFAULT_SURROGATE

    def __post_init__(self) -> None:
        if self.kind not in ATTACKS:
            raise ConfigError(f"unknown attack {self.kind!r}.{did_you_mean(self.kind, ATTACKS)} Known: {', '.join(ATTACKS)}")
        if self.loss not in ATTACK_LOSSES:
            raise ConfigError(f"attack loss must be one of {', '.join(ATTACK_LOSSES)}, got {self.loss!r}")
        if not 0 < self.eps255 <= 255:
            raise ConfigError(f"eps {self.eps255:g}/255 is outside (0, 1]")
        if self.iters < 1:
            raise ConfigError(f"attack iterations must be >= 1, got {self.iters}")
        if self.step255 is not None and self.step255 <= 0:
            raise ConfigError(f"attack step must be > 0, got {self.step255:g}/255")

    @property
    def eps(self) -> float:
        return self.eps255 / 255

    @property
    def alpha(self) -> float:
        """The step size on [0, 1] images."""
        return (self.step255 if self.step255 is not None else 2.5 * self.eps255 / self.iters) / 255

    @property
    def tag(self) -> str:
        """The canonical part before ``@``: ``pgd``, ``transfer-lpips-i20``, ..."""
        parts = [self.kind] + (["lpips"] if self.loss == "lpips" else [])
        parts += [f"i{self.iters}"] if self.iters != DEFAULT_ITERS else []
        parts += [f"a{fmt_num(self.step255)}"] if self.step255 is not None else []
        tag = "-".join(parts)
        return tag + (f"-from-{self.surrogate}" if self.kind == "transfer" and self.surrogate != DEFAULT_SURROGATE else "")

    @property
    def level(self) -> str:
        return f"eps{fmt_num(self.eps255)}"

    def describe(self) -> str:
        who = "white-box PGD on each method" if self.kind == "pgd" else f"transfer PGD crafted on {self.surrogate}"
        return (f"{who}: L-inf eps {fmt_num(self.eps255)}/255, {self.iters} steps of {fmt_num(self.alpha * 255)}/255 "
                f"from a uniform random start, ascending the {'LPIPS' if self.loss == 'lpips' else 'L1'} "
                "distance to the clean HR")


@dataclass(frozen=True)
class Derived:
    """A parsed derived-dataset name: exactly one of ``corruption`` (+ ``severity``) or ``attack``."""

    base: str
    corruption: str | None = None
    severity: int | None = None
    attack: AttackSpec | None = None

    @property
    def suffix(self) -> str:
        """What follows ``~`` (also the cache folder name): ``jpeg@3``, ``pgd@eps4``."""
        if self.attack is not None:
            return f"{self.attack.tag}@{self.attack.level}"
        return f"{self.corruption}@{self.severity}"

    @property
    def name(self) -> str:
        return f"{self.base}{MARK}{self.suffix}"

    @property
    def kind(self) -> str:
        """``corruption``, ``pgd`` or ``transfer``."""
        return self.attack.kind if self.attack is not None else "corruption"

    @property
    def group(self) -> str:
        """What a curve is drawn for: the corruption family, or the attack tag."""
        return self.attack.tag if self.attack is not None else str(self.corruption)

    @property
    def level(self) -> float:
        """The x of a curve: the severity, or eps in 1/255."""
        return self.attack.eps255 if self.attack is not None else float(self.severity or 0)


def _parse_attack(kind_and_options: str, level: str, name: str) -> AttackSpec:
    head, _, surrogate = kind_and_options.partition("-from-")
    kind, *opts = head.split("-")
    m = _LEVEL.fullmatch(level)
    if not m:
        raise ConfigError(f"dataset {name!r}: attack level must be eps<k> with eps = k/255 (e.g. eps4), got {level!r}")
    fields: dict = {"kind": kind, "eps255": float(m.group(1))}
    for opt in opts:
        if opt == "lpips":
            fields["loss"] = "lpips"
        elif re.fullmatch(r"i\d+", opt):
            fields["iters"] = int(opt[1:])
        elif re.fullmatch(r"a\d+(?:\.\d+)?", opt):
            fields["step255"] = float(opt[1:])
        else:
            raise ConfigError(f"dataset {name!r}: unknown attack option {opt!r} (known: lpips, i<N>, a<step>, from-<method>)")
    if surrogate:
        if kind != "transfer":
            raise ConfigError(f"dataset {name!r}: only a transfer attack has a surrogate (-from-<method>)")
        fields["surrogate"] = surrogate
    return AttackSpec(**fields)


def parse_derived(name: str) -> Derived | None:
    """The :class:`Derived` a name spells, ``None`` for an ordinary name; malformed -> ConfigError."""
    if MARK not in name:
        return None
    from .corruptions import CORRUPTIONS

    base, _, rest = name.partition(MARK)
    kind, at, level = rest.rpartition("@")
    if not base or not at or not kind:
        raise ConfigError(f"dataset {name!r}: a derived set is <dataset>~<corruption>@<severity> "
                          "or <dataset>~<attack>@eps<k> (e.g. demo_clean~jpeg@3, demo_clean~pgd@eps4)")
    attack = kind.split("-")[0] in ATTACKS
    if not attack and kind not in CORRUPTIONS:
        known = [*CORRUPTIONS, *ATTACKS]
        raise ConfigError(f"dataset {name!r}: unknown corruption or attack {kind!r}.{did_you_mean(kind, known)} "
                          f"Known: {', '.join(known)}")
    try:
        if attack:
            derived = Derived(base, attack=_parse_attack(kind, level, name))
        elif level.isdigit():
            derived = Derived(base, corruption=kind, severity=parse_severities(level)[0])
        else:
            raise ConfigError(f"severity must be one of 1-5, got {level!r}")
    except ConfigError as exc:
        raise ConfigError(str(exc) if repr(name) in str(exc) else f"dataset {name!r}: {exc}") from None
    if derived.name != name:
        raise ConfigError(f"dataset {name!r}: write it as {derived.name!r} (one input set has one name)")
    return derived

