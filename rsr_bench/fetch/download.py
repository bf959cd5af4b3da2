"""HTTP downloads with progress, resume and verification; archive extraction that cannot escape.

Datasets and weights are hundreds of megabytes on slow academic servers, so a download:

* streams into ``<dest>.part`` and resumes it with an HTTP ``Range`` request after an interruption
  (a server that ignores ``Range`` simply restarts the file);
* checks the declared ``size`` and ``sha256`` before the file gets its final name, so a file at
  ``dest`` is always complete and verified (a mismatch deletes the bytes and raises: resuming onto
  corrupt bytes would never succeed);
* names the URL and the problem in every error, and says when re-running will resume.

Archives come from third parties, so :func:`safe_extract` validates every member before writing
anything and refuses absolute paths, ``..`` components, links that point outside the target (also
through links the archive creates later), writes through links and device files (the "zip slip"
family of attacks); it extracts into a temporary sibling renamed into place on success, so a
refused archive leaves nothing. :func:`read_member` reads one member by exact name without
extracting anything. Standard library only.
"""

from __future__ import annotations

import http.client
import os
import posixpath
import re
import secrets
import shutil
import stat
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import IO

from .. import __version__
from ..errors import ConfigError, RsrBenchError, UnavailableError
from ..files import sha256_file

CHUNK = 1 << 16
USER_AGENT = f"rsr-bench/{__version__} (python-urllib)"


class DownloadError(RsrBenchError):
    """A download failed or its bytes did not verify; the message names the URL."""


class UnsafeArchiveError(RsrBenchError):
    """An archive member would be written outside the target folder (or is a device file)."""


# --------------------------------------------------------------------------------------------
# download


def download_file(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    size: int | None = None,
    progress: bool = True,
    resume: bool = True,
    timeout: float = 30,
) -> Path:
    """Download ``url`` to ``dest`` and return ``dest``.

    An existing ``dest`` that matches ``sha256``/``size`` (or any existing ``dest`` when neither
    is given) is returned without network access; one that does not match is replaced. Partial
    bytes live in ``<dest>.part`` and are resumed when ``resume`` is true. ``sha256`` may be a
    published prefix (:func:`sha256_matches`).
    """
    dest = Path(dest)
    sha256 = sha256.lower() if sha256 else None
    if not re.match(r"^https?://", url):
        raise DownloadError(f"cannot download {url!r}: only http:// and https:// URLs are supported")
    if dest.is_file():
        if _matches(dest, sha256, size):
            return dest
        dest.unlink()  # stale or corrupt: fetch again
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if part.exists() and (not resume or (size is not None and part.stat().st_size > size)):
        part.unlink()

    total = _fetch_into(url, part, size=size, progress=progress, timeout=timeout, label=dest.name)
    got_size = part.stat().st_size
    expected_size = size if size is not None else total
    if expected_size is not None and got_size != expected_size:
        part.unlink()
        raise DownloadError(
            f"download of {url} has {got_size} bytes, expected {expected_size}; the partial file "
            "was deleted, re-run to download it again"
        )
    if sha256:
        got = sha256_file(part)
        if not sha256_matches(got, sha256):
            part.unlink()
            raise DownloadError(
                f"checksum mismatch for {url}: sha256 {got}, expected {sha256}; the file was "
                "deleted (the server may serve a different version, or the transfer was corrupted)"
            )
    os.replace(part, dest)
    return dest


def sha256_matches(actual: str, expected: str) -> bool:
    """Compare hex digests; an ``expected`` prefix of 8 to 63 digits (published file names) matches too."""
    expected = expected.lower()
    if len(expected) < 8:
        raise ConfigError(f"sha256 {expected!r} is too short (need at least 8 hex digits)")
    return actual.startswith(expected) if len(expected) < 64 else actual == expected


def _matches(path: Path, sha256: str | None, size: int | None) -> bool:
    if size is not None and path.stat().st_size != size:
        return False
    return sha256 is None or sha256_matches(sha256_file(path), sha256)


