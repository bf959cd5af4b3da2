"""Faults at the store and per image (issue 13, runner/store items 5, 7, 8, 9 and the per-cell lock).

* an image id that cannot be a file name (a backslash) is a per-image error record, the other
  images and the next dataset still run;
* a store write that fails (full disk, read-only) stops the run with a message naming the file
  and the cause, exit 2 and no traceback, and does not record the following images as failed;
* a store on a filesystem whose rename is not atomic is refused before anything runs;
* each record holds its SR PNG's sha256; a missing or altered PNG makes that image recompute;
* a damaged record (not UTF-8, a JSON list, a non-numeric value) is recomputed by ``run`` and
  skipped with a warning by ``load_results``;
* an explicitly named method that cannot run (a refused ``--checkpoint``) exits 2 with the reason;
* a second run waits for an image another process holds the claim of, and a claim left by a
  SIGKILLed process never blocks anyone.

Planted bugs this module catches (each tried, one at a time): ``evaluate`` without the image-id
check (the backslash id crashes ``save``); ``except Exception`` swallowing ``StoreError`` in
``evaluate`` (every image recorded as failed, exit 1); ``stored`` not calling ``sr_intact`` (the
damaged PNG stays); ``record_problem`` accepting a list (``load_results`` raises); ``exit_code``
ignoring ``refused`` (exit 0); ``work`` computing an image without claiming it (the held image is
computed at once, no wait).
"""

from __future__ import annotations

import errno
import hashlib
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from rsr_bench import store
from rsr_bench.cli import cli
from rsr_bench.runner import RunOptions, run

METHOD = "bicubic.x4"


def _toy(root: Path, n: int, name: str = "Toy", extra: str = "", sizes: tuple = ((8, 8),)) -> Path:
    """``n`` random paired images (LR sizes cycling through ``sizes``) and a datasets file."""
    rng = np.random.default_rng(len(name))
    for i in range(n):
        h, w = sizes[i % len(sizes)]
        hr = rng.integers(0, 256, (4 * h, 4 * w, 3), dtype=np.uint8)
        for sub, arr in (("HR", hr), ("LR", hr[::4, ::4])):
            (root / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.ascontiguousarray(arr)).save(root / sub / f"im{i:02d}.png")
    sets = root / "sets.yaml"
    sets.write_text(f"datasets:\n  {name}:\n    lr: {root}/LR\n    hr: {root}/HR\n    scale: 4\n{extra}")
    return sets


def _run(sets: Path, out: Path, datasets: str = "Toy", **kw):
    return run(RunOptions(methods="bicubic", datasets=datasets, metrics="psnr", datasets_files=[sets], store=out,
                          progress=False, **kw), log=lambda m: None)


def test_unsafe_image_id_is_an_error_record_and_the_run_goes_on(tmp_path):
    sets = _toy(tmp_path / "a", 2, extra=f"  Next:\n    lr: {tmp_path}/b/LR\n    hr: {tmp_path}/b/HR\n    scale: 4\n")
    _toy(tmp_path / "b", 1, name="Next")
    bad = tmp_path / "a" / "LR" / "x\\y.png"
    Image.new("RGB", (8, 8)).save(bad, format="PNG")
    Image.new("RGB", (32, 32)).save(tmp_path / "a" / "HR" / "x\\y.png", format="PNG")
    summary = _run(sets, tmp_path / "store", datasets="Toy,Next")
    assert [(f["image"], f["stage"]) for f in summary.failures] == [("x\\y", "image-id")]
    assert "backslash" in summary.failures[0]["message"] or "'\\\\'" in summary.failures[0]["message"]
    df = store.load_results(tmp_path / "store")
    assert sorted(zip(df.dataset, df.image)) == [("Next", "im00"), ("Toy", "im00"), ("Toy", "im01")]
    assert not (tmp_path / "store" / "cells" / METHOD / "Toy" / "sr" / "x\\y.png").exists()
    assert set(store.load_failures(tmp_path / "store").image) == {"x\\y"}


def test_full_disk_stops_the_run_with_a_message(tmp_path, monkeypatch):
    sets = _toy(tmp_path / "a", 4)
    real, calls = store.atomic_write_bytes, []

    def flaky(path, data):  # the disk fills up at the third image's PNG
        calls.append(path)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(store, "atomic_write_bytes", flaky)
    res = CliRunner().invoke(cli, ["run", "--methods", "bicubic", "--datasets", "Toy", "--metrics", "psnr", "--quiet",
                                   "--datasets-file", str(sets), "--store", str(tmp_path / "store")])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and "disk (or quota) is full" in res.output
    assert "im02.png" in res.output and "re-run resumes" in res.output
    assert len(calls) == 3  # stopped at the first failing write, not every following image
    monkeypatch.setattr(store, "atomic_write_bytes", real)
    assert store.load_failures(tmp_path / "store").empty
    again = _run(sets, tmp_path / "store")
    assert (again.cells[0].reused, again.cells[0].computed) == (2, 2)


