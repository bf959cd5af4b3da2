"""Derived datasets: corrupted and attacked copies of a paired set, generated once into the cache.

A derived set (:mod:`rsr_bench.robust.naming`) is an ordinary :class:`DatasetSpec` whose LR folder
is a cache folder and whose HR folder is the base set's clean HR, so the runner, the store,
``check`` and the report treat ``demo_clean~jpeg@3`` like any other set. The dataset registry
resolves such names (:func:`derived_specs`); :meth:`DatasetSpec.resolved` calls
:func:`materialise`, which writes the images that are missing:

    <cache>/robust/r<recipe>-<code hash>/<base>/<base listing>/<suffix>/LR/<id>.png
                                                             .../manifest.json

Each image is written atomically; ``manifest.json`` records its sha256, the sha256 of the clean
files it was made from (an image whose source changed is made again: the folder key only sees
names and sizes, and two sets with the same name and sizes share the folder), the per-image errors
(an image too small for a corruption is left out, with the reason, and the sweep reports it as
that image's error record) and the package versions. The folder name carries a hash of the
generating code and of the base set's file listing, so a cache made by other code or from other
data is never reused. Corruptions are 8-bit PNGs (what a camera or codec would deliver);
adversarial inputs are 16-bit PNGs, so the perturbation reaches the method unrounded (the
harness decodes 16-bit PNGs at full precision).

Generation covers the whole base set, or its first ``limit`` images inside
:func:`generation_context` (how ``rsr-bench robust --limit`` avoids corrupting or attacking
images it will not evaluate).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..datasets import DatasetSpec, Sample
from ..errors import ConfigError, ImageError, RsrBenchError
from ..files import atomic_write_bytes, atomic_write_json, cache_dir, sha256_file
from ..image import encode_png, match_hr_to_lr, read_image
from ..registry import unknown
from .corruptions import CORRUPTIONS, RECIPE, corrupt
from .naming import MARK, Derived, parse_derived

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class GenerationContext:
    """How derived sets are generated in this context: only the first ``limit`` images of the base
    set, the method cards and device used to load a transfer surrogate, progress bars."""

    limit: int | None = None
    method_cards: Sequence[str | Path] = ()
    device: str = "auto"
    progress: bool = True


_CONTEXT: ContextVar[GenerationContext] = ContextVar("rsr_bench_robust_generation", default=GenerationContext())


@contextlib.contextmanager
def generation_context(ctx: GenerationContext) -> Iterator[None]:
    """Generate derived sets with ``ctx`` inside the block (the sweep sets its ``--limit`` here)."""
    token = _CONTEXT.set(ctx)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def require_gt(base: DatasetSpec) -> None:
    if not base.has_gt:
        raise ConfigError(f"dataset {base.name} has no ground truth: the robustness lab scores corrupted and attacked "
                          "inputs against the clean HR, so it needs a paired set (e.g. demo_clean)")


def derived_version(derived: Derived, base: DatasetSpec) -> str:
    """What results record as the set's version: the base version, the suffix and the recipe version."""
    return f"{base.version or 'unversioned'}+{derived.suffix}/robust-r{RECIPE}"


def derived_spec(derived: Derived, base: DatasetSpec, *, description: str | None = None) -> DatasetSpec:
    """The spec of a derived set: GT and scale of ``base``, LR made on :meth:`~DatasetSpec.resolved`."""
    require_gt(base)
    if description is None:
        description = describe(derived)
    return DatasetSpec(
        name=derived.name, lr_dir=None, hr_dir=base.hr_dir, scale=base.scale, kind=base.kind, count=base.count,
        version=derived_version(derived, base), domains=base.domains, description=f"{base.name}, {description}",
        builtin="derived", has_gt=True, source_file=base.source_file, declared_version=base.declared_version, base=base,
    )


def describe(derived: Derived) -> str:
    """One line saying how a derived set's inputs were made (dataset notes, manifests)."""
    if derived.attack is not None:
        return derived.attack.describe()
    c, sev = CORRUPTIONS[str(derived.corruption)], int(derived.severity or 0)
    return f"{c.label}, severity {sev}: {c.parameter} = {c.level_text[sev - 1]}"


