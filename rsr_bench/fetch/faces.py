"""FACES_rw: 100 face crops from WIDER FACE validation, chosen by a fixed, documented rule.

The paper evaluates on "100 random medium-size, non-occluded faces" from WIDER FACE validation
without publishing which ones, so this module defines the selection reproducibly and records it.

Rule (all parameters are recorded in the manifest and can be overridden in ``datasets.yaml``
under ``fetch: derive: {name: faces_wider, ...}``):

1. Parse ``wider_face_val_bbx_gt.txt`` (per image: file line, count line, then ``max(count, 1)``
   lines ``x y w h blur expression illumination invalid occlusion pose``).
2. Keep a face when ``invalid == 0``, ``occlusion == 0`` (no occlusion), ``pose == 0`` (typical
   pose), ``blur <= 1`` (heavy blur excluded: it is not "super-resolvable" detail) and the box
   is medium-size: ``min(w, h) >= 64`` and ``max(w, h) <= 256`` pixels. Expression and
   illumination are not filtered (they are real-world variation we want).
3. Sort the candidates by ``(file, x, y, w, h)``, shuffle with ``random.Random(seed)``
   (seed 0), and walk the shuffled list taking at most one face per image until ``count``
   (100) faces are chosen. One face per image keeps the set diverse across scenes.
4. Crop: the square of side ``round(max(w, h) * (1 + 2 * margin))`` (margin 0.25 per side, so
   1.5x the box) centred on the box centre, shifted to lie inside the image, and clipped to it
   only when the image is smaller than the square. Pixels are the stored JPEG pixels (no EXIF
   rotation: the annotations refer to them), converted to RGB and saved losslessly as PNG
   named ``<index:03d>_<image stem>.png`` in selection order.

The manifest (``selection.json`` next to the LR folder, and a copy inside it) lists the rule,
the sha256 of the annotation file and every ``(file, box, crop)``; the dataset version is
``wider-val-`` plus the first 12 hex digits of the sha256 of the rule and the selected
``(file, box)`` pairs, so any change of rule or annotations changes the version.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, RsrBenchError
from ..files import atomic_write_json, sha256_file
from .datasets import relative_inside
from .download import fresh_dir

DEFAULT_RULE: dict[str, Any] = {
    "annotations": "WIDER_FACE/wider_face_split/wider_face_val_bbx_gt.txt",
    "images": "WIDER_FACE/WIDER_val/images",
    "count": 100,
    "seed": 0,
    "min_size": 64,
    "max_size": 256,
    "max_blur": 1,
    "occlusion": 0,
    "pose": 0,
    "margin": 0.25,
    "one_per_image": True,
}
MANIFEST_NAME = "selection.json"
HIDDEN_MANIFEST = ".selection.json"  # copy inside the LR folder (hidden: not listed as an image)


@dataclass(frozen=True)
class Face:
    """One annotated face: ``file`` is relative to the images folder (``0--Parade/....jpg``)."""

    file: str
    x: int
    y: int
    w: int
    h: int
    blur: int
    expression: int
    illumination: int
    invalid: int
    occlusion: int
    pose: int


def parse_annotations(path: str | Path) -> list[Face]:
    """Parse a WIDER FACE ``*_bbx_gt.txt`` file; errors name the file and line."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    faces: list[Face] = []
    i = 0

    def bad(msg: str) -> RsrBenchError:
        return RsrBenchError(f"{path}:{i + 1}: {msg}")

    while i < len(lines):
        name = lines[i].strip()
        if not name:
            i += 1
            continue
        i += 1
        if i >= len(lines) or not lines[i].strip().isdigit():
            raise bad(f"expected the face count after {name!r}")
        n = int(lines[i])
        i += 1
        for _ in range(max(n, 1)):  # count 0 is followed by one line of zeros
            if i >= len(lines):
                raise bad(f"file ends inside the boxes of {name!r}")
            vals = lines[i].split()
            if len(vals) < 10 or not all(v.lstrip("-").isdigit() for v in vals[:10]):
                raise bad(f"expected 10 integers 'x y w h blur expression illumination invalid "
                          f"occlusion pose', got {lines[i]!r}")
            if n > 0:
                faces.append(Face(name, *(int(v) for v in vals[:10])))
            i += 1
    return faces


def rule_from(options: Mapping[str, Any] | None, count: int | None) -> dict[str, Any]:
    """The effective rule: defaults, then the dataset's ``count``, then explicit options."""
    rule = dict(DEFAULT_RULE)
    if count:
        rule["count"] = int(count)
    extra = set(options or {}) - set(DEFAULT_RULE) - {"name", "manifest"}
    if extra:
        raise ConfigError(f"faces_wider: unknown option(s) {sorted(extra)}; allowed: {sorted(DEFAULT_RULE)}")
    rule.update({k: v for k, v in (options or {}).items() if k in DEFAULT_RULE})
    return rule


def eligible(face: Face, rule: Mapping[str, Any]) -> bool:
    return (
        face.invalid == 0
        and face.occlusion == rule["occlusion"]
        and face.pose == rule["pose"]
        and face.blur <= rule["max_blur"]
        and min(face.w, face.h) >= rule["min_size"]
        and max(face.w, face.h) <= rule["max_size"]
    )


