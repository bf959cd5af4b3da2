"""The results store on disk: per-image records, SR PNGs, per-cell manifests.

Layout (see docs/architecture.md)::

    <root>/cells/<method>/<dataset>/manifest.json            the manifest of a single-process run
    <root>/cells/<method>/<dataset>/manifest.<r>of<N>.json   rank r of an N-rank run (torchrun, --shard r/N)
    <root>/cells/<method>/<dataset>/sr/<image>.png
    <root>/cells/<method>/<dataset>/records/<image>.json     with "sr_sha256", the hash of its PNG
    <root>/cells/<method>/<dataset>/.lock                    per-image claims of concurrent runs (fcntl)
    <root>/skipped.json

Each file is written atomically, a record only after its PNG, so a killed run leaves only
complete files and re-running recomputes exactly what is missing. Several processes write one
store at once (ranks of one run, or separate runs): a rank writes only its own images' files
and its own manifest fragment, which readers merge (:func:`read_manifest`); separate runs claim
images through :class:`CellLock`. Aggregation happens only at report time, from per-image values.

A write that fails (read-only store, full disk) raises :class:`StoreError`: the run stops with
that message instead of recording every following image as failed. :func:`check_store` refuses,
before anything runs, a store that cannot be written or whose filesystem cannot rename atomically.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import RsrBenchError
from .files import atomic_write_bytes, atomic_write_json, sha256_file

if TYPE_CHECKING:  # pandas (1.5 s to import) only where a table is built: a no-op re-run stays fast
    import pandas as pd

RESULT_COLUMNS = ["method", "dataset", "image", "metric", "value"]
FAILURE_COLUMNS = ["method", "dataset", "image", "stage", "message"]
#: Filesystems whose rename is a copy and a delete (object-store mounts): a killed write there
#: could leave a half-written record that a later run reads back, so a store there is refused.
NO_ATOMIC_RENAME = frozenset({"fuse.s3fs", "fuse.gcsfuse", "fuse.goofys", "fuse.mountpoint-s3", "fuse.rclone",
                              "fuse.blobfuse", "fuse.blobfuse2", "fuse.s3backer", "fuse.juicefs-s3"})
#: Per-rank facts of a manifest fragment; the merged manifest lists them under "ranks".
RANK_FIELDS = ("rank", "world_size", "host", "device", "device_name", "started", "finished", "timings")
_FRAGMENT = re.compile(r"manifest\.(\d+)of(\d+)\.json")


class StoreError(RsrBenchError):
    """The results store cannot be written (read-only, full disk, no atomic rename): stop, say why."""


def _safe(component: str) -> str:
    if not component or component in (".", "..") or "/" in component or "\\" in component or "\0" in component:
        raise ValueError(f"unsafe path component {component!r}")
    return component


def image_problem(image: str) -> str | None:
    """Why an image id cannot be used as a file name in the store (None when it can)."""
    if image in ("", ".", ".."):
        return f"{image!r} is not a file name"
    bad = "".join(c for c in ("/", "\\", "\0") if c in image)
    return f"it contains {bad!r} (a path separator on some systems)" if bad else None


def _stem(image: str) -> str:
    """The file stem of an image's record and PNG: the id itself, or for an id that cannot be a
    file name a hidden hashed name (listing never yields ids starting with '.', so no clash)."""
    if image_problem(image) is None:
        return image
    return ".unsafe-" + hashlib.sha256(image.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def is_store(root: str | os.PathLike) -> bool:
    """Whether ``root`` holds a results store (guards against writing a report into one, or reading a report as one)."""
    return (Path(root) / "cells").is_dir() or (Path(root) / "skipped.json").is_file()


def cell_dir(root: str | os.PathLike, method: str, dataset: str) -> Path:
    return Path(root) / "cells" / _safe(method) / _safe(dataset)


def sr_path(root: str | os.PathLike, method: str, dataset: str, image: str) -> Path:
    return cell_dir(root, method, dataset) / "sr" / f"{_stem(image)}.png"


def record_path(root: str | os.PathLike, method: str, dataset: str, image: str) -> Path:
    return cell_dir(root, method, dataset) / "records" / f"{_stem(image)}.json"


def manifest_path(root: str | os.PathLike, method: str, dataset: str, rank: int = 0, world: int = 1) -> Path:
    """The manifest fragment rank ``rank`` of a ``world``-rank run writes (``manifest.json`` for one rank)."""
    name = "manifest.json" if world == 1 else f"manifest.{rank}of{world}.json"
    return cell_dir(root, method, dataset) / name


def _read_json(path: Path) -> Any | None:
    """The JSON in ``path``; None when it is missing or damaged (unreadable, not UTF-8, not JSON)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