def derived_specs(names: Iterable[str], specs: Mapping[str, DatasetSpec]) -> dict[str, DatasetSpec]:
    """Specs for derived names over the registered ``specs`` (the dataset registry's hook)."""
    out: dict[str, DatasetSpec] = {}
    for name in names:
        derived = parse_derived(name)
        if derived is None:
            continue
        if derived.kind == "pgd":
            raise ConfigError(f"dataset {name!r}: a white-box attack set depends on the method attacked, so it is "
                              "made by `rsr-bench robust --attack pgd`, not by `run`; `check --from-store` can pin "
                              "its cells (the transfer attack, ~transfer@eps<k>, is an ordinary set)")
        if derived.base not in specs:
            raise unknown("dataset", derived.base, [n for n in specs if MARK not in n])
        out[name] = derived_spec(derived, specs[derived.base])
    return out


def _code_only(source: str) -> str:
    """The program of a module without its docstrings, comments and layout (what can change bytes)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


@functools.lru_cache(maxsize=1)
def code_hash() -> str:
    """Hash of the code that generates derived sets, so a cache made by other code is never reused
    (docstrings and comments do not count: editing them must not regenerate hours of attacks)."""
    from .. import image
    from ..datasets import demo
    from . import attacks, corruptions

    h = hashlib.sha256()
    for module in (corruptions, attacks, image, demo):
        h.update(_code_only(Path(str(module.__file__)).read_text(encoding="utf-8")).encode())
    return h.hexdigest()[:10]


def set_folder(base: DatasetSpec, suffix: str, *parts: str) -> Path:
    """Where a derived set of the resolved ``base`` lives (``parts``: e.g. the attacked method)."""
    root = cache_dir() / "robust" / f"r{RECIPE}-{code_hash()}"
    return root.joinpath(*parts, base.name, base.listing_fingerprint(), suffix)


def load_pair(sample: Sample, scale: int, *, need_hr: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The clean LR and (mod-cropped) HR of one base sample as ``(3, H, W)`` float32 in [0, 1]."""
    lr = read_image(sample.lr_path)
    if not need_hr:
        return lr, None
    if sample.hr_path is None or not sample.hr_path.is_file():
        raise ImageError(f"{sample.hr_path}: no ground-truth file for image {sample.id!r}")
    return lr, match_hr_to_lr(read_image(sample.hr_path), tuple(lr.shape[-2:]), scale, sample.hr_path)


