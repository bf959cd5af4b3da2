"""``rsr-bench fetch DATASET``: download, verify, extract, lay out and check an official dataset.

Driven by the ``fetch:`` mapping of a ``datasets.yaml`` entry, so a new downloadable dataset is
data, not code. Schema (unknown keys are rejected by name)::

    fetch:
      archives:                      # processed in order
        - url: https://host/path/track1-valid-input.zip
          mirrors: [https://...]     # optional: tried in order when url fails
          filename: x.zip            # optional: name of the kept download (default: URL basename)
          sha256: <64 hex>           # optional: verified; when absent the sha256 and size of the
          size: 123456               #   first download are recorded in
                                     #   <data_root>/.rsr-bench-downloads.json and verified after
          role: lr                   # lr | hr: the archive's images become the dataset's LR / HR
                                     #   folder (spec.lr_dir / spec.hr_dir), whatever the folder
                                     #   names inside the archive;
                                     # extra: extracted as is under <data_root>/<extract_to>
                                     #   (raw material for `derive`)
          subdir: some/folder        # lr/hr only, optional: folder inside the archive holding the
                                     #   images; default: the archive root, descending through a
                                     #   single top-level folder until images appear
          select: {count: 100, rule: first-sorted}
                                     # lr only, optional: when the archive holds more than
                                     #   `count` images keep the first `count` in sorted name
                                     #   order (rule first-sorted) or a random.Random(seed)
                                     #   sample of the sorted names (rule seeded, key seed)
          extract_to: WIDER_FACE     # extra only: folder under the data root
      derive: faces_wider            # optional: a builder run after the archives, which writes
                                     #   spec.lr_dir; or {name: faces_wider, <options>}
                                     #   (see rsr_bench/fetch/faces.py for the rule and options)

Every path this block names for writing (``filename``, ``extract_to``, ``subdir``, a derive
``manifest``) and the dataset's LR/HR folders must lie inside the data root: ``..`` and absolute
paths are refused before anything is downloaded. An existing folder that rsr-bench did not
create is never deleted: fetch stops with an error naming it, and ``--force`` moves it aside
(``<folder>.moved-aside-<time>``). Extra archives never overwrite what their folder holds.

Downloads are kept in ``<data_root>/.downloads/`` (a re-fetch never downloads twice). After
installing, the layout is checked: the LR folder (and HR folder of paired sets) exists, holds
``count`` images and every LR image has an HR image with the same id; anything else is an
error that says exactly what is wrong. A hidden ``.rsr-bench-fetch.json`` in the LR folder
records the archives (url, sha256, size), any selection and the dataset version.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import random
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import __version__
from ..datasets import MARKER
from ..errors import ConfigError, RsrBenchError
from ..files import atomic_write_json, sha256_file
from ..image import list_images
from ..registry import did_you_mean
from .download import DownloadError, download_file, fresh_dir, safe_extract

FETCH_KEYS = {"archives", "derive"}
ARCHIVE_KEYS = {"url", "mirrors", "filename", "sha256", "size", "role", "subdir", "select", "extract_to"}
ROLES = ("lr", "hr", "extra")
SELECT_RULES = ("first-sorted", "seeded")
DOWNLOADS_DIR = ".downloads"
STAGING_DIR = ".staging"
RECORDS_FILE = ".rsr-bench-downloads.json"

Say = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ schema


@dataclass(frozen=True)
class Archive:
    url: str
    filename: str
    role: str
    mirrors: tuple[str, ...] = ()
    sha256: str | None = None
    size: int | None = None
    subdir: str | None = None
    select: Mapping[str, Any] | None = None
    extract_to: str | None = None


@dataclass(frozen=True)
class FetchPlan:
    archives: tuple[Archive, ...]
    derive: str | None = None
    derive_options: Mapping[str, Any] | None = None


def _archive(a: Any, where: str, err: Callable[[str], ConfigError]) -> Archive:
    """One ``archives[i]`` entry, validated; ``where`` names it in errors."""
    if not isinstance(a, Mapping) or not a.get("url"):
        raise err(f"{where} must be a mapping with a 'url'")
    extra = set(a) - ARCHIVE_KEYS
    if extra:
        raise err(f"{where}: unknown key(s) {sorted(extra)}; allowed: {sorted(ARCHIVE_KEYS)}")
    url, role = str(a["url"]), str(a.get("role", "lr"))
    if role not in ROLES:
        raise err(f"{where}: role must be one of {list(ROLES)}, got {role!r}")
    if role == "extra" and not a.get("extract_to"):
        raise err(f"{where}: role 'extra' needs 'extract_to' (a folder under the data root)")
    if role != "extra" and a.get("extract_to"):
        raise err(f"{where}: 'extract_to' is only for role 'extra'; lr/hr go to the dataset's folders")
    select = a.get("select")
    if select is not None:
        if role != "lr" or not isinstance(select, Mapping) or "count" not in select:
            raise err(f"{where}: 'select' must be a mapping with 'count', on an lr archive")
        if set(select) - {"count", "rule", "seed"}:
            raise err(f"{where}: select: unknown key(s) {sorted(set(select) - {'count', 'rule', 'seed'})}")
        if select.get("rule", "first-sorted") not in SELECT_RULES:
            raise err(f"{where}: select rule must be one of {list(SELECT_RULES)}")
    if a.get("extract_to") is not None:
        relative_inside(a["extract_to"], f"{where}: extract_to", err)
    if a.get("subdir") is not None:
        relative_inside(a["subdir"], f"{where}: subdir", err, inside="the archive")
    filename = str(a.get("filename") or url.rstrip("/").rsplit("/", 1)[-1])
    if not plain_name(filename):
        raise err(f"{where}: filename {filename!r} must be a plain file name (no folders, no '..'); "
                  "downloads are kept in <data root>/.downloads/")
    sha = a.get("sha256")
    if sha is not None and (len(str(sha)) != 64 or any(c not in "0123456789abcdef" for c in str(sha).lower())):
        raise err(f"{where}: sha256 must be 64 hex digits, got {sha!r}")
    mirrors = a.get("mirrors") or []
    try:
        size = int(a["size"]) if a.get("size") is not None else None
    except (TypeError, ValueError):
        raise err(f"{where}: size must be an integer number of bytes") from None
    return Archive(
        url=url, filename=filename, role=role,
        mirrors=tuple(str(m) for m in ([mirrors] if isinstance(mirrors, str) else mirrors)),
        sha256=str(sha).lower() if sha else None, size=size, subdir=a.get("subdir"), select=select,
        extract_to=a.get("extract_to"),
    )


def plain_name(name: str) -> bool:
    """A file name without any folder part (what may follow ``<folder>/`` safely)."""
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\0")


def relative_inside(value: Any, what: str, err: Callable[[str], Exception] = ConfigError,
                    inside: str = "the data root") -> str:
    """``value`` as a relative POSIX path that stays inside the folder it is joined to: no
    absolute path, drive letter or ``..`` that climbs out (a datasets file must not make fetch
    write outside the data root)."""
    text = str(value).replace("\\", "/")
    norm = posixpath.normpath(text) if text else ".."
    if text.startswith("/") or (len(text) > 1 and text[1] == ":") or norm == ".." or norm.startswith("../"):
        raise err(f"{what}: {value!r} must be a relative path inside {inside}")
    return norm


def parse_fetch(name: str, fetch: Mapping[str, Any] | None) -> FetchPlan:
    """Validate a ``fetch:`` mapping; errors name the dataset and the offending key."""

    def err(msg: str) -> ConfigError:
        return ConfigError(f"dataset {name!r}: fetch: {msg}")

    if not fetch:
        raise RsrBenchError(f"dataset {name!r} has no 'fetch:' entry, so rsr-bench cannot download it; "
                            "place its images in the folders named in its datasets.yaml entry")
    if not isinstance(fetch, Mapping):
        raise err("must be a mapping")
    extra = set(fetch) - FETCH_KEYS
    if extra:
        raise err(f"unknown key(s) {sorted(extra)}; allowed: {sorted(FETCH_KEYS)}")
    raw = fetch.get("archives") or []
    if not isinstance(raw, list):
        raise err("'archives' must be a list")
    archives = tuple(_archive(a, f"archives[{i}]", err) for i, a in enumerate(raw))
    derive = fetch.get("derive")
    options: Mapping[str, Any] | None = None
    if isinstance(derive, Mapping):
        options = dict(derive)
        derive = options.get("name")
    if options and options.get("manifest") is not None:
        relative_inside(options["manifest"], "derive: manifest", err)
    if derive is not None and derive not in DERIVERS:
        raise err(f"unknown derive builder {derive!r}.{did_you_mean(str(derive), DERIVERS)} Known: {sorted(DERIVERS)}")
    if not archives and not derive:
        raise err("needs 'archives' and/or 'derive'")
    return FetchPlan(archives, derive, options)


# ------------------------------------------------------------------------------------ checks


def check_layout(spec: Any) -> list[str]:
    """What is wrong with the dataset on disk (an empty list when it is complete)."""
    problems: list[str] = []
    lr_dir, hr_dir = spec.lr_dir, spec.hr_dir if spec.has_gt else None
    if lr_dir is None or not lr_dir.is_dir():
        return [f"LR folder {lr_dir} does not exist"]
    lr = list_images(lr_dir)
    if spec.count is not None and len(lr) != spec.count:
        problems.append(f"LR folder {lr_dir} has {len(lr)} images, expected {spec.count}")
    elif not lr:
        problems.append(f"LR folder {lr_dir} has no images")
    if hr_dir is not None:
        if not hr_dir.is_dir():
            return problems + [f"HR folder {hr_dir} does not exist"]
        hr_stems = {p.stem for p in list_images(hr_dir)}
        if spec.count is not None and len(hr_stems) != spec.count:
            problems.append(f"HR folder {hr_dir} has {len(hr_stems)} images, expected {spec.count}")
        suffix = spec.lr_suffix
        ids = [p.stem[: -len(suffix)] if suffix and p.stem.endswith(suffix) else p.stem for p in lr]
        unmatched = [i for i in ids if i not in hr_stems]
        if unmatched:
            problems.append(
                f"{len(unmatched)} LR images have no HR image of the same name in {hr_dir} "
                f"(e.g. {', '.join(unmatched[:3])}; HR has e.g. {', '.join(sorted(hr_stems)[:3]) or 'nothing'})"
            )
    return problems


# ------------------------------------------------------------------------------------ fetch


def fetch_dataset(
    spec: Any, data_root: str | os.PathLike, *, progress: bool = True, force: bool = False,
    say: Say | None = None,
) -> Path:
    """Make dataset ``spec`` complete on disk; return its LR folder.

    Idempotent: a dataset that already passes :func:`check_layout` (and, for derived sets, was
    built by rsr-bench) is left alone without network access unless ``force``.
    """
    say = say or _stderr
    data_root = Path(data_root)
    plan = parse_fetch(spec.name, spec.fetch)
    if spec.lr_dir is None:
        raise ConfigError(f"dataset {spec.name!r}: no 'lr' folder to fetch into")
    for folder, what in ((spec.lr_dir, "LR"), (spec.hr_dir, "HR")):
        _check_inside(data_root, folder, f"dataset {spec.name!r}: its {what} folder")
    built = not plan.derive or (spec.lr_dir / MARKER).is_file()  # derived: only our own build
    if not force and built and not check_layout(spec):
        say(f"{spec.name}: already complete in {spec.lr_dir}; nothing to do")
        return spec.lr_dir
    # Decide for every folder before downloading anything: a folder we would replace but did
    # not create stops the fetch here (with --force it is moved aside when replaced).
    targets = [_target(spec, arch, force) for arch in plan.archives]

    used: list[dict[str, Any]] = []
    selection: dict[str, Any] | None = None
    for arch, target in zip(plan.archives, targets):
        if arch.role == "extra":
            used.append(_install_extra(arch, data_root, progress, force, say))
        elif target is None:
            say(f"{spec.name}: {spec.lr_dir if arch.role == 'lr' else spec.hr_dir} is already in place")
        else:
            path, record = _download(arch, data_root, progress, say)
            used.append(record)
            selection = _install_images(spec, arch, path, target, data_root, say) or selection

    version = spec.declared_version
    if plan.derive:
        manifest = DERIVERS[plan.derive](spec, data_root, plan.derive_options, say)
        version = manifest.get("version", version)
    elif selection is not None:
        version = f"{version}+{selection['digest']}" if version else selection["digest"]

    problems = check_layout(spec)
    if problems:
        raise RsrBenchError(f"{spec.name}: fetched, but the data is not as expected:\n  - " + "\n  - ".join(problems))
    atomic_write_json(spec.lr_dir / MARKER, {
        "dataset": spec.name, "version": version, "archives": used, "selection": selection,
        "derive": plan.derive, "rsr_bench": __version__,
        "fetched_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    say(f"{spec.name}: ready in {spec.lr_dir} ({len(list_images(spec.lr_dir))} images, version {version})")
    return spec.lr_dir


def _check_inside(data_root: Path, folder: Path | None, what: str) -> None:
    """A folder fetch writes must lie inside the data root (compared as written: a link the user
    made under the data root is theirs to make)."""
    if folder is None:
        return
    root, path = os.path.normpath(os.path.abspath(data_root)), os.path.normpath(os.path.abspath(folder))
    if not path.startswith(root + os.sep):
        raise ConfigError(f"{what} {folder} is outside the data root {data_root}; `rsr-bench fetch` writes only "
                          "inside the data root (pass --data-root, or make the folder relative to it)")


def _target(spec: Any, arch: Archive, force: bool) -> Path | None:
    """The folder an lr/hr archive installs into; ``None`` when complete images are already there.

    A folder that exists and is neither complete, empty, nor only our marker was not made by
    rsr-bench (images in sub-folders, .heic files, notes): an error, unless ``force``."""
    if arch.role == "extra":
        return None
    target = spec.lr_dir if arch.role == "lr" else spec.hr_dir
    if target is None:
        raise ConfigError(f"dataset {spec.name!r}: fetch archive {arch.filename} has role 'hr' "
                          "but the entry has no 'hr' folder")
    if not target.exists() and not target.is_symlink():
        return target
    images = list_images(target) if target.is_dir() else []
    if images and not force and (spec.count is None or len(images) == spec.count):
        return None
    if force or _only_ours(target):
        return target
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in target.iterdir()) if target.is_dir() else []
    holds = (f"{len(images)} images, expected {spec.count}" if images else
             "no images at its top level" + (f" ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})"
                                             if names else ""))
    raise RsrBenchError(f"{spec.name}: {target} already exists and holds {holds}; rsr-bench did not create it "
                        "and never deletes it. Move it away, or re-run with --force to move it aside")


def _only_ours(folder: Path) -> bool:
    """An empty folder, or one holding only the marker an earlier fetch wrote."""
    return folder.is_dir() and not folder.is_symlink() and all(p.name == MARKER for p in folder.iterdir())


def move_aside(path: Path, say: Say) -> Path:
    """Rename ``path`` to ``<name>.moved-aside-<time>`` beside it (what ``--force`` does instead of deleting)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    aside, n = path.with_name(f"{path.name}.moved-aside-{stamp}"), 1
    while aside.exists() or aside.is_symlink():
        n += 1
        aside = path.with_name(f"{path.name}.moved-aside-{stamp}-{n}")
    os.rename(path, aside)
    say(f"moved {path} aside to {aside} (rsr-bench never deletes what it did not create)")
    return aside