class DamagedRecordWarning(UserWarning):
    """A record file in the store that is not a valid record: readers skip it, ``run`` recomputes it."""


def record_problem(rec: Any) -> str | None:
    """Why ``rec`` (as read from a record file) is not a usable record; None when it is."""
    if not isinstance(rec, dict) or not isinstance(rec.get("image"), str):
        return "not a JSON object with an 'image' name"
    for key in ("metrics", "not_computable"):
        if not isinstance(rec.get(key, {}), dict):
            return f"{key!r} is not an object"
    bad = [k for k, v in rec.get("metrics", {}).items() if isinstance(v, bool) or not isinstance(v, (int, float))]
    if bad:
        return f"non-numeric value of metric(s) {', '.join(map(str, bad))}"
    errors = rec.get("errors", [])
    if not isinstance(errors, list) or not all(isinstance(e, dict) and {"stage", "message"} <= set(e) for e in errors):
        return "'errors' is not a list of {stage, message}"
    return None


def _write_error(path: Path, exc: OSError) -> StoreError:
    why = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "the disk (or quota) is full: free space or choose another --store"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        hint = "the store is not writable here: choose another --store"
    else:
        hint = "check the filesystem of the store, or choose another --store"
    return StoreError(f"cannot write to the results store: {path}: {why} ({hint}); everything written before is kept "
                      "and a re-run resumes from there")


def _write(path: Path, write: Callable[[], Any]) -> Any:
    """Run one store write; an OSError becomes a :class:`StoreError` naming the file and the cause."""
    try:
        return write()
    except OSError as exc:
        raise _write_error(path, exc) from exc


def read_record(root: str | os.PathLike, method: str, dataset: str, image: str) -> dict | None:
    """The image's record; None when there is none or it is damaged (so a run recomputes it)."""
    rec = _read_json(record_path(root, method, dataset, image))
    return rec if record_problem(rec) is None else None


def write_record(root: str | os.PathLike, method: str, dataset: str, record: dict) -> None:
    path = record_path(root, method, dataset, record["image"])
    _write(path, lambda: atomic_write_json(path, record))


def write_sr(root: str | os.PathLike, method: str, dataset: str, image: str, png: bytes) -> str:
    """Write an SR PNG (encoded bytes) atomically; returns its sha256 for the image's record."""
    path = sr_path(root, method, dataset, image)
    _write(path, lambda: atomic_write_bytes(path, png))
    return hashlib.sha256(png).hexdigest()


def sr_intact(root: str | os.PathLike, method: str, dataset: str, record: dict) -> bool:
    """Whether the SR PNG of ``record`` is on disk as it was written: its sha256 matches the
    record's ``sr_sha256`` (a record written before hashes were stored: the PNG decodes)."""
    path = sr_path(root, method, dataset, record["image"])
    want = record.get("sr_sha256")
    try:
        if want:
            return sha256_file(path) == want
        from PIL import Image

        with Image.open(path) as im:
            im.verify()
        return True
    except Exception:  # noqa: BLE001 - missing, unreadable or undecodable: recompute
        return False


# ------------------------------------------------------------------------------ manifests


def manifest_fragments(root: str | os.PathLike, method: str, dataset: str) -> list[dict]:
    """Every manifest fragment of a cell (a single-process run's, and one per rank of a
    distributed run), oldest first; each knows its ``rank`` and ``world_size``."""
    folder = cell_dir(root, method, dataset)
    out = []
    for path in sorted(folder.glob("manifest*.json")) if folder.is_dir() else ():
        m = _FRAGMENT.fullmatch(path.name)
        if path.name != "manifest.json" and not m:
            continue
        data = _read_json(path)
        if isinstance(data, dict):
            rank, world = (int(m[1]), int(m[2])) if m else (0, 1)
            out.append({**data, "rank": data.get("rank", rank), "world_size": data.get("world_size", world)})
    return sorted(out, key=lambda f: (str(f.get("started") or ""), f["world_size"], f["rank"]))


def merge_manifests(fragments: list[dict]) -> dict | None:
    """One cell's manifest from its fragments: the facts of the latest run (by start time), its
    ``world_size``, ``timings`` summed over its ranks (``wall_s``: the slowest rank), and every
    fragment's per-rank facts under ``ranks``."""
    if not fragments:
        return None
    latest = fragments[-1]
    run = [f for f in fragments if f["world_size"] == latest["world_size"]]
    merged = {k: v for k, v in latest.items() if k not in RANK_FIELDS or k in ("device", "device_name")}
    timings: dict[str, float] = {}
    for f in run:
        for key, value in (f.get("timings") or {}).items():
            if isinstance(value, (int, float)):
                timings[key] = max(timings.get(key, 0), value) if key == "wall_s" else timings.get(key, 0) + value
    unfinished = any(not f.get("finished") for f in run)
    merged.update(world_size=latest["world_size"], timings=timings,
                  started=min(str(f.get("started") or "") for f in run) or None,
                  finished=None if unfinished else max(str(f["finished"]) for f in run),
                  ranks=[{k: f.get(k) for k in RANK_FIELDS} for f in fragments])
    return merged


