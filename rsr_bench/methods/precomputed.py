"""Score SR outputs produced elsewhere (published result folders, methods not wrapped).

Card options::

    options:
      root: /path/to/results          # required; relative paths resolve against the card's folder
      pattern: "{dataset}/{id}.png"   # where each output lives under root; fields: dataset, id
      fingerprint: "..."              # optional identity (default: hash of root + pattern)

``predict`` finds each image's output by its (dataset, id) key; a missing output is a per-image
error naming the path that was expected. Outputs must be ``scale x`` the LR size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where used: `rsr-bench list` and --help stay under 1 s
    import torch

from ..errors import ConfigError, ImageError
from ..image import read_image
from .cards import Adapter, ImageKey, MethodSpec

OPTION_KEYS = {"root", "pattern", "fingerprint"}


@dataclass
class PrecomputedMethod:
    spec: MethodSpec
    root: Path
    pattern: str
    fingerprint: str
    provenance: Mapping[str, Any]

    def output_path(self, dataset: str, sample_id: str) -> Path:
        return self.root / self.pattern.format(dataset=dataset, id=sample_id)

    def predict(self, lr: torch.Tensor, images: Sequence[ImageKey] = ()) -> torch.Tensor:
        import torch

        if len(images) != lr.shape[0]:
            raise ConfigError(f"method {self.spec.name} serves precomputed outputs: predict needs the "
                              f"(dataset, id) of each of the {lr.shape[0]} images, got {len(images)}")
        return torch.cat([self._output(dataset, image_id, lr) for dataset, image_id in images])

    def _output(self, dataset: str, sample_id: str, lr: torch.Tensor) -> torch.Tensor:
        path = self.output_path(dataset, sample_id)
        if not path.is_file():
            raise ImageError(f"{path}: precomputed output for image {sample_id!r} of {dataset} not found")
        sr = read_image(path)[None].to(lr.device)
        want = (lr.shape[-2] * self.spec.scale, lr.shape[-1] * self.spec.scale)
        if tuple(sr.shape[-2:]) != want:
            raise ImageError(
                f"{path}: output is {sr.shape[-1]}x{sr.shape[-2]}, expected {want[1]}x{want[0]} "
                f"(x{self.spec.scale} of the LR)"
            )
        return sr


def _root(spec: MethodSpec, options: Mapping[str, Any]) -> Path:
    if "root" not in options:
        raise ConfigError(f"method {spec.name}: precomputed needs options.root (the results folder)")
    root = Path(str(options["root"])).expanduser()
    if not root.is_absolute() and spec.card_path is not None:
        root = spec.card_path.parent / root
    return root


def availability(spec: MethodSpec) -> str | None:
    root = _root(spec, spec.options)
    return None if root.is_dir() else f"results folder {root} does not exist"


def load(spec: MethodSpec, *, device: torch.device, options: Mapping[str, Any]) -> PrecomputedMethod:
    extra = set(options) - OPTION_KEYS
    if extra:
        raise ConfigError(f"method {spec.name}: unknown precomputed option(s) {sorted(extra)}; allowed {sorted(OPTION_KEYS)}")
    root = _root(spec, options)
    pattern = str(options.get("pattern", "{dataset}/{id}.png"))
    return PrecomputedMethod(spec, root, pattern, identify(spec, options),
                             {"source": "precomputed outputs", "root": str(root), "pattern": pattern})


def identify(spec: MethodSpec, options: Mapping[str, Any]) -> str:
    """The card's ``fingerprint``, else a hash of the results folder and the file pattern."""
    root, pattern = _root(spec, options), str(options.get("pattern", "{dataset}/{id}.png"))
    return str(options.get("fingerprint") or hashlib.sha256(f"{root.resolve()}|{pattern}".encode()).hexdigest()[:16])


ADAPTER = Adapter("precomputed", load, availability=availability, identify=identify)
