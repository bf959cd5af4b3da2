"""The metric table as the one home of metric facts, and the one scoring function (score_batch)
with its NaN/inf policy on both paths that use it: the runner and `rsr-bench score`."""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from rsr_bench import metrics, store
from rsr_bench.cli import cli
from rsr_bench.errors import NotComputable
from rsr_bench.metrics import METRICS, MetricSpec, create_metric, score_batch
from rsr_bench.metrics.score import score_images
from rsr_bench.metrics.table import METRIC_TABLE
from rsr_bench.report.model import resolve_metrics


class Fixed:
    """A test metric whose every image scores the value its name asks for (NR)."""

    VALUES: ClassVar[dict[str, float]] = {"t_nan": math.nan, "t_ninf": -math.inf, "t_inf": math.inf, "t_inf_declared": math.inf, "t_ok": 0.5}

    def __init__(self, spec: MetricSpec, device: torch.device) -> None:
        self.spec = spec

    def __call__(self, sr: torch.Tensor, ref: torch.Tensor | None = None) -> list[float]:
        if self.spec.name == "t_black" and bool((sr.flatten(1).amax(1) == 0).any()):
            raise NotComputable("t_black: a black image")  # fails the whole batch
        return [self.VALUES.get(self.spec.name, float(x.mean())) for x in sr]


@pytest.fixture
def fake_metrics(monkeypatch):
    base = {"kind": "NR", "higher_is_better": True, "colour": "RGB", "crop": 0, "input": "uint8",
            "implementation": "test", "factory": "test_metrics_table:Fixed"}
    specs = {n: MetricSpec(name=n, **base) for n in (*Fixed.VALUES, "t_black")}
    specs["t_inf_declared"] = dataclasses.replace(specs["t_inf_declared"], infinite="infinite on purpose")
    monkeypatch.setattr(metrics, "METRICS", {**METRICS, **specs})
    return specs


def _expect_policy(values: dict, nc: dict, errors: dict) -> None:
    assert values == {"t_ok": 0.5}
    assert nc == {"t_inf_declared": "t_inf_declared: infinite on purpose"}
    assert set(errors) == {"t_nan", "t_ninf", "t_inf"}
    assert all(m.startswith("RsrBenchError: ") for m in errors.values())


def test_policy_in_score_batch(fake_metrics):
    (scored,) = score_batch([fake_metrics[n] for n in Fixed.VALUES], torch.rand(1, 3, 8, 8))
    _expect_policy(scored.values, scored.not_computable, scored.errors)


def test_policy_in_the_runner(fake_metrics, tmp_path):
    hr = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    for sub, arr in (("HR", hr), ("LR", hr[::4, ::4])):
        (tmp_path / sub).mkdir()
        Image.fromarray(arr).save(tmp_path / sub / "a.png")
    sets = tmp_path / "sets.yaml"
    sets.write_text(f"datasets:\n  Toy:\n    lr: {tmp_path}/LR\n    hr: {tmp_path}/HR\n    scale: 4\n")
    out = tmp_path / "store"
    res = CliRunner().invoke(cli, ["run", "--methods", "bicubic", "--datasets", "Toy", "--metrics", ",".join(Fixed.VALUES),
                                   "--datasets-file", str(sets), "--out", str(out), "--quiet"])
    assert res.exit_code == 1, res.output  # the NaN/inf errors are failures of the run
    rec = store.read_record(out, "bicubic.x4", "Toy", "a")
    errors = {e["stage"].removeprefix("metric:"): e["message"] for e in rec["errors"]}
    _expect_policy(rec["metrics"], rec["not_computable"], errors)
    manifest = store.read_manifest(out, "bicubic.x4", "Toy")
    assert manifest["metrics"]["t_ok"] == fake_metrics["t_ok"].manifest_fields()


def test_policy_in_rsr_bench_score(fake_metrics, tmp_path):
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(tmp_path / "a.png")
    result = score_images(tmp_path / "a.png", None, ",".join(Fixed.VALUES))
    rows = {r.metric: r for r in result.rows}
    _expect_policy({k: r.value for k, r in rows.items() if r.value is not None},
                   {k: r.reason for k, r in rows.items() if r.value is None and not r.error},
                   {k: r.reason for k, r in rows.items() if r.error})