def encode_png16(img: torch.Tensor) -> bytes:
    """A ``(3, H, W)`` float image in [0, 1] as a 16-bit RGB PNG (full precision for attacked inputs)."""
    import cv2

    u16 = (img.clamp(0, 1).double() * 65535).round().to(torch.int32).permute(1, 2, 0).numpy().astype(np.uint16)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(u16[:, :, ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise RsrBenchError("OpenCV could not encode a 16-bit PNG")
    return buf.tobytes()


def read_manifest(folder: Path) -> dict:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for dist in ("numpy", "pillow", "torch", "scipy", "opencv-python-headless"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def build_set(folder: Path, samples: Sequence[Sample], make: Callable[[Sample], bytes], *, info: Mapping,
              desc: str, progress: bool) -> dict:
    """Write ``make(sample)`` as ``LR/<id>.png`` for every sample the manifest lacks; an
    :class:`ImageError` becomes that image's recorded error. Returns the manifest."""
    from tqdm.auto import tqdm

    manifest = read_manifest(folder)
    sources = {s.id: source_hash(s) for s in samples}
    todo, made = pending(manifest, samples, sources)
    if not todo and manifest:
        return manifest
    files = {k: v for k, v in manifest.get("files", {}).items() if k in made}
    errors = {k: v for k, v in manifest.get("errors", {}).items() if k in made}
    for s in todo:  # made from a source that has changed since: never evaluated again
        (folder / "LR" / f"{s.id}.png").unlink(missing_ok=True)
    seconds = float(manifest.get("seconds", 0.0))
    t0 = time.perf_counter()
    try:
        for s in tqdm(todo, desc=desc, unit="img", disable=not progress or not todo, leave=False):
            try:
                data = make(s)
            except ImageError as exc:
                errors[s.id], made[s.id] = str(exc), sources[s.id]
                files.pop(s.id, None)
                continue
            atomic_write_bytes(folder / "LR" / f"{s.id}.png", data)
            files[s.id], made[s.id] = hashlib.sha256(data).hexdigest(), sources[s.id]
            errors.pop(s.id, None)
    finally:  # what was written stays usable after an interruption
        merged = read_manifest(folder)  # another process may have added images meanwhile
        keep = {k for k, v in merged.get("sources", {}).items() if k not in made and sources.get(k, v) == v}
        made.update({k: merged["sources"][k] for k in keep})
        files.update({k: v for k, v in merged.get("files", {}).items() if k in keep})
        errors.update({k: v for k, v in merged.get("errors", {}).items() if k in keep})
        manifest = {**dict(info), "files": files, "errors": {k: v for k, v in errors.items() if k not in files},
                    "sources": made, "versions": _versions(), "seconds": round(seconds + time.perf_counter() - t0, 3)}
        atomic_write_json(folder / MANIFEST, manifest)
    return manifest


def pending(manifest: Mapping, samples: Sequence[Sample], sources: Mapping[str, str] | None = None
            ) -> tuple[list[Sample], dict[str, str]]:
    """The samples still to make (never made, or made from other source bytes) and ``{id: source
    hash}`` of those made from the current sources."""
    if sources is None:
        sources = {s.id: source_hash(s) for s in samples}
    made = {k: v for k, v in manifest.get("sources", {}).items() if sources.get(k, v) == v}
    done = set(manifest.get("files", {})) | set(manifest.get("errors", {}))
    return [s for s in samples if s.id not in made or s.id not in done], made


def source_hash(sample: Sample) -> str:
    """sha256 over the clean LR and HR files of ``sample``: what a derived image was made from."""
    h = hashlib.sha256()
    for path in (sample.lr_path, sample.hr_path):
        h.update((_file_hash(path, *_stat(path)) if path is not None else "-").encode())
    return h.hexdigest()[:16]


def _stat(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
        return st.st_mtime_ns, st.st_size
    except OSError:
        return 0, -1


@functools.lru_cache(maxsize=4096)
def _file_hash(path: Path, mtime_ns: int, size: int) -> str:
    """Hash of a file, remembered per (path, mtime, size) so 50 derived sets hash each source once."""
    return sha256_file(path) if size >= 0 else "missing"


def _corrupt_maker(derived: Derived, scale: int) -> Callable[[Sample], bytes]:
    family = CORRUPTIONS[str(derived.corruption)]

    def hwc(t: torch.Tensor | None) -> np.ndarray | None:
        return None if t is None else t.permute(1, 2, 0).double().numpy()

    def make(sample: Sample) -> bytes:
        lr, hr = load_pair(sample, scale, need_hr=family.source == "hr")
        try:
            out = corrupt(family, int(derived.severity or 0), sample.id, hwc(lr), hwc(hr), scale)
        except ImageError as exc:
            raise ImageError(f"{sample.lr_path} ({sample.id}): {exc}") from None
        if out.shape[:2] != tuple(lr.shape[-2:]):
            raise RsrBenchError(f"{derived.name}: generated {out.shape[1]}x{out.shape[0]}, expected the clean LR size")
        return encode_png(torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1))

    return make


def base_samples(base: DatasetSpec, limit: int | None) -> list[Sample]:
    samples = base.samples()
    return samples[:limit] if limit else samples


def materialise(spec: DatasetSpec) -> DatasetSpec:
    """Generate the missing images of a derived set and return it as a plain spec with real folders."""
    if spec.base is None:
        raise RsrBenchError(f"dataset {spec.name}: not a derived set")
    derived = parse_derived(spec.name)
    assert derived is not None
    ctx = _CONTEXT.get()
    base = spec.base.resolved()
    folder = set_folder(base, derived.suffix)
    samples = base_samples(base, ctx.limit)
    info = {"name": spec.name, "version": spec.version, "description": spec.description, "recipe": RECIPE}
    if derived.attack is None:
        build_set(folder, samples, _corrupt_maker(derived, base.scale), info=info, desc=spec.name, progress=ctx.progress)
    else:
        from .attacks import transfer_maker

        if pending(read_manifest(folder), samples)[0]:
            make, surrogate = transfer_maker(derived.attack, base.scale, ctx)
            build_set(folder, samples, make, info={**info, "surrogate": surrogate}, desc=spec.name, progress=ctx.progress)
    (folder / "LR").mkdir(parents=True, exist_ok=True)
    return replace(spec, lr_dir=folder / "LR", hr_dir=base.hr_dir, builtin=None)


def generation_errors(spec: DatasetSpec) -> dict[str, str]:
    """``{image id: reason}`` of the images a materialised derived set could not make."""
    if spec.lr_dir is None:
        return {}
    return dict(read_manifest(spec.lr_dir.parent).get("errors", {}))