def _fetch_into(
    url: str, part: Path, *, size: int | None, progress: bool, timeout: float, label: str
) -> int | None:
    """Append the missing bytes of ``url`` to ``part``; return the total size if the server said."""
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset == size:
        return size  # complete already (e.g. killed between the last write and the rename)
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # scheme checked above
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            # Range not satisfiable: the .part already holds everything (or is longer than the
            # file). Let the size/sha256 checks decide; restart if the server says how long it is.
            total = _total_from_content_range(exc.headers.get("Content-Range"))
            if total is not None and total != offset:
                part.unlink()
                return _fetch_into(url, part, size=size, progress=progress, timeout=timeout, label=label)
            return total
        raise DownloadError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"cannot download {url}: {reason}") from None

    with response:
        status = getattr(response, "status", 200)
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if offset and status == 206:
            start = _start_from_content_range(response.headers.get("Content-Range"))
            if start != offset:
                raise DownloadError(
                    f"download of {url}: server answered a resume request for byte {offset} with "
                    f"Content-Range {response.headers.get('Content-Range')!r}; delete {part} and retry"
                )
            total = _total_from_content_range(response.headers.get("Content-Range"))
            mode = "ab"
        else:
            offset = 0  # a plain 200: the server ignored Range, start over
            total = length
            mode = "wb"
        if total is None and size is not None:
            total = size
        if size is not None and total is not None and total != size:
            raise DownloadError(
                f"download of {url}: server reports {total} bytes, expected {size} "
                "(the file on the server changed, or the URL is wrong)"
            )
        _stream(response, part, mode, offset, total, url, progress, label)
    return total


def _stream(response, part: Path, mode: str, offset: int, total: int | None, url: str,
            progress: bool, label: str) -> None:
    from tqdm import tqdm

    with open(part, mode) as fh, tqdm(
        total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
        desc=label, disable=not progress, leave=False,
    ) as bar:
        try:
            while block := response.read(CHUNK):
                fh.write(block)
                bar.update(len(block))
        except (OSError, ValueError, http.client.HTTPException) as exc:  # reset, timeout, short read
            fh.flush()
            raise DownloadError(
                f"download of {url} interrupted after {fh.tell()} bytes ({exc}); "
                f"the partial file {part} is kept, re-run to resume"
            ) from None
        fh.flush()
        os.fsync(fh.fileno())
        if total is not None and fh.tell() < total:  # the server closed the connection early
            raise DownloadError(
                f"download of {url} interrupted after {fh.tell()} of {total} bytes; "
                f"the partial file {part} is kept, re-run to resume"
            )


def _start_from_content_range(value: str | None) -> int | None:
    m = re.match(r"^\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*$", value or "")
    return int(m.group(1)) if m else None


def _total_from_content_range(value: str | None) -> int | None:
    m = re.match(r"^\s*bytes\s+(?:\d+-\d+|\*)/(\d+)\s*$", value or "")
    return int(m.group(1)) if m else None


# --------------------------------------------------------------------------------------------
# extraction


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike) -> list[Path]:
    """Extract a zip or tar(.gz/.bz2/.xz) ``archive`` into ``dest``; return the paths written.

    Every member is checked before anything is written. Refused (with
    :class:`UnsafeArchiveError` naming the archive and member): absolute paths and drive
    letters, ``..`` components, device files and FIFOs, links whose target leaves ``dest`` once
    every link of the archive exists (a link may point through one the archive makes later),
    link loops, and members written through or over a link. The archive is extracted into a
    temporary sibling of ``dest`` that becomes ``dest`` only when everything passed, so a
    refused or failed extraction leaves nothing behind. ``dest`` must not exist or be an empty
    folder: extracting over files that are already there could overwrite them.
    """
    archive = Path(archive)
    dest = Path(dest)
    if not archive.is_file():
        raise RsrBenchError(f"archive {archive} does not exist")
    if zipfile.is_zipfile(archive):
        extract = _extract_zip
    elif tarfile.is_tarfile(archive):
        extract = _extract_tar
    else:
        raise RsrBenchError(f"{archive} is neither a zip nor a tar archive (truncated download?)")
    if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
        raise RsrBenchError(f"cannot extract {archive.name} into {dest}: it exists and is not empty "
                            "(rsr-bench never extracts over existing files)")
    tmp = fresh_dir(dest.parent, f".{dest.name}.extracting-")
    try:
        written = extract(archive, tmp)
        _check_tree(archive, tmp)
        if dest.is_dir():
            dest.rmdir()  # empty, checked above
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # ours; rmtree removes links, never follows them
        raise
    return [dest / p.relative_to(tmp) for p in written]