def test_store_without_atomic_rename_is_refused(tmp_path, monkeypatch):
    assert store.filesystem_type(tmp_path)  # this machine's /proc/self/mountinfo is read
    monkeypatch.setattr(store, "filesystem_type", lambda path: "fuse.s3fs")
    res = CliRunner().invoke(cli, ["run", "--methods", "bicubic", "--datasets", "demo_clean", "--quiet",
                                   "--store", str(tmp_path / "s3")])
    assert res.exit_code == 2 and "fuse.s3fs" in res.output and "atomic" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "s3" / "cells").exists()


def test_sr_png_hash_is_stored_and_a_damaged_png_recomputes(tmp_path):
    sets = _toy(tmp_path / "a", 3)
    out = tmp_path / "store"
    _run(sets, out)
    pngs = {i: store.sr_path(out, METHOD, "Toy", f"im0{i}") for i in range(3)}
    good = {i: p.read_bytes() for i, p in pngs.items()}
    for i, p in pngs.items():
        assert store.read_record(out, METHOD, "Toy", f"im0{i}")["sr_sha256"] == hashlib.sha256(good[i]).hexdigest()
    pngs[0].unlink()
    pngs[1].write_bytes(good[1][:-20])  # truncated
    again = _run(sets, out)
    assert (again.cells[0].reused, again.cells[0].computed) == (1, 2)
    assert all(p.read_bytes() == good[i] for i, p in pngs.items())


def test_damaged_records_are_recomputed_and_skipped_by_readers(tmp_path):
    sets = _toy(tmp_path / "a", 4)
    out = tmp_path / "store"
    _run(sets, out)
    recs = out / "cells" / METHOD / "Toy" / "records"
    (recs / "im00.json").write_bytes(b'{"image": "im00", "metrics": {"psnr": 1\xff}}')
    (recs / "im01.json").write_text("[1, 2]")
    (recs / "im02.json").write_text('{"image": "im02", "metrics": {"psnr": "high"}, "errors": []}')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = store.load_results(out)
    assert list(df.image) == ["im03"]
    damaged = sorted(str(w.message).split(":")[0] for w in caught if issubclass(w.category, store.DamagedRecordWarning))
    assert damaged == [str(recs / f"im0{i}.json") for i in range(3)]
    again = _run(sets, out)
    assert (again.cells[0].reused, again.cells[0].computed) == (1, 3)
    assert len(store.load_results(out)) == 4


def test_refused_checkpoint_of_a_named_method_exits_2(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"this is not a checkpoint")
    args = ["run", "--datasets", "demo_clean", "--limit", "1", "--metrics", "psnr", "--quiet",
            "--store", str(tmp_path / "store")]
    res = CliRunner().invoke(cli, [*args, "--methods", "realesrgan.x4plus", "--checkpoint", str(bad)])
    assert res.exit_code == 2, res.output
    assert "skipping method realesrgan.x4plus" in res.output and str(bad) in res.output
    assert "Traceback" not in res.output


HOLD = """
import sys, time
from rsr_bench import store
lock = store.CellLock(sys.argv[1], "bicubic.x4", "Toy")
assert lock.claim(["im00"])
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _holder(out: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(HOLD), str(out), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_claimed_image_is_waited_for_then_computed(tmp_path):
    sets = _toy(tmp_path / "a", 3)
    out = tmp_path / "store"
    proc = _holder(out, 3)
    t0, lines = time.monotonic(), []
    summary = run(RunOptions(methods="bicubic", datasets="Toy", metrics="psnr", datasets_files=[sets], store=out,
                             progress=False), log=lines.append)
    waited = time.monotonic() - t0
    proc.wait()
    assert any("waiting for another run computing 1 image" in line for line in lines)
    assert waited > 1.5 and summary.cells[0].computed == 3
    assert len(store.load_results(out)) == 3


def test_a_claim_left_by_a_killed_process_blocks_nobody(tmp_path):
    sets = _toy(tmp_path / "a", 2)
    out = tmp_path / "store"
    proc = _holder(out, 600)
    proc.kill()
    proc.wait()
    assert (out / "cells" / METHOD / "Toy" / ".lock").exists()
    t0 = time.monotonic()
    summary = _run(sets, out)
    assert summary.cells[0].computed == 2 and time.monotonic() - t0 < 60
