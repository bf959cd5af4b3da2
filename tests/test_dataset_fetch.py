"""`rsr-bench fetch`: dataset archives from a 127.0.0.1 server, layout checks, FACES_rw builder, CLI."""

from __future__ import annotations

import io
import json
import os
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from local_http import LocalServer

from rsr_bench.fetch import faces as faces_wider
from rsr_bench.cli import cli
from rsr_bench.fetch.datasets import (
    MARKER,
    RECORDS_FILE,
    check_layout,
    fetch_dataset,
    parse_fetch,
)
from rsr_bench.datasets import load_datasets, parse_datasets_file
from rsr_bench.fetch.download import DownloadError, UnsafeArchiveError
from rsr_bench.errors import ConfigError, RsrBenchError

quiet = {"progress": False, "say": lambda msg: None}


def png(size=(8, 8), colour=(10, 20, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def jpg(size, seed) -> bytes:
    buf = io.BytesIO()
    im = Image.effect_noise(size, 40 + seed).convert("RGB")
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def tar_bytes(members: dict[str, bytes]) -> bytes:
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def server():
    srv = LocalServer().start()
    yield srv
    srv.stop()


def write_sets(path: Path, server: LocalServer, entries: str) -> Path:
    path.write_text("datasets:\n" + entries.replace("{base}", server.base))
    return path


PAIR = """
  Pair:
    kind: synthetic
    lr: Pair/LR
    hr: Pair/HR
    count: 3
    lr_suffix: x4
    version: "pair-v1"
    fetch:
      archives:
        - {url: "{base}/pair-input.zip", role: lr}
        - {url: "{base}/pair-gt.tar.gz", role: hr}
"""


def serve_pair(server: LocalServer) -> None:
    # LR: a single top folder plus macOS junk; HR: images at the archive root.
    server.files["pair-input.zip"] = zip_bytes(
        {f"Pair-va/{i:04d}x4.png": png() for i in (1, 2, 3)} | {"__MACOSX/._x": b"junk"})
    server.files["pair-gt.tar.gz"] = tar_bytes({f"{i:04d}.png": png((32, 32)) for i in (1, 2, 3)})


def spec_of(sets: Path, data_root: Path, name: str):
    return parse_datasets_file(sets, data_root)[name]


# ------------------------------------------------------------------------------------ archives


def test_fetch_paired_dataset_records_checksums_and_is_idempotent(server, tmp_path):
    serve_pair(server)
    root = tmp_path / "data"
    sets = write_sets(tmp_path / "sets.yaml", server, PAIR)
    spec = spec_of(sets, root, "Pair")
    assert check_layout(spec) == [f"LR folder {spec.lr_dir} does not exist"]

    out = fetch_dataset(spec, root, **quiet)
    assert out == spec.lr_dir
    assert sorted(p.name for p in spec.lr_dir.iterdir() if not p.name.startswith(".")) == [
        "0001x4.png", "0002x4.png", "0003x4.png"]
    assert sorted(p.name for p in spec.hr_dir.iterdir()) == ["0001.png", "0002.png", "0003.png"]
    assert check_layout(spec) == [] and spec_of(sets, root, "Pair").version == "pair-v1"
    assert not (root / ".staging" / "Pair-lr").exists()

    records = json.loads((root / RECORDS_FILE).read_text())
    import hashlib

    for name in ("pair-input.zip", "pair-gt.tar.gz"):
        rec = records[server.url(name)]
        assert rec["sha256"] == hashlib.sha256(server.files[name]).hexdigest()
        assert rec["size"] == len(server.files[name])
    marker = json.loads((spec.lr_dir / MARKER).read_text())
    assert [a["filename"] for a in marker["archives"]] == ["pair-input.zip", "pair-gt.tar.gz"]

    n = len(server.log)
    fetch_dataset(spec, root, **quiet)  # complete: no network at all
    assert len(server.log) == n
    (spec.hr_dir / "0002.png").unlink()
    fetch_dataset(spec, root, force=True, **quiet)  # reinstalled from the kept, verified archives
    assert check_layout(spec) == [] and len(server.log) == n


def test_recorded_checksum_is_enforced_on_a_later_download(server, tmp_path):
    serve_pair(server)
    root = tmp_path / "data"
    spec = spec_of(write_sets(tmp_path / "sets.yaml", server, PAIR), root, "Pair")
    fetch_dataset(spec, root, **quiet)
    # the data and the kept archive are lost, and the server now serves different bytes
    import shutil

    shutil.rmtree(root / "Pair")
    shutil.rmtree(root / ".downloads")
    changed = bytearray(server.files["pair-input.zip"])
    changed[40] ^= 0xFF  # same size, different bytes
    server.files["pair-input.zip"] = bytes(changed)
    with pytest.raises(DownloadError, match="checksum mismatch") as err:
        fetch_dataset(spec, root, **quiet)
    assert server.url("pair-input.zip") in str(err.value)
    assert not (root / ".downloads" / "pair-input.zip").exists()


def test_declared_sha256_mismatch_and_mirror_fallback(server, tmp_path):
    server.files["real.zip"] = zip_bytes({"a.png": png(), "b.png": png()})
    good = __import__("hashlib").sha256(server.files["real.zip"]).hexdigest()
    server.files["bad.zip"] = zip_bytes({"a.png": png(colour=(0, 0, 0)), "b.png": png()})
    root = tmp_path / "data"
    sets = write_sets(tmp_path / "s.yaml", server, f"""
  Two:
    lr: Two/LR
    count: 2
    fetch:
      archives:
        - url: "{{base}}/bad.zip"
          mirrors: ["{{base}}/missing.zip", "{{base}}/real.zip"]
          filename: two.zip
          sha256: {good}
""")
    spec = spec_of(sets, root, "Two")
    fetch_dataset(spec, root, **quiet)
    assert check_layout(spec) == []
    assert server.requests_for("real.zip") == [None]
    assert not (root / RECORDS_FILE).exists()  # declared sha256: nothing to record


def test_select_rule_keeps_first_sorted_and_changes_version(server, tmp_path):
    server.files["many.zip"] = zip_bytes({f"top/inner/{n}.png": png() for n in "edcba"})
    root = tmp_path / "data"
    sets = write_sets(tmp_path / "s.yaml", server, """
  Many:
    kind: real
    lr: Many/LR
    count: 3
    version: v1
    fetch:
      archives:
        - {url: "{base}/many.zip", role: lr, select: {count: 3, rule: first-sorted}}
""")
    spec = spec_of(sets, root, "Many")
    fetch_dataset(spec, root, **quiet)
    assert sorted(p.name for p in spec.lr_dir.glob("*.png")) == ["a.png", "b.png", "c.png"]
    marker = json.loads((spec.lr_dir / MARKER).read_text())
    assert marker["selection"]["from"] == 5 and marker["selection"]["files"] == ["a.png", "b.png", "c.png"]
    version = spec_of(sets, root, "Many").version  # the spec carries the version the fetch recorded
    assert version.startswith("v1+sel-") and spec.version == spec.declared_version == "v1"
    fetch_dataset(spec_of(sets, root, "Many"), root, force=True, **quiet)  # a re-fetch does not stack digests
    assert spec_of(sets, root, "Many").version == version


def test_layout_problems_are_named(server, tmp_path):
    server.files["lr.zip"] = zip_bytes({"x/0001.png": png(), "x/0002.png": png()})
    server.files["hr.zip"] = zip_bytes({"y/0001.png": png(), "y/0099.png": png()})
    root = tmp_path / "data"
    sets = write_sets(tmp_path / "s.yaml", server, """
  Bad:
    lr: Bad/LR
    hr: Bad/HR
    count: 3
    fetch:
      archives:
        - {url: "{base}/lr.zip", role: lr}
        - {url: "{base}/hr.zip", role: hr}
""")
    spec = spec_of(sets, root, "Bad")
    with pytest.raises(RsrBenchError) as err:
        fetch_dataset(spec, root, **quiet)
    msg = str(err.value)
    assert "has 2 images, expected 3" in msg
    assert "1 LR images have no HR image of the same name" in msg and "0002" in msg


def test_archive_without_images_and_wrong_subdir(server, tmp_path):
    server.files["docs.zip"] = zip_bytes({"a/readme.txt": b"hi", "b/notes.txt": b"x"})
    root = tmp_path / "data"
    sets = write_sets(tmp_path / "s.yaml", server, """
  Empty:
    lr: Empty/LR
    fetch: {archives: [{url: "{base}/docs.zip"}]}
  Sub:
    lr: Sub/LR
    fetch: {archives: [{url: "{base}/docs.zip", subdir: nope}]}
""")
    with pytest.raises(RsrBenchError, match=r"no images found.*a/, b/"):
        fetch_dataset(spec_of(sets, root, "Empty"), root, **quiet)
    with pytest.raises(RsrBenchError, match=r"has no folder 'nope'"):
        fetch_dataset(spec_of(sets, root, "Sub"), root, **quiet)


def test_malicious_dataset_archive_is_refused(server, tmp_path):
    server.files["evil.zip"] = zip_bytes({"ok/1.png": png(), "../../escaped.png": png()})
    root = tmp_path / "data"
    sets = write_sets(tmp_path / "s.yaml", server, """
  Evil:
    lr: Evil/LR
    fetch: {archives: [{url: "{base}/evil.zip"}]}
""")
    with pytest.raises(UnsafeArchiveError, match=r"evil\.zip.*\.\./\.\./escaped\.png"):
        fetch_dataset(spec_of(sets, root, "Evil"), root, **quiet)
    assert not list(tmp_path.rglob("escaped.png"))
    assert not (root / "Evil" / "LR").exists()


def test_fetch_schema_errors():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['urls'\]"):
        parse_fetch("X", {"archives": [{"url": "https://a/b.zip", "urls": []}]})
    with pytest.raises(ConfigError, match="role must be one of"):
        parse_fetch("X", {"archives": [{"url": "https://a/b.zip", "role": "gt"}]})
    with pytest.raises(ConfigError, match="needs 'extract_to'"):
        parse_fetch("X", {"archives": [{"url": "https://a/b.zip", "role": "extra"}]})
    with pytest.raises(ConfigError, match="Did you mean: faces_wider"):
        parse_fetch("X", {"derive": "faces_wide"})
    with pytest.raises(ConfigError, match="sha256 must be 64 hex"):
        parse_fetch("X", {"archives": [{"url": "https://a/b.zip", "sha256": "abc"}]})
    with pytest.raises(RsrBenchError, match="has no 'fetch:' entry"):
        parse_fetch("X", None)


def test_official_fetch_blocks_parse(tmp_path):
    specs = load_datasets(data_root=tmp_path)
    for name in ("NTIRE_syn", "AIM_syn", "DPED_rw", "FACES_rw"):
        plan = parse_fetch(name, specs[name].fetch)
        assert all(a.url.startswith("https://") for a in plan.archives)
    assert parse_fetch("FACES_rw", specs["FACES_rw"].fetch).derive == "faces_wider"
    assert {a.role for a in parse_fetch("NTIRE_syn", specs["NTIRE_syn"].fetch).archives} == {"lr", "hr"}


# ------------------------------------------------------------------------------------ FACES_rw

# (file, size, faces); face = x y w h blur expression illumination invalid occlusion pose
WIDER = [
    ("0--Parade/0_a.jpg", (400, 300), ["50 50 100 100 0 0 0 0 0 0", "250 60 80 90 1 1 0 0 0 0"]),
    ("0--Parade/0_b.jpg", (400, 300), ["10 10 30 30 0 0 0 0 0 0", "20 20 280 270 0 0 0 0 0 0"]),  # small, big
    ("1--Handshaking/1_c.jpg", (400, 300), ["100 100 90 90 0 0 0 0 1 0"]),  # occluded
    ("1--Handshaking/1_d.jpg", (200, 200), []),  # no faces: one line of zeros
    ("2--Demo/2_e.jpg", (400, 300), ["100 100 90 90 0 0 0 1 0 0"]),  # invalid
    ("2--Demo/2_f.jpg", (400, 300), ["100 100 90 90 0 0 0 0 0 1"]),  # atypical pose
    ("2--Demo/2_g.jpg", (400, 300), ["100 100 90 90 2 0 0 0 0 0"]),  # heavy blur
    ("3--Riot/3_h.jpg", (400, 300), ["0 0 100 100 0 0 1 0 0 0"]),  # at the corner: crop shifted in
    ("3--Riot/3_i.jpg", (100, 140), ["15 35 70 70 0 0 0 0 0 0"]),  # square wider than the image
    ("3--Riot/3_j.jpg", (400, 300), ["300 200 64 64 1 0 0 0 0 0"]),
    ("4--Dancing/4_k.jpg", (400, 300), ["120 80 256 200 0 0 0 0 0 0"]),
]
ELIGIBLE_FILES = {"0--Parade/0_a.jpg", "3--Riot/3_h.jpg", "3--Riot/3_i.jpg", "3--Riot/3_j.jpg", "4--Dancing/4_k.jpg"}


def wider_annotations() -> str:
    lines = []
    for name, _, faces in WIDER:
        lines += [name, str(len(faces))] + (faces or ["0 0 0 0 0 0 0 0 0 0"])
    return "\n".join(lines) + "\n"


def make_wider(root: Path) -> None:
    split = root / "WIDER_FACE" / "wider_face_split"
    split.mkdir(parents=True)
    (split / "wider_face_val_bbx_gt.txt").write_text(wider_annotations())
    for i, (name, size, _) in enumerate(WIDER):
        p = root / "WIDER_FACE" / "WIDER_val" / "images" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(jpg(size, i))


def test_wider_annotation_parsing_and_rule(tmp_path):
    ann = tmp_path / "gt.txt"
    ann.write_text(wider_annotations())
    faces = faces_wider.parse_annotations(ann)
    assert len(faces) == sum(len(f) for _, _, f in WIDER)  # the zero line is not a face
    rule = faces_wider.rule_from(None, 100)
    assert {f.file for f in faces if faces_wider.eligible(f, rule)} == ELIGIBLE_FILES
    ann.write_text("0--Parade/x.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n")
    with pytest.raises(RsrBenchError, match=r"gt\.txt:4: file ends"):
        faces_wider.parse_annotations(ann)


def test_wider_selection_is_deterministic_one_per_image(tmp_path):
    ann = tmp_path / "gt.txt"
    ann.write_text(wider_annotations())
    faces = faces_wider.parse_annotations(ann)
    rule = faces_wider.rule_from({"seed": 0}, 4)
    a = faces_wider.select_faces(faces, rule)
    assert a == faces_wider.select_faces(list(reversed(faces)), rule)  # order-independent
    assert len({f.file for f in a}) == 4 and {f.file for f in a} <= ELIGIBLE_FILES
    others = [faces_wider.select_faces(faces, {**rule, "seed": s}) for s in range(1, 6)]
    assert any(o != a for o in others)
    assert faces_wider.selection_version(rule, a) != faces_wider.selection_version({**rule, "seed": 1}, a)
    with pytest.raises(RsrBenchError, match="only 5 faces satisfy"):
        faces_wider.select_faces(faces, faces_wider.rule_from(None, 6))


def test_crop_box_geometry():
    F = faces_wider.Face
    assert faces_wider.crop_box(F("a", 50, 50, 100, 100, 0, 0, 0, 0, 0, 0), 400, 300, 0.25) == (25, 25, 175, 175)
    assert faces_wider.crop_box(F("a", 0, 0, 100, 100, 0, 0, 0, 0, 0, 0), 400, 300, 0.25) == (0, 0, 150, 150)
    assert faces_wider.crop_box(F("a", 330, 230, 64, 64, 0, 0, 0, 0, 0, 0), 400, 300, 0.25) == (304, 204, 400, 300)
    # 105 px square in a 100 px wide image: clipped horizontally only
    assert faces_wider.crop_box(F("a", 15, 35, 70, 70, 0, 0, 0, 0, 0, 0), 100, 140, 0.25) == (0, 18, 100, 123)


FACES = """
  FacesT:
    kind: real
    lr: FacesT/LR
    count: 4
    fetch:
      archives:
        - {url: "{base}/wider_face_split.zip", role: extra, extract_to: WIDER_FACE}
        - {url: "{base}/WIDER_val.zip", role: extra, extract_to: WIDER_FACE}
      derive: faces_wider
"""


def serve_wider(server: LocalServer, tmp_path: Path) -> None:
    src = tmp_path / "wider-src"
    make_wider(src)
    base = src / "WIDER_FACE"
    server.files["wider_face_split.zip"] = zip_bytes(
        {"wider_face_split/wider_face_val_bbx_gt.txt": (base / "wider_face_split/wider_face_val_bbx_gt.txt").read_bytes()})
    server.files["WIDER_val.zip"] = zip_bytes(
        {p.relative_to(base).as_posix(): p.read_bytes() for p in sorted((base / "WIDER_val").rglob("*.jpg"))})


def test_faces_fetch_builds_crops_manifest_and_version(server, tmp_path):
    serve_wider(server, tmp_path)
    sets = write_sets(tmp_path / "s.yaml", server, FACES)
    versions, pixels = [], []
    for run in ("r1", "r2"):
        root = tmp_path / run
        spec = spec_of(sets, root, "FacesT")
        fetch_dataset(spec, root, **quiet)
        assert check_layout(spec) == []
        manifest = json.loads((root / "FacesT" / "selection.json").read_text())
        assert len(manifest["selection"]) == 4 and manifest["rule"]["seed"] == 0
        crops = sorted(spec.lr_dir.glob("*.png"))
        assert [c.stem for c in crops] == [r["id"] for r in manifest["selection"]]
        for c, r in zip(crops, manifest["selection"]):
            l, t, rgt, b = r["crop"]
            with Image.open(c) as im:
                assert im.size == (rgt - l, b - t) and im.mode == "RGB"
        versions.append(spec_of(sets, root, "FacesT").version)
        pixels.append([c.read_bytes() for c in crops])
    assert versions[0] == versions[1] and versions[0].startswith("wider-val-")
    assert pixels[0] == pixels[1]  # byte-identical rebuild
    n = len(server.log)
    fetch_dataset(spec, tmp_path / "r2", **quiet)  # already built: nothing downloaded
    assert len(server.log) == n


def test_faces_builder_refuses_foreign_folder(tmp_path):
    make_wider(tmp_path)
    out = tmp_path / "FACES_rw" / "LR"
    out.mkdir(parents=True)
    (out / "mine.png").write_bytes(png())
    with pytest.raises(RsrBenchError, match="not built by rsr-bench"):
        faces_wider.build_faces(tmp_path, out, count=4, say=lambda m: None)
    assert (out / "mine.png").exists()


# ------------------------------------------------------------------------------------ CLI


def test_fetch_cli_dataset_unknown_and_listing(server, tmp_path):
    serve_pair(server)
    sets = write_sets(tmp_path / "sets.yaml", server, PAIR)
    root = tmp_path / "data"
    runner = CliRunner()
    args = ["fetch", "--data-root", str(root), "--datasets-file", str(sets), "--no-progress"]
    res = runner.invoke(cli, args + ["Pair"])
    assert res.exit_code == 0, res.output
    assert (root / "Pair" / "HR" / "0002.png").is_file() and "dataset Pair: ok" in res.output

    res = runner.invoke(cli, args + ["Piar"])
    assert res.exit_code == 2 and "Did you mean: Pair" in res.output

    res = runner.invoke(cli, args)
    assert res.exit_code == 0 and "Pair" in res.output and "FACES_rw" in res.output


def test_fetch_cli_failure_is_reported_and_nonzero(server, tmp_path):
    sets = write_sets(tmp_path / "sets.yaml", server, PAIR)  # nothing served: HTTP 404
    res = CliRunner().invoke(cli, ["fetch", "--data-root", str(tmp_path / "d"), "--datasets-file", str(sets),
                                   "--no-progress", "Pair"])
    assert res.exit_code == 2
    assert "HTTP 404" in res.output and server.url("pair-input.zip") in res.output


def test_fetch_cli_methods_and_assets(tmp_path, monkeypatch):
    from plugin_dist import install_plugin

    install_plugin(tmp_path / "site", monkeypatch, name="fakefetch", module="fake_fetch_adapter", source=(
        "from rsr_bench.methods.cards import Adapter\nCALLS = []\n"
        "def load(spec, *, device, options):\n    raise NotImplementedError\n"
        "def fetch(spec):\n    CALLS.append(spec.name)\n    return '/weights/' + spec.tag\n"
        "ADAPTER = Adapter('fakefetch', load, fetch=fetch)\n"))
    (tmp_path / "w.bin").write_bytes(b"weights")
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "fakefam.yaml").write_text(
        "family: fakefam\nadapter: fakefetch\nvariants:\n  one: {}\n  two: {}\n"
        f"  three:\n    weights: {{asset: fake-weights, file: w.bin, sources: [{{url: '{(tmp_path / 'w.bin').as_uri()}'}}]}}\n")
    monkeypatch.setenv("RSR_BENCH_METHODS", str(cards))
    monkeypatch.setenv("RSR_BENCH_CACHE", str(tmp_path / "cache"))

    runner = CliRunner()
    base = ["fetch", "--data-root", str(tmp_path / "d"), "--no-progress"]
    res = runner.invoke(cli, base + ["fakefam.*"])
    assert res.exit_code == 0, res.output
    import fake_fetch_adapter

    assert fake_fetch_adapter.CALLS == ["fakefam.one", "fakefam.two", "fakefam.three"]
    assert "method fakefam.two: ok (/weights/two)" in res.output
    res = runner.invoke(cli, base + ["fake-weights", "bicubic"])  # an asset named in a card; a weight-free method
    assert res.exit_code == 0, res.output
    assert (tmp_path / "cache" / "assets" / "fake-weights" / "w.bin").read_bytes() == b"weights"
    assert "method bicubic.x4: nothing to download" in res.output
    res = runner.invoke(cli, base + ["fake-weight"])
    assert res.exit_code == 2 and "Did you mean: fake-weights" in res.output
    res = runner.invoke(cli, base)
    assert res.exit_code == 0 and "fake-weights" in res.output and "niqe-pris-params" in res.output


def test_fetch_cli_resumes_an_interrupted_archive(server, tmp_path):
    serve_pair(server)
    server.cut_after["pair-input.zip"] = 100
    sets = write_sets(tmp_path / "sets.yaml", server, PAIR)
    args = ["fetch", "--data-root", str(tmp_path / "d"), "--datasets-file", str(sets), "--no-progress", "Pair"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and "re-run to resume" in res.output
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert server.requests_for("pair-input.zip") == [None, "bytes=100-"]
    assert check_layout(spec_of(sets, tmp_path / "d", "Pair")) == []
