"""Hostile dataset folders and datasets files (issue 13: item 2, item 9's names, symlinks).

Item 2: ``dup.png`` and ``dup.jpg`` in one folder shared the image id ``dup``; one result
overwrote the other without a word. Duplicate ids are now an error naming both files when the
folder is listed, before anything runs (also through ``lr_suffix``, in the HR folder, and for
ids that differ only in case, which collide in the store on a case-insensitive file system).
Item 9: a dataset named ``a/b`` or ``..`` ended in a traceback from the store; names are checked
where the datasets file is read. Also: symbolic-link loops and dangling links in an image folder
were skipped without a word; the listing now says which and why.

Planted bugs this module catches (each tried on the fixed code, one at a time): checking
duplicates only in the LR folder; comparing ids case-sensitively; comparing file stems instead
of ids (lr_suffix); accepting ``..`` as a name; warning only for dangling links (not loops).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from rsr_bench.cli import cli
from rsr_bench.datasets import DatasetListingWarning, parse_datasets_file
from rsr_bench.errors import ConfigError
from rsr_bench.runner import RunOptions, run


def save(path: Path, size: int = 8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (np.random.default_rng(len(path.name)).random((size, size, 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(path)
    return path


def sets_file(tmp_path: Path, body: str) -> Path:
    f = tmp_path / "sets.yaml"
    f.write_text("datasets:\n" + body.replace("{root}", str(tmp_path)))
    return f


def dataset(tmp_path: Path, body: str, name: str = "Set"):
    return parse_datasets_file(sets_file(tmp_path, body), tmp_path / "data")[name]


@pytest.mark.parametrize("files, suffix, a, b", [
    (["LR/dup.png", "LR/dup.jpg"], "", "dup.jpg", "dup.png"),
    (["LR/0801x4.png", "LR/0801.png"], "x4", "0801.png", "0801x4.png"),
    (["LR/Cat.png", "LR/cat.png"], "", "Cat.png", "cat.png"),
    (["LR/a.png", "HR/a.png", "HR/a.bmp"], "", "a.bmp", "a.png"),
])
def test_duplicate_image_ids_name_both_files(tmp_path, files, suffix, a, b):
    for f in files:
        save(tmp_path / f, 32 if f.startswith("HR") else 8)
    hr = "    hr: {root}/HR\n" if any(f.startswith("HR") for f in files) else ""
    spec = dataset(tmp_path, f"  Set:\n    lr: {{root}}/LR\n{hr}    lr_suffix: '{suffix}'\n")
    with pytest.raises(ConfigError) as err:
        spec.samples()
    msg = str(err.value)
    assert "Set" in msg and a in msg and b in msg and "rename" in msg


def test_duplicate_ids_stop_that_dataset_before_anything_runs(tmp_path):
    save(tmp_path / "Dup/dup.png")
    save(tmp_path / "Dup/dup.jpg")
    save(tmp_path / "Ok/a.png")
    sets = sets_file(tmp_path, "  Dup: {lr: '{root}/Dup'}\n  Ok: {lr: '{root}/Ok'}\n")
    summary = run(RunOptions(methods="bicubic", datasets="Dup,Ok", metrics="niqe", datasets_files=[sets],
                             progress=False), log=lambda m: None)
    assert "dup.jpg" in summary.skipped[("bicubic.x4", "Dup")] and "dup.png" in summary.skipped[("bicubic.x4", "Dup")]
    assert [(c.dataset, c.computed) for c in summary.cells] == [("Ok", 1)]
    assert not (summary.store / "cells" / "bicubic.x4" / "Dup" / "records").exists()


@pytest.mark.parametrize("name", ["a/b", "..", ".", "a\\\\b", "", "a,b", "x*"])
def test_unsafe_dataset_names_are_refused_where_the_file_is_read(tmp_path, name):
    f = sets_file(tmp_path, f"  '{name}': {{lr: '{{root}}/LR'}}\n")
    with pytest.raises(ConfigError) as err:
        parse_datasets_file(f, tmp_path / "data")
    assert str(f) in str(err.value) and "name" in str(err.value)


def test_unsafe_dataset_name_is_a_message_not_a_traceback(tmp_path):
    save(tmp_path / "LR/a.png")
    f = sets_file(tmp_path, "  '..': {lr: '{root}/LR'}\n  'a/b': {lr: '{root}/LR'}\n")
    res = CliRunner().invoke(cli, ["run", "--methods", "bicubic", "--datasets", "all", "--datasets-file", str(f),
                                   "--metrics", "niqe", "--store", str(tmp_path / "store")])
    assert res.exit_code == 2 and "Traceback" not in res.output and str(f) in res.output
    assert not (tmp_path / "cells").exists() and not (tmp_path / "store" / "cells").exists()


def test_symlink_loops_and_dangling_links_are_skipped_with_a_message(tmp_path):
    lr = tmp_path / "LR"
    save(lr / "good.png")
    os.symlink("good.png", lr / "alias.png")  # a working link is an image like any other
    os.symlink("missing.png", lr / "gone.png")
    os.symlink("loop2.png", lr / "loop1.png")
    os.symlink("loop1.png", lr / "loop2.png")
    spec = dataset(tmp_path, "  Set: {lr: '{root}/LR'}\n")
    with pytest.warns(DatasetListingWarning) as caught:
        samples = spec.samples()
    assert [s.id for s in samples] == ["alias", "good"]
    (msg,) = {str(w.message) for w in caught}
    assert "Set" in msg and str(lr) in msg
    assert "gone.png (dangling symbolic link to missing.png)" in msg
    assert "loop1.png (symbolic link loop)" in msg and "loop2.png (symbolic link loop)" in msg


def test_list_datasets_shows_skipped_entries_and_duplicate_ids(tmp_path):
    """``list datasets`` only checked that the folders exist: a folder with ``dup.png`` and
    ``dup.jpg`` was "ready", and dangling links were skipped without a word until a run."""
    save(tmp_path / "Dup/dup.png")
    save(tmp_path / "Dup/dup.jpg")
    save(tmp_path / "Links/good.png")
    os.symlink("missing.png", tmp_path / "Links/gone.png")
    save(tmp_path / "Fine/a.png")
    sets = sets_file(tmp_path, "  Dup: {lr: '{root}/Dup'}\n  Links: {lr: '{root}/Links'}\n"
                               "  Fine: {lr: '{root}/Fine'}\n  Gone: {lr: '{root}/nowhere'}\n")
    from rsr_bench import list_datasets

    table = list_datasets([sets]).set_index("name")
    assert table.loc["Dup", "status"] == "unusable" and not table.loc["Dup", "available"]
    assert "dup.jpg" in table.loc["Dup", "reason"] and "dup.png" in table.loc["Dup", "reason"]
    assert table.loc["Links", "status"] == "ready" and table.loc["Links", "available"]
    assert "gone.png (dangling symbolic link to missing.png)" in table.loc["Links", "notes"]
    assert table.loc["Fine", "status"] == "ready" and table.loc["Fine", "notes"] == ""
    assert table.loc["Gone", "status"] == "missing" and "LR folder not found" in table.loc["Gone", "reason"]
    out = CliRunner().invoke(cli, ["list", "datasets", "--datasets-file", str(sets)]).output
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.strip()}
    assert "unusable" in lines["Dup"] and "dup.jpg" in lines["Dup"]
    assert "ready" in lines["Links"] and "gone.png" in lines["Links"]
    assert "missing" in lines["Gone"] and "ready" in lines["Fine"]
