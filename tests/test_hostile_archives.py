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

import os
import zipfile
from pathlib import Path

import pytest
from test_download import link, make_tar

from rsr_bench.errors import RsrBenchError
from rsr_bench.fetch import download
from rsr_bench.fetch.download import UnsafeArchiveError, safe_extract

# test_download.make_tar writes gzip data whatever the name: extraction goes by content.


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


@pytest.mark.parametrize("attack", [a for a in ATTACKS if "loop" in a or "later" in a or "forward" in a])
def test_whole_archive_link_checks_refuse_before_writing(tmp_path, monkeypatch, attack):
    """The plan check alone refuses these: no member is written (the on-disk check is a second layer)."""
    written = []
    monkeypatch.setattr(download, "_write_member", lambda *a: written.append(a[1][0]))
    with pytest.raises(UnsafeArchiveError):
        safe_extract(ATTACKS[attack](tmp_path), tmp_path / "dest")
    assert written == []


def test_on_disk_check_finds_a_link_leaving_the_tree(tmp_path):
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    os.symlink("../../elsewhere", tmp_path / "tree" / "sub" / "x")
    with pytest.raises(UnsafeArchiveError, match=r"sub/x.*resolves outside"):
        download._check_tree(Path("a.zip"), tmp_path / "tree")
    os.unlink(tmp_path / "tree" / "sub" / "x")
    os.symlink("../sub", tmp_path / "tree" / "sub" / "x")
    download._check_tree(Path("a.zip"), tmp_path / "tree")


def test_extracted_folder_has_ordinary_permissions(tmp_path):
    safe_extract(make_zip(tmp_path / "ok.zip", [("a.png", b"A")]), tmp_path / "dest")
    (tmp_path / "plain").mkdir()
    assert (tmp_path / "dest").stat().st_mode == (tmp_path / "plain").stat().st_mode  # not mkdtemp's 0700


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