def select_faces(faces: list[Face], rule: Mapping[str, Any]) -> list[Face]:
    """Apply steps 2-3 of the module rule; deterministic for a given annotation file and rule."""
    candidates = sorted((f for f in faces if eligible(f, rule)), key=lambda f: (f.file, f.x, f.y, f.w, f.h))
    random.Random(int(rule["seed"])).shuffle(candidates)
    chosen: list[Face] = []
    used: set[str] = set()
    for face in candidates:
        if rule["one_per_image"] and face.file in used:
            continue
        chosen.append(face)
        used.add(face.file)
        if len(chosen) == rule["count"]:
            return chosen
    raise RsrBenchError(
        f"faces_wider: only {len(chosen)} faces satisfy the rule {dict(rule)} "
        f"({len(candidates)} eligible boxes), need {rule['count']}"
    )


def crop_box(face: Face, width: int, height: int, margin: float) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` of the square crop around ``face`` (step 4)."""
    side = math.floor(max(face.w, face.h) * (1 + 2 * margin) + 0.5)
    cx, cy = face.x + face.w / 2, face.y + face.h / 2
    left = math.floor(cx - side / 2 + 0.5)
    top = math.floor(cy - side / 2 + 0.5)
    left = max(0, min(left, width - side))
    top = max(0, min(top, height - side))
    return left, top, min(left + side, width), min(top + side, height)


def selection_version(rule: Mapping[str, Any], chosen: list[Face]) -> str:
    key = {
        "rule": {k: rule[k] for k in sorted(rule) if k not in ("annotations", "images")},
        "faces": [[f.file, f.x, f.y, f.w, f.h] for f in chosen],
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"wider-val-{digest[:12]}"


def _locate(data_root: Path, rel: str, *, want_dir: bool) -> Path:
    """``data_root/rel``, or a path ending in the same last two components further down
    (some copies of the archives add a top-level folder)."""
    path = data_root / rel
    ok = Path.is_dir if want_dir else Path.is_file
    if ok(path):
        return path
    top, tail = data_root / Path(rel).parts[0], Path(rel).parts[-2:]
    if top.is_dir():
        for q in sorted(top.rglob(Path(rel).name)):
            if q.parts[-len(tail):] == tail and ok(q):
                return q
    return path


def build_faces(
    data_root: Path, out_dir: Path, *, options: Mapping[str, Any] | None = None, count: int | None = None,
    say=print,
) -> dict[str, Any]:
    """Select faces, write the PNG crops into ``out_dir`` and the manifest; return the manifest.

    ``out_dir`` is replaced only once every crop is written (built in a sibling temp folder), so
    an interrupted build never leaves a half-filled dataset behind.
    """
    rule = rule_from(options, count)
    ann = _locate(data_root, rule["annotations"], want_dir=False)
    images = _locate(data_root, rule["images"], want_dir=True)
    if not ann.is_file():
        raise RsrBenchError(f"faces_wider: annotation file not found: {ann}")
    if not images.is_dir():
        raise RsrBenchError(f"faces_wider: WIDER FACE validation images not found: {images}")
    chosen = select_faces(parse_annotations(ann), rule)
    version = selection_version(rule, chosen)

    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / HIDDEN_MANIFEST).exists():
        raise RsrBenchError(
            f"faces_wider: {out_dir} exists and was not built by rsr-bench; move it away and re-run"
        )
    tmp = fresh_dir(out_dir.parent, f".{out_dir.name}.building-")
    try:
        records = _write_crops(chosen, images, ann, rule, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # ours, made just above
        raise
    manifest = {
        "dataset_builder": "faces_wider",
        "version": version,
        "rule": rule,
        "annotations_sha256": sha256_file(ann),
        "selection": records,
    }
    atomic_write_json(tmp / HIDDEN_MANIFEST, manifest)
    if out_dir.exists():
        shutil.rmtree(out_dir)  # built by rsr-bench (checked above)
    tmp.rename(out_dir)
    manifest_path = Path(options.get("manifest")) if options and options.get("manifest") else None
    manifest_path = data_root / relative_inside(manifest_path, "faces_wider: manifest") if manifest_path \
        else out_dir.parent / MANIFEST_NAME
    atomic_write_json(manifest_path, manifest)
    say(f"FACES_rw: wrote {len(records)} crops to {out_dir} (version {version}; selection in {manifest_path})")
    return manifest


def _write_crops(chosen: list[Face], images: Path, ann: Path, rule: Mapping[str, Any], tmp: Path) -> list[dict]:
    """Crop every chosen face from its image into ``tmp``; one record per crop."""
    from PIL import Image

    records = []
    for idx, face in enumerate(chosen):
        src = images / face.file
        if not src.is_file():
            raise RsrBenchError(f"faces_wider: image {src} listed in {ann.name} is missing")
        image_id = f"{idx:03d}_{Path(face.file).stem}"
        try:
            with Image.open(src) as im:  # as stored: the annotation boxes ignore EXIF orientation
                box = crop_box(face, im.width, im.height, float(rule["margin"]))
                im.convert("RGB").crop(box).save(tmp / f"{image_id}.png")
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise RsrBenchError(f"faces_wider: cannot read {src}: {exc}") from None
        records.append({"id": image_id, "file": face.file, "box": [face.x, face.y, face.w, face.h],
                        "crop": list(box), "blur": face.blur, "expression": face.expression,
                        "illumination": face.illumination})
    return records