def test_psnr_of_identical_images_is_not_computable_on_both_paths(tmp_path):
    x = torch.randint(0, 256, (1, 3, 24, 24)) / 255
    (scored,) = score_batch([METRICS["psnr"], METRICS["psnr_nocrop"]], x, x)
    assert scored.values == {} and scored.errors == {}
    assert "identical" in scored.not_computable["psnr"] and "4 px border crop" in scored.not_computable["psnr"]
    Image.fromarray((x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(tmp_path / "a.png")
    result = score_images(tmp_path / "a.png", tmp_path / "a.png", "psnr")
    assert result.value("a.png", "psnr") is None and "PSNR is infinite" in result.rows[0].reason


def test_a_failing_batch_is_scored_one_image_at_a_time(fake_metrics):
    x = torch.rand(3, 3, 8, 8)
    x[1] = 0
    scored = score_batch([fake_metrics["t_black"]], x)
    assert [s.not_computable for s in scored] == [{}, {"t_black": "t_black: a black image"}, {}]
    q = (x * 255).round() / 255  # a uint8 metric sees the quantised batch
    assert [s.values.get("t_black") for s in scored] == pytest.approx([float(q[0].mean()), None, float(q[2].mean())])


def test_batch_input_choice_matches_the_row():
    """uint8 metrics see the quantised batch, float ones the given values (as the runner passes them)."""
    sr = torch.rand(2, 3, 40, 40)
    ref = torch.rand(2, 3, 40, 40)
    scored = score_batch([METRICS["psnr"], METRICS["ssim"]], sr, ref)
    q = (sr * 255).round() / 255
    assert [s.values["psnr"] for s in scored] == pytest.approx(create_metric("psnr")(q, ref))
    assert [s.values["ssim"] for s in scored] == pytest.approx(create_metric("ssim")(q, ref))


def test_table_facts():
    assert metrics.DEFAULT_METRICS == ["psnr", "ssim", "lpips", "niqe", "brisque", "piqe"]
    assert list(METRICS)[:6] == metrics.DEFAULT_METRICS  # the table order is the display order
    tol = metrics.tolerances()
    assert tol["default"] == (1e-3, 1e-3) and tol["psnr"] == (0.01, 0.0) and tol["brisque"] == (0.05, 1e-3)
    assert metrics.tolerances(other_device=True)["lpips"] == (2e-3, 0.0)
    assert {s.decimals for s in METRIC_TABLE if s.name.startswith("psnr")} == {2}
    for spec in METRIC_TABLE:
        assert spec.conventions().startswith(f"{spec.name} ({spec.kind}, ")


@pytest.mark.parametrize("name", ["psnr", "ssim", "psnr_nocrop", "ssim_gray", "ssim_y"])
def test_size_rule_of_the_row_is_the_one_enforced(name):
    spec = METRICS[name]
    side = spec.min_size + 2 * spec.crop
    x = torch.rand(1, 3, side, side + 3)
    assert spec.size_problem(side, side + 3) is None
    assert math.isfinite(create_metric(name)(x, x.flip(-1))[0])
    small = x[..., :side - 1, :]
    with pytest.raises(NotComputable) as exc:
        create_metric(name)(small, small)
    assert str(exc.value) == spec.size_problem(side - 1, side + 3)


def test_niqe_size_rule_is_two_whole_blocks():
    niqe = METRICS["niqe"]
    assert (niqe.min_size, niqe.min_blocks) == (96, 2)
    assert niqe.size_problem(96, 192) is None and niqe.size_problem(192, 96) is None
    assert "2 whole 96x96 blocks" in niqe.size_problem(191, 150)
    assert niqe.size_problem(95, 300) is not None


def _manifest(metrics_entry: dict) -> dict:
    return {("m", "d"): {"metrics": metrics_entry}}


def test_report_reads_structured_manifests_and_old_prose():
    structured = resolve_metrics(["lpips", "psnr"], _manifest({k: METRICS[k].manifest_fields() for k in ("psnr", "lpips")}))
    prose = resolve_metrics(["lpips", "psnr"], _manifest({k: METRICS[k].conventions() for k in ("psnr", "lpips")}))
    assert list(structured) == list(prose) == ["psnr", "lpips"]
    for name in ("psnr", "lpips"):
        spec = METRICS[name]
        for info in (structured[name], prose[name]):
            assert (info.kind, info.higher_is_better, info.decimals) == (spec.kind, spec.higher_is_better, spec.decimals)
            assert info.conventions == spec.conventions()  # same footnote either way


def test_report_unknown_metrics():
    line = "dists (FR, lower is better): RGB, crop 0 px, float input; piq 0.8."
    fields = {"kind": "FR", "higher_is_better": False, "colour": "RGB", "crop": 0, "input": "float",
              "implementation": "piq 0.8", "decimals": 4}
    old, new, none = (resolve_metrics(["dists"], _manifest(m))["dists"] for m in ({"dists": line}, {"dists": fields}, {}))
    assert (old.kind, old.higher_is_better, old.conventions) == ("?", True, line)  # neutral, prose kept as footnote
    assert (new.kind, new.higher_is_better, new.decimals) == ("FR", False, 4)
    assert new.conventions == line  # the footnote generated from the fields
    assert (none.kind, none.conventions, none.decimals) == ("?", "", 3)
    assert list(resolve_metrics(["dists", "niqe", "aaa"], {})) == ["niqe", "aaa", "dists"]


def test_scoring_does_not_depend_on_the_path(tmp_path):
    """score_images and score_batch agree on a real pair (same conventions, same numbers)."""
    rng = np.random.default_rng(3)
    a, b = (rng.integers(0, 256, (40, 44, 3), dtype=np.uint8) for _ in range(2))
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(b).save(tmp_path / "b.png")
    result = score_images(tmp_path / "a.png", tmp_path / "b.png", "psnr,ssim_gray")
    t = [torch.from_numpy(v).permute(2, 0, 1)[None].float() / 255 for v in (a, b)]
    (scored,) = score_batch([METRICS["psnr"], METRICS["ssim_gray"]], t[0], t[1])
    assert {m: result.value("a.png", m) for m in ("psnr", "ssim_gray")} == scored.values