def read_manifest(root: str | os.PathLike, method: str, dataset: str) -> dict | None:
    """The cell's manifest, merged from its fragments (:func:`merge_manifests`); None if it has none."""
    return merge_manifests(manifest_fragments(root, method, dataset))


def write_manifest(root: str | os.PathLike, method: str, dataset: str, manifest: dict, *,
                   rank: int = 0, world: int = 1) -> None:
    """Write this rank's fragment (a rank never writes another's, so no two ranks race)."""
    path = manifest_path(root, method, dataset, rank, world)
    data = {k: v for k, v in manifest.items() if k != "ranks"}
    _write(path, lambda: atomic_write_json(path, {**data, "rank": rank, "world_size": world}))


def load_manifests(root: str | os.PathLike) -> dict[tuple[str, str], dict]:
    out = {}
    cells = Path(root) / "cells"
    if cells.is_dir():
        for method, dataset in sorted({(f.parent.parent.name, f.parent.name) for f in cells.glob("*/*/manifest*.json")}):
            merged = read_manifest(root, method, dataset)
            if merged is not None:
                out[(method, dataset)] = merged
    return out


# ------------------------------------------------------------------------------ locks


def _claim(fd: int, offset: int) -> bool | None:
    """Lock one byte without waiting: True taken, False held by another process, None: no locks here."""
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
        return True
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        return None  # ENOLCK, EOPNOTSUPP, EINVAL: the filesystem does not lock


