"""The metric table's record type and the protocol every metric implementation follows.

Defaults of the underlying libraries disagree (RGB vs Y, which Y, crop, data range), so every
convention is declared here and printed in reports; nothing is implicit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import torch


@dataclass(frozen=True)
class MetricSpec:
    """One row of the metric table."""

    name: str
    kind: Literal["FR", "NR"]
    higher_is_better: bool
    colour: str  # e.g. "RGB", "Y (BT.601 limited range, MATLAB rgb2ycbcr)"
    crop: int  # border pixels removed from each side before scoring
    input: Literal["uint8", "float"]  # scored on the uint8-rounded SR, or the unrounded output
    implementation: str  # what computes it, with version
    factory: str  # "module:attr" called as factory(spec, device) -> Metric
    description: str = ""
    min_size: int = 1  # smallest side (after crop) the metric can score

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"

    def conventions(self) -> str:
        """One line for report footnotes."""
        return (
            f"{self.name} ({self.kind}, {'higher' if self.higher_is_better else 'lower'} is better): "
            f"{self.colour}, crop {self.crop} px, {self.input} input; {self.implementation}. {self.description}"
        ).strip()


@runtime_checkable
class Metric(Protocol):
    """Scores a batch: ``sr`` (and ``ref`` for FR) are ``(N,3,H,W)`` RGB float in [0, 1].

    Returns one float per image. Raises :class:`rsr_bench.errors.NotComputable` when an image
    cannot be scored (too small, ...); callers score one image at a time when sizes differ.
    Expensive state (networks, model files) is built once in the factory.
    """

    spec: MetricSpec

    def __call__(self, sr: torch.Tensor, ref: torch.Tensor | None = None) -> list[float]: ...
