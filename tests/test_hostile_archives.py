"""Hostile archives (issue 13, item 3): links that escape only once a later member exists.

The classic zip-slip members (``..``, absolute paths, links straight out, devices) are refused in
tests/test_download.py. These are the ones that passed the member-by-member checks:

* a link whose target goes through a link the archive creates *later* (``x -> y/../escaped``,
  then ``y -> .``): each link alone stays inside, together ``x`` leaves the target folder;
* a directory link followed by members written through it;
* a link that replaces a folder the archive filled earlier (was a raw IsADirectoryError);
* a refusal after some members were written (left the partial tree behind).

"Refused" must mean nothing is left: the archive is extracted into a temporary sibling that is
renamed to the destination only when every member passed.

Planted bugs this module catches (each tried on the fixed code, one at a time):
resolving link targets only lexically (forward reference passes); resolving against links
"so far" only (forward reference passes); skipping the final on-disk link check (the forward
reference passes when the plan check is also off); extracting straight into ``dest`` (partial
tree left after a late refusal); dropping the temporary-sibling cleanup (``.extracting`` left).
"""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from rsr_bench.errors import RsrBenchError
from rsr_bench.fetch.download import UnsafeArchiveError, safe_extract


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def make_tar(path: Path, members: list) -> Path:
    with tarfile.open(path, "w") as tf:
        for m in members:
            if isinstance(m, tuple):
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
            else:
                tf.addfile(m)
    return path


def make_zip(path: Path, members: list[tuple[str, bytes | str]]) -> Path:
    """``(name, bytes)`` is a file, ``(name, "->target")`` a symbolic link."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            if isinstance(data, str):
                info = zipfile.ZipInfo(name)
                info.external_attr = 0o120777 << 16
                zf.writestr(info, data.removeprefix("->"))
            else:
                zf.writestr(name, data)
    return path


def escaping_links(root: Path) -> list[str]:
    """Every symbolic link under ``root`` whose resolution leaves ``root``."""
    real = os.path.realpath(root)
    return [str(p) for p in root.rglob("*") if p.is_symlink()
            and not (os.path.realpath(p) + os.sep).startswith(real + os.sep)]


ATTACKS = {
    "tar: link through a link made later": lambda d: make_tar(d / "a.tar", [link("x", "y/../escaped"), link("y", ".")]),
    "zip: link through a link made later": lambda d: make_zip(d / "a.zip", [("x", "->y/../escaped"), ("y", "->.")]),
    "tar: deep forward reference to /etc/passwd": lambda d: make_tar(
        d / "a.tar", [("ok.png", b"1"), link("x", "y/y/y/y/y/y/y/y/../../../../../../../../etc/passwd"), link("y", ".")]),
    "tar: file written through a directory link": lambda d: make_tar(d / "a.tar", [link("d", "."), ("d/f.png", b"x")]),
    "zip: file written through a directory link": lambda d: make_zip(d / "a.zip", [("d", "->sub"), ("d/f.png", b"x")]),
    "tar: link written through a directory link": lambda d: make_tar(
        d / "a.tar", [("keep.png", b"1"), link("d", "."), link("d/p", "../etc/passwd")]),
    "tar: link replacing a filled folder": lambda d: make_tar(d / "a.tar", [("a/c.png", b"1"), link("a", ".")]),
    "tar: link loop": lambda d: make_tar(d / "a.tar", [link("p", "q/x"), link("q", "p/x")]),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_late_link_attacks_are_refused_and_leave_nothing(tmp_path, attack):
    archive = ATTACKS[attack](tmp_path)
    parent = tmp_path / "out"
    parent.mkdir()
    with pytest.raises(UnsafeArchiveError) as err:
        safe_extract(archive, parent / "dest")
    assert archive.name in str(err.value)
    assert list(parent.iterdir()) == []  # no dest, no temporary sibling, no partial tree
    assert escaping_links(tmp_path) == []


def test_links_inside_the_archive_still_work(tmp_path):
    archive = make_tar(tmp_path / "ok.tar", [("top/a.png", b"A"), link("top/b.png", "a.png"),
                                             link("alias", "top"), link("top/up", "../top/a.png")])
    out = safe_extract(archive, tmp_path / "dest")
    assert (tmp_path / "dest/alias/a.png").read_bytes() == b"A"
    assert (tmp_path / "dest/top/up").read_bytes() == b"A"
    assert escaping_links(tmp_path / "dest") == [] and tmp_path / "dest/top/a.png" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest", "ok.tar"]


def test_existing_destination_is_never_merged_into(tmp_path):
    archive = make_zip(tmp_path / "ok.zip", [("a.png", b"A")])
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "mine.txt").write_text("user data")
    with pytest.raises(RsrBenchError, match=r"dest.*not empty"):
        safe_extract(archive, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["mine.txt"]
    (dest / "mine.txt").unlink()
    safe_extract(archive, dest)  # an empty folder is fine
    assert (dest / "a.png").read_bytes() == b"A"