def fresh_dir(parent: Path, prefix: str) -> Path:
    """Create and return a new, empty folder ``<parent>/<prefix><random>``.

    Unlike :func:`tempfile.mkdtemp` (mode 0700) it gets the permissions of any new folder (the
    umask): it is renamed into place as a dataset or report folder that others may need to read.
    """
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        path = parent / f"{prefix}{secrets.token_hex(6)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def read_member(archive: Path, member: str) -> bytes:
    """One member's bytes, found by exact name (nothing is written, so no path can escape)."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                return zf.read(member)
        with tarfile.open(archive) as tf:
            fh = tf.extractfile(tf.getmember(member))
            if fh is None:
                raise UnavailableError(f"{archive.name}:{member} is not a regular file")
            return fh.read()
    except KeyError:
        raise UnavailableError(f"{archive.name} has no member {member!r}") from None


def _unsafe(archive: Path, member: str, why: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"refusing to extract {archive}: member {member!r} {why}")


def _clean_name(archive: Path, name: str) -> str | None:
    """The member's normalised relative POSIX path; ``None`` for the archive root itself."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise _unsafe(archive, name, "has an absolute path")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _unsafe(archive, name, "contains a '..' path component (path traversal)")
    return "/".join(parts) or None


def _check_link(archive: Path, name: str, rel: str, target: str, *, hard: bool) -> str:
    """Validate a link target lexically; return it as a path relative to the archive root."""
    norm = target.replace("\\", "/")
    kind = "hard link" if hard else "symbolic link"
    if not norm or norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise _unsafe(archive, name, f"is a {kind} to an absolute path {target!r}")
    base = "" if hard else posixpath.dirname(rel)  # tar hard links are relative to the root
    resolved = posixpath.normpath(posixpath.join(base, norm))
    if resolved == ".." or resolved.startswith("../"):
        raise _unsafe(archive, name, f"is a {kind} pointing outside the target folder ({target!r})")
    return resolved


class _LinkLoop(Exception):
    pass


def _resolve(links: Mapping[str, str], path: str, depth: int = 0) -> str | None:
    """``path`` (relative to the extraction root) resolved through the archive's symbolic links
    ``{link path: target}``, as the file system will once they exist; ``None`` if it leaves the
    root. Raises :class:`_LinkLoop` on a cycle."""
    if depth > 40:  # the kernel's own limit on nested links
        raise _LinkLoop
    stack: list[str] = []
    for part in path.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not stack:
                return None
            stack.pop()
            continue
        here = "/".join([*stack, part])
        if here not in links:
            stack.append(part)
            continue
        resolved = _resolve(links, posixpath.join("/".join(stack), links[here]), depth + 1)
        if resolved is None:
            return None
        stack = resolved.split("/") if resolved else []
    return "/".join(stack)


def _check_plan(archive: Path, plan: list[_Entry]) -> None:
    """Checks that need the whole archive: nothing is written through or over a link, and every
    link resolves inside the root once all links exist (a link may go through a later one)."""
    links: dict[str, str] = {}
    made: set[str] = set()  # every planned path and each folder above one
    for name, rel, kind, target, _ in plan:
        if rel is None:
            continue
        parts = rel.split("/")
        above = ["/".join(parts[:i]) for i in range(1, len(parts))]
        through = next((p for p in above if p in links), None)
        if through is not None:
            raise _unsafe(archive, name, f"would be written through the symbolic link {through!r} of the archive")
        if rel in links:
            raise _unsafe(archive, name, f"would overwrite the symbolic link {rel!r} of the archive")
        if kind == "symlink" and rel in made:
            raise _unsafe(archive, name, f"is a symbolic link that would replace {rel!r}, written before it")
        if kind == "symlink":
            links[rel] = str(target).replace("\\", "/")
        made.update([*above, rel])
    for name, rel, kind, target, _ in plan:
        if kind not in ("symlink", "hardlink"):
            continue
        path = posixpath.join(posixpath.dirname(str(rel)), str(target)) if kind == "symlink" else str(target)
        try:
            inside = _resolve(links, path) is not None
        except _LinkLoop:
            raise _unsafe(archive, name, f"is part of a symbolic link loop ({target!r})") from None
        if not inside:
            raise _unsafe(archive, name, f"is a link to {target!r}, which leaves the target folder through the "
                          "archive's other links")


def _inside(dest_real: str, path: str | os.PathLike) -> bool:
    real = os.path.realpath(path)
    return real == dest_real or real.startswith(dest_real + os.sep)


def _check_tree(archive: Path, root: Path) -> None:
    """The extracted tree as it is on disk: every symbolic link resolves inside ``root``."""
    root_real = os.path.realpath(root)
    for folder, dirs, files in os.walk(root):
        for entry in (*dirs, *files):
            path = os.path.join(folder, entry)
            if os.path.islink(path) and not _inside(root_real, path):
                raise _unsafe(archive, os.path.relpath(path, root), "resolves outside the target folder")


