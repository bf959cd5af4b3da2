"""Derived (corrupted / attacked) datasets as ordinary datasets: registry, cache, determinism, runner.

Planted bugs this module catches (each tried by hand, one at a time):
- the derived set's HR pointing at its own (corrupted) folder instead of the clean HR;
- a seed from Python's ``hash()`` or the clock (bytes differ between two caches);
- the manifest's sha256 taken before the PNG is encoded (does not match the file);
- ``--limit`` ignored by generation (all images corrupted) or applied twice;
- an image too small for a level crashing the set instead of being recorded and left out;
- a cache reused after the base set changed on disk (listing not in the cache key);
- a cache reused after an image's content changed at the same size (source sha256 not checked),
  or the stale LR file left in the folder for the runner to evaluate;
- white-box names resolving through the registry (their inputs depend on the method).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rsr_bench.datasets import load_datasets, select_datasets
from rsr_bench.datasets.demo import ensure_demo_dataset
from rsr_bench.errors import ConfigError, UnknownNameError
from rsr_bench.robust.derived import GenerationContext, generation_context, generation_errors, read_manifest


@pytest.fixture()
def paired(tmp_path: Path, monkeypatch) -> Path:
    """A user paired set of two demo photographs (64x64 LR, 256x256 HR) plus a datasets file, with
    a private cache: the folder key (set name, file names and sizes) is the same in every pytest
    tmp dir, so the shared CI cache would otherwise hold the images an earlier run generated."""
    monkeypatch.setenv("RSR_BENCH_CACHE", str(tmp_path / "cache"))
    lr_src, hr_src = ensure_demo_dataset("demo_clean")
    for sub in ("LR", "HR"):
        (tmp_path / "mine" / sub).mkdir(parents=True)
    for name in ("astronaut", "coffee"):
        shutil.copy(lr_src / f"{name}.png", tmp_path / "mine" / "LR" / f"{name}.png")
        shutil.copy(hr_src / f"{name}.png", tmp_path / "mine" / "HR" / f"{name}.png")
    f = tmp_path / "sets.yaml"
    f.write_text(f"root: {tmp_path}\ndatasets:\n  mine: {{lr: mine/LR, hr: mine/HR, scale: 4}}\n"
                 "  nogt: {lr: mine/LR, scale: 4}\n")
    return f


def _resolve(name: str, files: Path):
    return select_datasets([name], load_datasets([files]))[0].resolved()


NAMES = ["mine~jpeg@3", "mine~sensor_noise@2", "mine~motion_blur@4", "mine~pipeline2@5", "mine~wrong_kernel@1"]


def test_same_bytes_in_two_caches_and_sha256_recorded(paired, tmp_path, monkeypatch):
    got = {}
    for cache in ("a", "b"):
        monkeypatch.setenv("RSR_BENCH_CACHE", str(tmp_path / cache))
        for name in NAMES:
            spec = _resolve(name, paired)
            files = {p.name: p.read_bytes() for p in sorted(spec.lr_dir.iterdir())}
            assert sorted(files) == ["astronaut.png", "coffee.png"]
            manifest = read_manifest(spec.lr_dir.parent)
            for p, data in files.items():
                assert manifest["files"][p[:-4]] == hashlib.sha256(data).hexdigest()
            got.setdefault(name, []).append(files)
    for name, (a, b) in got.items():
        assert a == b, name
    # the corruptions really differ from each other and from the clean LR
    clean = (paired.parent / "mine" / "LR" / "coffee.png").read_bytes()
    assert len({got[n][0]["coffee.png"] for n in NAMES} | {clean}) == len(NAMES) + 1


def test_spec_is_an_ordinary_paired_set_over_the_clean_hr(paired):
    spec = _resolve("mine~jpeg@3", paired)
    assert spec.name == "mine~jpeg@3" and spec.has_gt and spec.scale == 4
    assert spec.hr_dir == paired.parent / "mine" / "HR"
    assert spec.version.endswith("+jpeg@3/robust-r1") and "JPEG" in spec.description
    samples = spec.samples()
    assert [s.hr_path for s in samples] == [paired.parent / "mine" / "HR" / f"{n}.png" for n in ("astronaut", "coffee")]
    assert spec.missing_reason() is None


def test_limit_generates_only_the_first_images_then_the_rest(paired):
    with generation_context(GenerationContext(limit=1)):
        spec = _resolve("mine~gaussian_noise@2", paired)
    assert [p.name for p in spec.lr_dir.iterdir()] == ["astronaut.png"]
    spec = _resolve("mine~gaussian_noise@2", paired)
    assert sorted(p.name for p in spec.lr_dir.iterdir()) == ["astronaut.png", "coffee.png"]


def test_image_too_small_is_recorded_and_left_out(paired):
    root = paired.parent / "mine"
    Image.fromarray(np.full((16, 16, 3), 120, np.uint8)).save(root / "HR" / "tiny.png")
    Image.fromarray(np.full((4, 4, 3), 120, np.uint8)).save(root / "LR" / "tiny.png")
    spec = _resolve("mine~gaussian_blur@5", paired)
    assert sorted(p.stem for p in spec.lr_dir.iterdir()) == ["astronaut", "coffee"]
    errors = generation_errors(spec)
    assert list(errors) == ["tiny"] and "16x16" in errors["tiny"] and "too small" in errors["tiny"]
    assert "tiny.png" in errors["tiny"]  # names the file


def test_a_changed_base_set_gets_a_new_cache(paired):
    first = _resolve("mine~jpeg@1", paired).lr_dir
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(paired.parent / "mine" / "LR" / "zz.png")
    Image.fromarray(np.full((256, 256, 3), 90, np.uint8)).save(paired.parent / "mine" / "HR" / "zz.png")
    second = _resolve("mine~jpeg@1", paired).lr_dir
    assert first != second and (second / "zz.png").is_file()


def test_same_size_content_change_is_made_again(paired):
    lr = paired.parent / "mine" / "LR" / "coffee.png"
    img = np.array(Image.open(lr))
    Image.fromarray(img).save(lr, compress_level=0)  # stored, not deflated: size set by the shape
    size = lr.stat().st_size
    first = _resolve("mine~jpeg@2", paired).lr_dir
    before = (first / "coffee.png").read_bytes()
    Image.fromarray(255 - img).save(lr, compress_level=0)
    assert lr.stat().st_size == size
    second = _resolve("mine~jpeg@2", paired).lr_dir
    assert second == first  # same key: only the source hash tells the difference
    assert (second / "coffee.png").read_bytes() != before
    assert read_manifest(second.parent)["files"]["coffee"] == hashlib.sha256((second / "coffee.png").read_bytes()).hexdigest()


def test_stale_image_is_removed_when_its_new_source_fails(paired):
    spec = _resolve("mine~gaussian_blur@5", paired)
    assert (spec.lr_dir / "coffee.png").is_file()
    lr = paired.parent / "mine" / "LR" / "coffee.png"
    lr.write_bytes(b"\0" * lr.stat().st_size)  # same size (same folder key), no longer an image
    again = _resolve("mine~gaussian_blur@5", paired)
    assert again.lr_dir == spec.lr_dir
    assert sorted(p.name for p in again.lr_dir.iterdir()) == ["astronaut.png"]  # the old coffee is not evaluated
    assert "coffee.png" in generation_errors(again)["coffee"]


@pytest.mark.parametrize("name, words", [
    ("nogt~jpeg@1", "no ground truth"),
    ("mien~jpeg@1", "Did you mean: mine"),
    ("mine~pgd@eps4", "depends on the method attacked"),
    ("mine~jpg@1", "Did you mean: jpeg"),
])
def test_registry_errors_name_the_problem(paired, name, words):
    with pytest.raises((ConfigError, UnknownNameError), match=words):
        select_datasets([name], load_datasets([paired]))


def test_runner_evaluates_a_derived_set_into_an_ordinary_cell(paired, tmp_path):
    import rsr_bench
    from rsr_bench import store

    df = rsr_bench.run(methods="bicubic.x4", datasets="mine,mine~jpeg@5", metrics="psnr", datasets_files=[paired],
                       store=tmp_path / "s", progress=False, log=lambda m: None)
    psnr = df.set_index("dataset")["mean"]
    assert psnr["mine~jpeg@5"] < psnr["mine"] - 1.0  # JPEG q10 costs well over a dB
    rec = store.read_record(tmp_path / "s", "bicubic.x4", "mine~jpeg@5", "coffee")
    assert rec["hr_path"] == str(paired.parent / "mine" / "HR" / "coffee.png")
    assert store.read_manifest(tmp_path / "s", "bicubic.x4", "mine~jpeg@5")["dataset"]["version"].endswith("robust-r1")