@contextmanager
def _staging(data_root: Path, label: str) -> Iterator[Path]:
    """A fresh folder under ``<data_root>/.staging/``, removed afterwards (it only holds our files)."""
    path = fresh_dir(data_root / STAGING_DIR, f"{label}-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _load_records(data_root: Path) -> dict[str, Any]:
    path = data_root / RECORDS_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise RsrBenchError(f"{path} is not valid JSON ({exc}); fix or delete it") from None


def _download(arch: Archive, data_root: Path, progress: bool, say: Say) -> tuple[Path, dict[str, Any]]:
    """Download ``arch`` (or reuse the kept copy), verifying declared or recorded sha256/size."""
    dest = data_root / DOWNLOADS_DIR / arch.filename
    records = _load_records(data_root)
    known = records.get(arch.url) or {}
    sha256 = arch.sha256 or known.get("sha256")
    size = arch.size if arch.size is not None else known.get("size")
    failures = []
    for url in (arch.url, *arch.mirrors):
        if not dest.is_file():
            say(f"downloading {url}")
        try:
            download_file(url, dest, sha256=sha256, size=size, progress=progress)
            break
        except DownloadError as exc:
            failures.append(str(exc))
    else:
        raise DownloadError("; ".join(failures) if len(failures) == 1 else
                            "every source failed:\n  " + "\n  ".join(failures))
    record = {"url": arch.url, "filename": arch.filename,
              "sha256": sha256 or sha256_file(dest), "size": dest.stat().st_size}
    if not arch.sha256 and not known:
        records[arch.url] = {**record, "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        atomic_write_json(data_root / RECORDS_FILE, records)
        say(f"recorded sha256 {record['sha256']} ({record['size']} bytes) of {arch.filename} "
            f"in {data_root / RECORDS_FILE}; later downloads are checked against it")
    return dest, record


def _install_extra(arch: Archive, data_root: Path, progress: bool, force: bool, say: Say) -> dict[str, Any]:
    """Extract an extra archive into ``<data_root>/<extract_to>``, beside what is there already.

    Several archives may share the folder; an entry the archive would overwrite is an error (with
    ``force``: moved aside), so files rsr-bench did not write are never replaced."""
    dest = data_root / relative_inside(arch.extract_to, f"archive {arch.filename}: extract_to")
    stamp = dest / f".rsr-bench-extracted-{arch.filename}.json"
    if stamp.is_file():
        return json.loads(stamp.read_text(encoding="utf-8"))
    path, record = _download(arch, data_root, progress, say)
    say(f"extracting {path.name} into {dest}")
    with _staging(data_root, "extra") as staging:
        safe_extract(path, staging / "archive")
        entries = sorted((staging / "archive").iterdir())
        clashes = [dest / e.name for e in entries if (dest / e.name).exists() or (dest / e.name).is_symlink()]
        if clashes and not force:
            raise RsrBenchError(f"{arch.filename}: {dest} already holds {', '.join(c.name for c in clashes[:5])}, "
                                "which the archive would overwrite; move them away, or re-run with --force to "
                                "move them aside")
        dest.mkdir(parents=True, exist_ok=True)
        for clash in clashes:
            move_aside(clash, say)
        for entry in entries:
            os.rename(entry, dest / entry.name)
    atomic_write_json(stamp, record)
    return record


def _find_image_dir(root: Path, subdir: str | None, archive: Path) -> Path:
    def contents(d: Path) -> str:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in d.iterdir())
        return ", ".join(names[:8]) + (", ..." if len(names) > 8 else "") or "(nothing)"

    if subdir:
        d = root / subdir
        if not d.is_dir():
            raise RsrBenchError(f"archive {archive.name} has no folder {subdir!r}; it contains: {contents(root)}")
    else:
        d = root
        while not list_images(d):
            subs = [p for p in d.iterdir() if p.is_dir() and p.name != "__MACOSX" and not p.name.startswith(".")]
            if len(subs) != 1:
                break
            d = subs[0]
    if not list_images(d):
        raise RsrBenchError(f"archive {archive.name}: no images found in {d.relative_to(root.parent)}; "
                            f"it contains: {contents(d)} (set 'subdir' in its fetch entry)")
    return d


def _select(images: list[Path], select: Mapping[str, Any] | None) -> tuple[list[Path], dict[str, Any] | None]:
    """Apply an lr archive's ``select`` rule (only when the archive holds more than ``count``)."""
    if not select or len(images) <= int(select["count"]):
        return images, None
    n, rule = int(select["count"]), select.get("rule", "first-sorted")
    names = sorted(p.name for p in images)
    if rule == "seeded":
        chosen = sorted(random.Random(int(select.get("seed", 0))).sample(names, n))
    else:
        chosen = names[:n]
    digest = "sel-" + hashlib.sha256("\n".join(chosen).encode()).hexdigest()[:12]
    by_name = {p.name: p for p in images}
    info = {"rule": rule, "count": n, "seed": select.get("seed", 0) if rule == "seeded" else None,
            "from": len(images), "files": chosen, "digest": digest}
    return [by_name[c] for c in chosen], info


def _install_images(spec: Any, arch: Archive, path: Path, target: Path, data_root: Path,
                    say: Say) -> dict[str, Any] | None:
    """Extract ``path`` and move its images into ``target`` (built in a temporary sibling, then
    renamed). What was at ``target`` is moved aside, unless it is empty or only our marker
    (the caller has refused a folder we did not make, unless ``force``)."""
    say(f"extracting {path.name}")
    with _staging(data_root, f"{spec.name}-{arch.role}") as staging:
        safe_extract(path, staging / "archive")
        images, selection = _select(list_images(_find_image_dir(staging / "archive", arch.subdir, path)), arch.select)
        if selection:
            say(f"{spec.name}: archive has {selection['from']} images; keeping {selection['count']} "
                f"({selection['rule']})")
        building = fresh_dir(target.parent, f".{target.name}.building-")
        try:
            for p in images:
                os.replace(p, building / p.name)
            if _only_ours(target):
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                move_aside(target, say)
            building.rename(target)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
    return selection


# ------------------------------------------------------------------------------------ derived


def _derive_faces_wider(spec: Any, data_root: Path, options: Mapping[str, Any] | None, say: Say) -> dict[str, Any]:
    from .faces import build_faces

    return build_faces(data_root, spec.lr_dir, options=options, count=spec.count, say=say)


DERIVERS: dict[str, Callable[..., dict[str, Any]]] = {"faces_wider": _derive_faces_wider}
