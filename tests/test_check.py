"""`rsr-bench check`: baselines, comparisons, exit codes, JUnit, --update round trip.

Everything runs on small synthetic stores written with the store's own writers, so these
tests need no weights, data or metric implementations and take well under a second each.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from rsr_bench import regression as chk
from rsr_bench import store
from rsr_bench.cli import cli

FP = {"m.good": "a" * 64, "m.other": "b" * 64}
VALUES = {  # (method, dataset) -> image -> metric -> value
    ("m.good", "ds1"): {"i1": {"psnr": 25.0, "lpips": 0.30}, "i2": {"psnr": 27.0, "lpips": 0.20}},
    ("m.good", "ds2"): {"i1": {"psnr": 22.0, "lpips": 0.40}, "i2": {"psnr": 23.0, "lpips": 0.50}},
    ("m.other", "ds1"): {"i1": {"psnr": 24.0, "lpips": 0.35}, "i2": {"psnr": 26.0, "lpips": 0.25}},
    ("m.other", "ds2"): {"i1": {"psnr": 21.0, "lpips": 0.45}, "i2": {"psnr": 21.5, "lpips": 0.55}},
}


def make_store(root: Path, values=VALUES, *, device: str = "cpu", precision: str | None = None,
               fingerprints=FP, skipped=None, extra_image: bool = False) -> Path:
    for (m, d), images in values.items():
        manifest = {"method": {"name": m, "fingerprint": fingerprints[m], "provenance": {"source": "test"}},
                    "dataset": {"name": d, "version": "v1"}, "versions": {"torch": "2.0", "rsr_bench": "0.1.0"},
                    "device": device}
        if precision:
            manifest["precision"] = precision
        store.write_manifest(root, m, d, manifest)
        for img, metrics in images.items():
            store.write_record(root, m, d, {"image": img, "metrics": metrics, "errors": [], "not_computable": {}})
        if extra_image:  # a store holding more than the pinned images
            store.write_record(root, m, d, {"image": "i9", "metrics": {k: 0.0 for k in next(iter(images.values()))}})
    if skipped:
        store.update_skipped(root, skipped, set())
    return root


def invoke(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["check", *map(str, args)])
    if res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.output


@pytest.fixture()
def baseline(tmp_path: Path) -> Path:
    src = make_store(tmp_path / "ref")
    path = tmp_path / "baseline.yaml"
    code, out = invoke("--baseline", path, "--update", "--from-store", src, "--methods", "m.good,m.other",
                       "--datasets", "ds1,ds2", "--metrics", "psnr,lpips")
    assert code == 0, out
    return path


def test_update_writes_provenance_and_round_trips(baseline: Path, tmp_path: Path) -> None:
    b = chk.load_baseline(baseline)
    assert {(e.method, e.dataset, e.metric) for e in b.entries} == {
        (m, d, k) for (m, d) in VALUES for k in ("psnr", "lpips")}
    e = next(e for e in b.entries if e.key == ("m.good", "ds1", "psnr"))
    assert e.mean == 26.0 and e.n == 2
    prov = b.provenance
    assert prov["device"] == "cpu" and prov["precision"] == "fp32"
    assert prov["methods"]["m.good"]["fingerprint"] == FP["m.good"]
    assert prov["datasets"]["ds1"]["version"] == "v1"
    assert prov["versions"]["torch"] == "2.0"
    assert b.evaluation["images"] == {"ds1": ["i1", "i2"], "ds2": ["i1", "i2"]}
    assert b.created.endswith("Z")
    # byte-identical when written again; parsed again equal
    again = tmp_path / "again.yaml"
    chk.save_baseline(b, again)
    assert chk.load_baseline(again).to_dict() == b.to_dict()
    assert yaml.safe_load(again.read_text()) == yaml.safe_load(baseline.read_text())
    # --update over an existing file keeps its hand-edited tolerances
    data = yaml.safe_load(baseline.read_text())
    data["tolerances"]["psnr"] = {"abs": 0.5, "rel": 0.0}
    baseline.write_text(yaml.safe_dump(data))
    code, out = invoke("--baseline", baseline, "--update", "--from-store", tmp_path / "ref")
    assert code == 0, out
    assert chk.load_baseline(baseline).tolerances["psnr"] == chk.Tolerance(0.5, 0.0)


def test_matching_baseline_passes(baseline: Path, tmp_path: Path) -> None:
    code, out = invoke("--baseline", baseline, "--from-store", make_store(tmp_path / "new"))
    assert code == 0, out
    assert "nothing moved" in out and "12 comparison(s): 12 held, 0 failed" in out


def test_perturbed_metric_beyond_tolerance_fails_with_diff(baseline: Path, tmp_path: Path) -> None:
    values = {k: {i: dict(m) for i, m in v.items()} for k, v in VALUES.items()}
    values[("m.good", "ds2")]["i1"]["psnr"] -= 0.5  # mean -0.25 dB: worse
    values[("m.other", "ds1")]["i1"]["lpips"] += 1e-5  # within tolerance: reported, not failed
    code, out = invoke("--baseline", baseline, "--from-store", make_store(tmp_path / "new", values))
    assert code == 1, out
    lines = {tuple(line.split()[:3]): line for line in out.splitlines() if line.startswith("m.")}
    bad = lines[("m.good", "ds2", "psnr")]
    assert "22.5" in bad and "22.25" in bad and "-0.25" in bad and "worse" in bad and "FAIL" in bad
    ok = lines[("m.other", "ds1", "lpips")]
    assert "ok" in ok and "within" in ok and "worse" in ok
    assert ("m.good", "ds1", "psnr") not in lines  # unchanged rows are not listed
    assert "1 failed" in out and "REGRESSION" in out


def test_direction_better_and_allow_improvements(baseline: Path, tmp_path: Path) -> None:
    values = {k: {i: dict(m) for i, m in v.items()} for k, v in VALUES.items()}
    values[("m.good", "ds1")]["i1"]["lpips"] -= 0.1  # lower LPIPS is better
    root = make_store(tmp_path / "new", values)
    code, out = invoke("--baseline", baseline, "--from-store", root)
    assert code == 1 and "better" in out
    code, out = invoke("--baseline", baseline, "--from-store", root, "--allow-improvements")
    assert code == 0, out


def test_tolerance_option_overrides(baseline: Path, tmp_path: Path) -> None:
    values = {k: {i: dict(m) for i, m in v.items()} for k, v in VALUES.items()}
    values[("m.good", "ds2")]["i1"]["psnr"] -= 0.5
    root = make_store(tmp_path / "new", values)
    assert invoke("--baseline", baseline, "--from-store", root, "--tolerance", "psnr=0.3")[0] == 0
    assert invoke("--baseline", baseline, "--from-store", root, "--tolerance", "psnr=0,0.02")[0] == 0
    code, out = invoke("--baseline", baseline, "--from-store", root, "--tolerance", "psnr")
    assert code == 2 and "METRIC=ABS" in out


def test_skipped_method_missing_weights_exits_2(baseline: Path, tmp_path: Path) -> None:
    values = {k: v for k, v in VALUES.items() if k[0] != "m.other"}
    root = make_store(tmp_path / "new", values,
                      skipped={("m.other", "ds1"): "weights not found: run `rsr-bench fetch m.other`"})
    code, out = invoke("--baseline", baseline, "--from-store", root)
    assert code == 2, out
    assert "m.other on ds1 was not evaluated: weights not found" in out


def test_missing_dataset_exits_2(baseline: Path, tmp_path: Path) -> None:
    values = {k: v for k, v in VALUES.items() if k[1] != "ds2"}
    code, out = invoke("--baseline", baseline, "--from-store", make_store(tmp_path / "new", values))
    assert code == 2, out
    assert "m.good on ds2: no results in store" in out


def test_dataset_version_change_exits_2(baseline: Path, tmp_path: Path) -> None:
    root = make_store(tmp_path / "new")
    man = store.read_manifest(root, "m.good", "ds1")
    man["dataset"]["version"] = "v2"
    store.write_manifest(root, "m.good", "ds1", man)
    code, out = invoke("--baseline", baseline, "--from-store", root)
    assert code == 2 and "dataset version 'v2'" in out


def test_changed_weights_fail(baseline: Path, tmp_path: Path) -> None:
    root = make_store(tmp_path / "new", fingerprints={**FP, "m.other": "c" * 64})
    code, out = invoke("--baseline", baseline, "--from-store", root)
    assert code == 1 and "weights changed" in out
    assert invoke("--baseline", baseline, "--from-store", root, "--ignore-fingerprints")[0] == 0


def test_image_count_change_fails(baseline: Path, tmp_path: Path) -> None:
    values = {k: {i: dict(m) for i, m in v.items()} for k, v in VALUES.items()}
    del values[("m.good", "ds1")]["i2"]["psnr"]  # e.g. the metric now crashes on one image
    code, out = invoke("--baseline", baseline, "--from-store", make_store(tmp_path / "new", values))
    assert code == 1 and "scored 1 image(s), baseline 2" in out


def test_store_with_more_images_uses_pinned_ones(baseline: Path, tmp_path: Path) -> None:
    code, out = invoke("--baseline", baseline, "--from-store", make_store(tmp_path / "new", extra_image=True))
    assert code == 0, out


def test_device_mismatch_uses_declared_tolerances_or_refuses(baseline: Path, tmp_path: Path) -> None:
    root = make_store(tmp_path / "gpu", device="cuda:0 (NVIDIA H100)")
    code, out = invoke("--baseline", baseline, "--from-store", root)
    assert code == 0 and "other_device tolerances" in out  # --update declares them by default
    data = yaml.safe_load(baseline.read_text())
    data["other_device"] = None
    baseline.write_text(yaml.safe_dump(data))
    code, out = invoke("--baseline", baseline, "--from-store", root)
    assert code == 2 and "was made on cpu, this run used cuda" in out and "refuses" in out
    code, out = invoke("--baseline", baseline, "--from-store", make_store(tmp_path / "half", precision="fp16"))
    assert code == 2 and "made in fp32, this run used fp16" in out


def test_junit_xml_lists_each_comparison(baseline: Path, tmp_path: Path) -> None:
    values = {k: {i: dict(m) for i, m in v.items()} for k, v in VALUES.items()}
    values[("m.good", "ds2")]["i1"]["psnr"] -= 0.5
    xml_path = tmp_path / "out" / "check.xml"
    code, _ = invoke("--baseline", baseline, "--from-store", make_store(tmp_path / "new", values), "--junit", xml_path)
    assert code == 1
    root = ET.parse(xml_path).getroot()
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    names = {(c.get("classname"), c.get("name")) for c in cases}
    assert {(f"{m}/{d}", k) for (m, d) in VALUES for k in ("psnr", "lpips")} <= names
    assert {(f"{m}/{d}", "fingerprint") for (m, d) in VALUES} <= names
    assert len(cases) == 8 + 4 and suite.get("tests") == "12" and suite.get("failures") == "1"
    failed = [c for c in cases if c.find("failure") is not None]
    assert [(c.get("classname"), c.get("name")) for c in failed] == [("m.good/ds2", "psnr")]
    assert "worse" in failed[0].find("failure").get("message")


def test_junit_on_setup_error(baseline: Path, tmp_path: Path) -> None:
    xml_path = tmp_path / "check.xml"
    values = {k: v for k, v in VALUES.items() if k[1] != "ds2"}
    code, _ = invoke("--baseline", baseline, "--from-store", make_store(tmp_path / "new", values), "--junit", xml_path)
    assert code == 2
    suite = ET.parse(xml_path).getroot().find("testsuite")
    assert suite.get("errors") == "2" and "no results" in suite.find("testcase/error").text


def test_bad_baseline_files_exit_2(tmp_path: Path) -> None:
    code, out = invoke("--baseline", tmp_path / "nope.yaml", "--from-store", tmp_path)
    assert code == 2 and "does not exist" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: something-else\n")
    code, out = invoke("--baseline", bad, "--from-store", tmp_path)
    assert code == 2 and "format" in out
    bad.write_text(f"format: {chk.FORMAT}\nentries: []\n")
    code, out = invoke("--baseline", bad, "--from-store", tmp_path)
    assert code == 2 and "no entries" in out
    code, out = invoke("--baseline", tmp_path / "new.yaml", "--update", "--from-store", tmp_path)
    assert code == 2 and "--methods" in out


def test_update_refuses_incomplete_results(tmp_path: Path) -> None:
    root = make_store(tmp_path / "s", {k: v for k, v in VALUES.items() if k[0] == "m.good"},
                      skipped={("m.other", "ds1"): "weights missing"})
    code, out = invoke("--baseline", tmp_path / "b.yaml", "--update", "--from-store", root, "--methods", "m.good,m.other",
                       "--datasets", "ds1", "--metrics", "psnr")
    assert code == 2 and "weights missing" in out and not (tmp_path / "b.yaml").exists()


def test_evaluates_into_temp_store_when_no_store_given(baseline: Path, tmp_path: Path, monkeypatch) -> None:
    from rsr_bench.regression import measure

    calls = []

    def fake_evaluate(selection, root, source):
        calls.append((selection, root))
        make_store(root)

    monkeypatch.setattr(measure, "evaluate", fake_evaluate)
    code, out = invoke("--baseline", baseline)
    assert code == 0, out
    ((selection, root),) = calls
    assert list(selection.methods) == ["m.good", "m.other"] and list(selection.datasets) == ["ds1", "ds2"]
    assert list(selection.metrics) == ["psnr", "lpips"] and selection.limit is None
    assert not Path(root).exists()  # the temporary store is removed
    for option in ("--store", "--out"):  # --out: the old spelling, a hidden alias
        cache = tmp_path / f"cache{option}"
        code, out = invoke("--baseline", baseline, option, cache)
        assert code == 0 and (cache / "cells").is_dir(), out
    code, out = invoke("--baseline", baseline, "--store", tmp_path / "a", "--out", tmp_path / "b")
    assert code == 2 and "disagree" in out


def test_tolerance_rule() -> None:
    t = chk.Tolerance(abs=0.01, rel=0.001)
    assert t.bound(10.0) == pytest.approx(0.02)
    assert chk.parse_tolerance_option(["psnr=0.1,0.2"]) == {"psnr": chk.Tolerance(0.1, 0.2)}
    assert chk.device_kind("cuda:0 (NVIDIA H100)") == "cuda" and chk.device_kind("cpu") == "cpu"


def test_metric_that_cannot_run_here_is_a_setup_error(baseline: Path, tmp_path: Path) -> None:
    values = {k: {i: dict(m) for i, m in v.items()} for k, v in VALUES.items()}
    root = tmp_path / "new"
    for i in values[("m.good", "ds1")].values():
        del i["lpips"]
    make_store(root, values)
    for img in ("i1", "i2"):
        rec = store.read_record(root, "m.good", "ds1", img)
        rec["errors"] = [{"stage": "metric:lpips", "message": "ModuleNotFoundError: No module named 'lpips'"}]
        store.write_record(root, "m.good", "ds1", rec)
    code, out = invoke("--baseline", baseline, "--from-store", root)
    assert code == 2 and "metric:lpips could not run here (2 image(s)): ModuleNotFoundError" in out
    for img in ("i1", "i2"):  # any other crash is a regression
        rec = store.read_record(root, "m.good", "ds1", img)
        rec["errors"] = [{"stage": "metric:lpips", "message": "RuntimeError: shape mismatch"}]
        store.write_record(root, "m.good", "ds1", rec)
    code, out = invoke("--baseline", baseline, "--from-store", root)
    assert code == 1 and "metric missing" in out and "shape mismatch" in out


def test_real_runner_bicubic_kernel_change_fails(tmp_path: Path) -> None:
    """End to end with the real runner: a fresh baseline holds; a = -0.75 in the kernel fails it;
    a dataset that is not on disk is a setup error, not a pass."""
    from rsr_bench import image as resize

    path = tmp_path / "bicubic.yaml"
    code, out = invoke("--baseline", path, "--update", "--methods", "bicubic.x4", "--datasets", "demo_clean",
                       "--metrics", "psnr,ssim", "--limit", "1")
    assert code == 0, out
    assert chk.load_baseline(path).evaluation["images"] == {"demo_clean": ["astronaut"]}
    code, out = invoke("--baseline", path)
    assert code == 0 and "nothing moved" in out, out

    def keys_075(x):
        ax = abs(x)
        return (1.25 * ax**3 - 2.25 * ax**2 + 1) * (ax <= 1) + (-0.75 * ax**3 + 3.75 * ax**2 - 6 * ax + 3) * ((ax > 1) & (ax <= 2))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(resize, "_cubic", keys_075)
        resize.resize_matrix.cache_clear()
        try:
            code, out = invoke("--baseline", path)
        finally:
            mp.undo()
            resize.resize_matrix.cache_clear()
    assert code == 1 and "bicubic.x4  demo_clean  psnr" in out and "FAIL" in out, out

    data = yaml.safe_load(path.read_text())
    data["evaluation"]["datasets"].append("NTIRE_syn")
    data["entries"].append({"method": "bicubic.x4", "dataset": "NTIRE_syn", "metric": "psnr", "mean": 25.0, "n": 1})
    path.write_text(yaml.safe_dump(data))
    code, out = invoke("--baseline", path)
    assert code == 2 and "bicubic.x4 on NTIRE_syn was not evaluated: dataset missing" in out, out


def test_check_measures_at_the_baselines_precision(monkeypatch) -> None:
    """On a GPU or a bf16 CPU the run's default precision (auto) is bf16; a check of an fp32
    baseline must still measure in fp32, or every such check would be refused or drift."""
    from rsr_bench import regression
    from rsr_bench.regression import measure

    seen = []

    def fake_evaluate(selection, root, source):
        seen.append(source.precision)
        raise regression.CheckSetupError("stop here")

    monkeypatch.setattr(measure, "evaluate", fake_evaluate)
    baseline = Path(__file__).resolve().parents[1] / "reports" / "baselines" / "bicubic.x4.yaml"
    for source in (regression.MeasureOptions(), regression.MeasureOptions(precision="bf16")):
        with pytest.raises(regression.CheckSetupError, match="stop here"):
            regression.check(baseline, source, log=lambda m: None)
    assert seen == ["fp32", "bf16"]
