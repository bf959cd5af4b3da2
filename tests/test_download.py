"""download_file (resume, verification, errors) and safe_extract, against a 127.0.0.1 server."""

from __future__ import annotations

import hashlib
import io
import os
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from local_http import LocalServer

from rsr_bench.fetch.download import DownloadError, UnsafeArchiveError, download_file, safe_extract
from rsr_bench.errors import RsrBenchError

PAYLOAD = bytes(range(256)) * 1000  # 256 kB, several read chunks


@pytest.fixture
def server():
    srv = LocalServer(files={"data.bin": PAYLOAD}).start()
    yield srv
    srv.stop()


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


# ------------------------------------------------------------------------------------ download


def test_download_verifies_and_renames(server, tmp_path):
    dest = tmp_path / "sub" / "data.bin"
    out = download_file(server.url("data.bin"), dest, sha256=sha(PAYLOAD), size=len(PAYLOAD), progress=False)
    assert out == dest and dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "sub" / "data.bin.part").exists()
    # a verified file on disk is reused without touching the network
    n = len(server.log)
    download_file(server.url("data.bin"), dest, sha256=sha(PAYLOAD), progress=False)
    assert len(server.log) == n


def test_resume_after_interrupted_download(server, tmp_path):
    dest = tmp_path / "data.bin"
    server.cut_after["data.bin"] = 70_000
    with pytest.raises(DownloadError, match="re-run to resume") as err:
        download_file(server.url("data.bin"), dest, sha256=sha(PAYLOAD), progress=False)
    assert server.url("data.bin") in str(err.value)
    part = tmp_path / "data.bin.part"
    assert part.stat().st_size == 70_000 and not dest.exists()

    download_file(server.url("data.bin"), dest, sha256=sha(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD and not part.exists()
    assert server.requests_for("data.bin") == [None, "bytes=70000-"]


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(b"garbage-prefix")
    server.ignore_range = True
    download_file(server.url("data.bin"), dest, sha256=sha(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_complete_part_file_is_finished_without_refetch(server, tmp_path):
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD)  # killed between last write and rename
    download_file(server.url("data.bin"), dest, size=len(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD and server.log == []
    # size unknown: the server's 416 tells us the part is complete
    dest.unlink()
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD)
    download_file(server.url("data.bin"), dest, sha256=sha(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_deletes_and_names_url(server, tmp_path):
    dest = tmp_path / "data.bin"
    with pytest.raises(DownloadError) as err:
        download_file(server.url("data.bin"), dest, sha256="0" * 64, progress=False)
    msg = str(err.value)
    assert "checksum mismatch" in msg and server.url("data.bin") in msg and sha(PAYLOAD) in msg
    assert not dest.exists() and not (tmp_path / "data.bin.part").exists()


def test_declared_size_mismatch(server, tmp_path):
    with pytest.raises(DownloadError, match=r"expected 12345"):
        download_file(server.url("data.bin"), tmp_path / "x", size=12345, progress=False)


def test_stale_dest_is_replaced(server, tmp_path):
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"old version")
    download_file(server.url("data.bin"), dest, sha256=sha(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_http_errors_and_bad_scheme(server, tmp_path):
    with pytest.raises(DownloadError, match=r"HTTP 404") as err:
        download_file(server.url("missing.zip"), tmp_path / "m.zip", progress=False)
    assert server.url("missing.zip") in str(err.value)
    with pytest.raises(DownloadError, match="only http"):
        download_file("ftp://127.0.0.1/x", tmp_path / "x", progress=False)
    srv = LocalServer().start()
    url = srv.url("gone")
    srv.stop()  # nothing listens there any more
    with pytest.raises(DownloadError, match="cannot download"):
        download_file(url, tmp_path / "gone", progress=False, timeout=5)
    assert isinstance(DownloadError("x"), RsrBenchError)


# ------------------------------------------------------------------------------------ extraction


def make_zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] = {}) -> Path:  # noqa: B006
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in symlinks.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, target)
    return path


def make_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for m in members:
            if isinstance(m, tuple):
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
            else:
                tf.addfile(m)
    return path


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def test_safe_extract_zip_and_tar(tmp_path):
    z = make_zip(tmp_path / "ok.zip", {"top/a.png": b"A", "top/sub/b.png": b"B", "top/empty/": b""})
    out = safe_extract(z, tmp_path / "z")
    assert (tmp_path / "z/top/a.png").read_bytes() == b"A"
    assert (tmp_path / "z/top/sub/b.png").read_bytes() == b"B"
    assert (tmp_path / "z/top/empty").is_dir()
    assert set(out) >= {tmp_path / "z/top/a.png", tmp_path / "z/top/sub/b.png"}

    t = make_tar(tmp_path / "ok.tar.gz", [("d/x.txt", b"X"), link("d/y.txt", "x.txt"),
                                          link("d/z.txt", "d/x.txt", tarfile.LNKTYPE)])
    safe_extract(t, tmp_path / "t")
    assert (tmp_path / "t/d/y.txt").read_bytes() == b"X" and (tmp_path / "t/d/y.txt").is_symlink()
    assert (tmp_path / "t/d/z.txt").read_bytes() == b"X" and not (tmp_path / "t/d/z.txt").is_symlink()


@pytest.mark.parametrize(
    "members, needle",
    [
        ({"good.png": b"1", "../evil.txt": b"x"}, "'..'"),
        ({"good.png": b"1", "a/../../evil.txt": b"x"}, "'..'"),
        ({"good.png": b"1", "/tmp/rsr-bench-evil.txt": b"x"}, "absolute"),
        ({"good.png": b"1", "..\\evil.txt": b"x"}, "'..'"),
        ({"good.png": b"1", "C:/evil.txt": b"x"}, "absolute"),
    ],
)
def test_malicious_zip_is_refused_before_writing(tmp_path, members, needle):
    z = make_zip(tmp_path / "evil.zip", members)
    dest = tmp_path / "out" / "inner"
    with pytest.raises(UnsafeArchiveError, match=needle) as err:
        safe_extract(z, dest)
    assert "evil.zip" in str(err.value) and "evil.txt" in str(err.value)
    assert not dest.exists()  # nothing at all was written
    assert not (tmp_path / "out" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_zip_symlink_escaping_is_refused(tmp_path):
    z = make_zip(tmp_path / "evil.zip", {"a.png": b"1"}, symlinks={"esc": "../../etc"})
    with pytest.raises(UnsafeArchiveError, match="outside"):
        safe_extract(z, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "members, needle",
    [
        ([("ok.txt", b"1"), link("esc", "../outside")], "outside"),
        ([("ok.txt", b"1"), link("esc", "/etc/passwd")], "absolute"),
        ([("ok.txt", b"1"), link("hard", "../outside", tarfile.LNKTYPE)], "outside"),
        ([("ok.txt", b"1"), link("hard", "/etc/passwd", tarfile.LNKTYPE)], "absolute"),
        ([("ok.txt", b"1"), link("dev", "", tarfile.CHRTYPE)], "device"),
        ([("ok.txt", b"1"), link("fifo", "", tarfile.FIFOTYPE)], "device"),
        ([("ok.txt", b"1"), ("../../escape.txt", b"x")], "'..'"),
    ],
)
def test_malicious_tar_is_refused_before_writing(tmp_path, members, needle):
    t = make_tar(tmp_path / "evil.tar.gz", members)
    with pytest.raises(UnsafeArchiveError, match=needle) as err:
        safe_extract(t, tmp_path / "out")
    assert "evil.tar.gz" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_symlink_chain_cannot_escape(tmp_path):
    # "l" -> "." is harmless alone, but "l/s" -> ".." then resolves to the parent of dest.
    t = make_tar(tmp_path / "chain.tar", [link("l", "."), link("l/s", "..")])
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match="through the symbolic link 'l'"):
        safe_extract(t, dest)
    assert not dest.exists()


def test_not_an_archive(tmp_path):
    bad = tmp_path / "trunc.zip"
    bad.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(RsrBenchError, match="neither a zip nor a tar"):
        safe_extract(bad, tmp_path / "o")
    t = make_tar(tmp_path / "t.tar.gz", [("big.bin", os.urandom(200_000))])
    t.write_bytes(t.read_bytes()[:50_000])  # truncated download
    with pytest.raises(RsrBenchError, match=r"t\.tar\.gz"):
        safe_extract(t, tmp_path / "o2")