class CellLock:
    """Claims on the images of one cell, so that two runs on one store never compute an image at once.

    One fcntl byte-range lock per image id (byte = a hash of the id) in ``<cell>/.lock``. The
    kernel releases a process's locks when it dies, SIGKILL included, so a lock left by a dead
    run never blocks anyone; the file itself staying behind means nothing. Where the filesystem
    has no locks, ``supported`` is False and every claim succeeds (results stay correct, since
    every write is atomic; only work may be duplicated).
    """

    def __init__(self, root: str | os.PathLike, method: str, dataset: str) -> None:
        self.path = cell_dir(root, method, dataset) / ".lock"
        self.supported = True
        _write(self.path, lambda: self.path.parent.mkdir(parents=True, exist_ok=True))
        self.fd = _write(self.path, lambda: os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644))

    @staticmethod
    def _offsets(images: Iterable[str]) -> list[int]:
        return sorted({int(hashlib.sha256(i.encode("utf-8", "surrogateescape")).hexdigest()[:8], 16) for i in images})

    def claim(self, images: Iterable[str]) -> bool:
        """Take every image's lock, or none of them (False: another process holds one)."""
        taken: list[int] = []
        for offset in self._offsets(images):
            got = _claim(self.fd, offset) if self.supported else True
            if got is None:
                self.supported = False
            elif not got:
                self._unlock(taken)
                return False
            taken.append(offset)
        return True

    def _unlock(self, offsets: Iterable[int]) -> None:
        for offset in offsets if self.supported else ():
            fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, offset)

    def release(self, images: Iterable[str]) -> None:
        self._unlock(self._offsets(images))

    def close(self) -> None:
        os.close(self.fd)  # releases every lock this process holds on the file


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (waiting for it) while a read-modify-write runs."""
    fd = _write(path, lambda: os.open(path, os.O_RDWR | os.O_CREAT, 0o644))
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX)
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                raise _write_error(path, exc) from exc
        yield
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------ checks


def filesystem_type(path: str | os.PathLike) -> str | None:
    """The type of the filesystem ``path`` lives on (``ext4``, ``nfs4``, ``fuse.s3fs``, ...), from
    /proc/self/mountinfo; None where that cannot be read."""
    try:
        lines = Path("/proc/self/mountinfo").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    target, best, kind = str(Path(path).resolve()), "", None
    for line in lines:
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 5 or not right:
            continue
        mount = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4])
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, right.split()[0]
    return kind


def _probe_rename(root: Path) -> None:
    a, b = root / f".rsr-bench-probe-{os.getpid()}-a", root / f".rsr-bench-probe-{os.getpid()}-b"
    try:
        _write(b, lambda: b.write_bytes(b"old"))
        _write(a, lambda: a.write_bytes(b"new"))
        try:
            os.replace(a, b)
            ok = b.read_bytes() == b"new"
        except OSError as exc:
            ok, why = False, exc.strerror or str(exc)
        else:
            why = "the renamed file does not hold the new content"
        if not ok:
            raise StoreError(f"results store {root}: its filesystem does not replace files atomically by rename ({why}); "
                             "a killed run could leave half-written results there: use a local or POSIX filesystem")
    finally:
        a.unlink(missing_ok=True)
        b.unlink(missing_ok=True)


def check_store(root: str | os.PathLike) -> None:
    """Refuse, before anything runs, a store that cannot hold results safely: one that cannot
    be created or written (read-only, full), or whose filesystem cannot rename atomically
    (every record and PNG is written to a temporary file and renamed over the old one)."""
    root = Path(root)
    _write(root, lambda: root.mkdir(parents=True, exist_ok=True))
    kind = filesystem_type(root)
    if kind in NO_ATOMIC_RENAME:
        raise StoreError(f"results store {root} is on a {kind} filesystem, whose rename is a copy and a delete, not "
                         "atomic: a killed run could leave half-written results there; use a local or POSIX filesystem "
                         "(NFS, Lustre, GPFS and local disks are fine)")
    _probe_rename(root)


# ------------------------------------------------------------------------------ skipped cells and reading


def load_skipped(root: str | os.PathLike) -> dict[tuple[str, str], str]:
    data = _read_json(Path(root) / "skipped.json") or {}
    return {tuple(k.split("|", 1)): v for k, v in data.items()}  # type: ignore[misc]


def update_skipped(root: str | os.PathLike, skipped: dict[tuple[str, str], str], ran: set[tuple[str, str]]) -> None:
    """Merge newly skipped cells; forget skip reasons of cells that have now run. Locked, since
    the shards of one run (and separate runs) update the same file."""
    path = Path(root) / "skipped.json"
    with _exclusive(Path(root) / ".skipped.lock"):
        current = load_skipped(root)
        current.update(skipped)
        for cell in ran:
            current.pop(cell, None)
        _write(path, lambda: atomic_write_json(path, {f"{m}|{d}": r for (m, d), r in sorted(current.items())}))


def iter_records(root: str | os.PathLike):
    """Yield ``(method, dataset, record)`` for every record in the store."""
    cells = Path(root) / "cells"
    if not cells.is_dir():
        return
    for mdir in sorted(p for p in cells.iterdir() if p.is_dir()):
        for ddir in sorted(p for p in mdir.iterdir() if p.is_dir()):
            yield from _cell_records(ddir, mdir.name, ddir.name)


def iter_records_of(root: str | os.PathLike, method: str, dataset: str):
    """Yield ``(method, dataset, record)`` for the records of one cell."""
    yield from _cell_records(cell_dir(root, method, dataset), method, dataset)


def _cell_records(ddir: Path, method: str, dataset: str):
    rdir = ddir / "records"
    if not rdir.is_dir():
        return
    for f in sorted(rdir.glob("*.json")):
        rec = _read_json(f)
        problem = "unreadable or not JSON" if rec is None else record_problem(rec)
        if problem:
            warnings.warn(f"{f}: damaged record skipped ({problem}); `rsr-bench run` recomputes it",
                          DamagedRecordWarning, stacklevel=3)
            continue
        yield method, dataset, rec


def load_results(root: str | os.PathLike) -> pd.DataFrame:
    """Long table of per-image values: ``[method, dataset, image, metric, value]``."""
    import pandas as pd

    rows = [
        (m, d, rec["image"], metric, float(value))
        for m, d, rec in iter_records(root)
        for metric, value in sorted(rec.get("metrics", {}).items())
    ]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def load_failures(root: str | os.PathLike) -> pd.DataFrame:
    """Per-image errors and not-computable metrics: ``[method, dataset, image, stage, message]``."""
    import pandas as pd

    rows = []
    for m, d, rec in iter_records(root):
        rows += [(m, d, rec["image"], e["stage"], e["message"]) for e in rec.get("errors", [])]
        rows += [(m, d, rec["image"], f"not computable: {k}", v) for k, v in rec.get("not_computable", {}).items()]
    return pd.DataFrame(rows, columns=FAILURE_COLUMNS)


SUMMARY_COLUMNS = ["method", "dataset", "metric", "mean", "std", "n"]


def aggregate(results: pd.DataFrame) -> pd.DataFrame:
    """``[method, dataset, image, metric, value]`` -> ``[method, dataset, metric, mean, std, n]``.

    SR papers report the mean of per-image values (not a pooled MSE), so that is the mean; the
    population standard deviation and the image count travel with it.
    """
    import pandas as pd

    if results.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    g = results.groupby(["method", "dataset", "metric"], sort=False)["value"]
    out = g.agg(mean="mean", std=lambda v: float(v.std(ddof=0)), n="count").reset_index()
    return out[SUMMARY_COLUMNS]