def _prepare(archive: Path, name: str, dest: Path, dest_real: str, rel: str) -> Path:
    """Create the parent folder of a member and check nothing on the way is a link outward."""
    out = dest / rel
    out.parent.mkdir(parents=True, exist_ok=True)
    if not _inside(dest_real, out.parent):
        raise _unsafe(archive, name, "would be written through a link outside the target folder")
    if out.is_symlink():
        raise _unsafe(archive, name, "would overwrite a symbolic link")
    return out


# One checked plan entry: (member name, relative path or None for the root, kind, link target, opener)
_Entry = tuple[str, "str | None", str, "str | None", "Callable[[], IO[bytes] | None] | None"]


def _extract_zip(archive: Path, dest: Path) -> list[Path]:
    with zipfile.ZipFile(archive) as zf:
        plan: list[_Entry] = []
        for info in zf.infolist():
            rel = _clean_name(archive, info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                link = zf.read(info).decode("utf-8", "replace")
                _check_link(archive, info.filename, rel or "", link, hard=False)
                plan.append((info.filename, rel, "symlink", link, None))
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                raise _unsafe(archive, info.filename, "is a device file, FIFO or socket")
            else:
                plan.append((info.filename, rel, "dir" if info.is_dir() else "file", None, partial(zf.open, info)))
        return _write(archive, dest, plan)


def _extract_tar(archive: Path, dest: Path) -> list[Path]:
    try:
        with tarfile.open(archive) as tf:
            plan: list[_Entry] = []
            for info in tf.getmembers():
                rel = _clean_name(archive, info.name)
                if info.issym():
                    _check_link(archive, info.name, rel or "", info.linkname, hard=False)
                    plan.append((info.name, rel, "symlink", info.linkname, None))
                elif info.islnk():
                    plan.append((info.name, rel, "hardlink",
                                 _check_link(archive, info.name, rel or "", info.linkname, hard=True), None))
                elif info.ischr() or info.isblk() or info.isfifo() or not (info.isfile() or info.isdir()):
                    raise _unsafe(archive, info.name, "is a device file, FIFO or other special member")
                else:
                    plan.append((info.name, rel, "dir" if info.isdir() else "file", None, partial(tf.extractfile, info)))
            return _write(archive, dest, plan)
    except (tarfile.TarError, EOFError, zlib.error) as exc:  # corrupt or truncated
        raise RsrBenchError(f"cannot read tar archive {archive}: {exc}") from None


def _write(archive: Path, dest: Path, plan: list[_Entry]) -> list[Path]:
    """Write a fully checked plan (nothing is written before every member passed its checks)."""
    _check_plan(archive, plan)
    dest.mkdir(parents=True, exist_ok=True)
    dest_real = os.path.realpath(dest)
    written: list[Path] = []
    for name, rel, kind, target, opener in plan:
        if rel is None:
            continue
        try:
            written.append(_write_member(archive, (name, rel, kind, target, opener), dest, dest_real))
        except OSError as exc:  # a folder where a file goes, a full disk, ...
            raise RsrBenchError(f"cannot extract {archive}: member {name!r}: {exc.strerror or exc}") from None
    return written


def _write_member(archive: Path, entry: _Entry, dest: Path, dest_real: str) -> Path:
    name, rel, kind, target, opener = entry
    out = _prepare(archive, name, dest, dest_real, str(rel))
    if kind == "symlink":
        _make_symlink(archive, name, out, str(target), dest_real)
    elif kind == "hardlink":
        src = dest / str(target)
        if not src.is_file() or not _inside(dest_real, src):
            raise _unsafe(archive, name, f"is a hard link to {target!r}, which is not a regular file "
                          "extracted before it")
        shutil.copyfile(src, out)  # a copy, never a link to something outside
    elif kind == "dir":
        out.mkdir(exist_ok=True)
    else:
        with opener() as fh, open(out, "wb") as dst:  # type: ignore[misc]
            shutil.copyfileobj(fh, dst, CHUNK)
    return out


def _make_symlink(archive: Path, name: str, out: Path, target: str, dest_real: str) -> None:
    # Check the real resolution too: a link inside the archive may already redirect the parent.
    if not _inside(dest_real, os.path.join(os.path.realpath(out.parent), target)):
        raise _unsafe(archive, name, f"is a symbolic link pointing outside the target folder ({target!r})")
    if out.exists() or out.is_symlink():
        out.unlink()
    os.symlink(target, out)
