"""Sharding one run over processes (issue 11): partition, ``--shard K/N``, manifest fragments.

* ``partition`` is deterministic, gives every item to exactly one rank, and balances mixed
  image sizes so that the most loaded rank is within 10 % of the least loaded;
* two shards of a run leave the same store, record for record and PNG for PNG, as one process;
  a shard run again computes nothing, and a missing shard computes only its own images;
* the merged manifest records the world size and each rank's timings;
* a malformed ``--shard`` (or K >= N) is a clear error, exit 2.

Planted bugs this module catches (each tried, one at a time): ``partition`` assigning in input
order instead of longest first (imbalance > 10 %); the heap keyed by rank before load (round
robin, imbalance); ``shard_samples`` keeping ``r != rank`` (shards overlap: 0/2 computes what
1/2 did); ``write_manifest`` ignoring the rank (the fragments overwrite each other, one rank in
the merged manifest); ``parse_shard`` accepting K == N.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_store_faults import _toy

from rsr_bench import store
from rsr_bench.cli import cli
from rsr_bench.errors import ConfigError
from rsr_bench.runner import RunOptions, parse_shard, partition, run

METHOD = "bicubic.x4"


def _loads(costs, owner, world):
    loads = [0.0] * world
    for c, r in zip(costs, owner):
        loads[r] += c
    return loads


@pytest.mark.parametrize("world", [2, 3, 8, 16])
def test_partition_balances_mixed_sizes(world):
    rng = random.Random(world)
    sizes = [(510, 339), (480, 320), (128, 128), (1020, 678), (256, 200), (2040, 1356)]
    costs = sorted(float(w * h) for w, h in (rng.choice(sizes) for _ in range(12 * world)))  # largest last
    owner = partition(costs, world, "m|d")
    assert len(owner) == len(costs) and set(owner) == set(range(world))
    loads = _loads(costs, owner, world)
    assert max(loads) <= 1.10 * min(loads), loads
    assert partition(costs, world, "m|d") == owner  # deterministic


def test_partition_small_cells_spread_over_ranks():
    firsts = {partition([1.0], 8, f"m|d{i}")[0] for i in range(40)}
    assert len(firsts) >= 5  # one-image cells do not all land on rank 0


@pytest.mark.parametrize("text", ["3", "a/b", "2/2", "5/2", "-1/2", "0/0", "1/2/3", ""])
def test_malformed_shard_is_a_clear_error(text):
    with pytest.raises(ConfigError, match="--shard"):
        parse_shard(text)


def test_shard_option_on_the_command_line(tmp_path):
    res = CliRunner().invoke(cli, ["run", "--methods", "bicubic", "--datasets", "demo_clean", "--shard", "2/2",
                                   "--store", str(tmp_path / "s")])
    assert res.exit_code == 2 and "--shard 2/2" in res.output and "Traceback" not in res.output
    assert parse_shard(" 3 / 16 ") == (3, 16)


def _mixed_set(root: Path, n: int) -> Path:
    return _toy(root, n, sizes=((8, 8), (12, 20), (16, 16), (24, 12)))


def _records(root: Path) -> dict:
    out = {}
    for m, d, rec in store.iter_records(root):
        png = store.sr_path(root, m, d, rec["image"]).read_bytes()
        keep = {k: rec.get(k) for k in ("metrics", "not_computable", "errors", "sr_sha256", "lr_path", "hr_path")}
        out[(m, d, rec["image"])] = (json.dumps(keep, sort_keys=True), png)
    return out


def test_shards_give_the_store_of_one_process(tmp_path):
    sets = _mixed_set(tmp_path / "toy", 10)

    def go(out, shard=None, **kw):
        return run(RunOptions(methods="bicubic", datasets="Toy", metrics="psnr,ssim", datasets_files=[sets], store=out,
                              progress=False, shard=shard, **kw), log=lambda m: None)

    single = go(tmp_path / "one")
    first = go(tmp_path / "three", shard="0/3")
    n0 = first.cells[0].computed
    assert 0 < n0 < 10 and len(store.load_results(tmp_path / "three")) == 2 * n0
    again = go(tmp_path / "three", shard="0/3")
    assert (again.cells[0].computed, again.cells[0].reused) == (0, n0)
    n1, n2 = (go(tmp_path / "three", shard=f"{k}/3").cells[0].computed for k in (1, 2))
    assert n1 > 0 and n2 > 0 and n0 + n1 + n2 == 10 and single.cells[0].computed == 10  # no image twice
    assert _records(tmp_path / "one") == _records(tmp_path / "three")
    manifest = store.read_manifest(tmp_path / "three", METHOD, "Toy")
    assert manifest["world_size"] == 3 and [r["rank"] for r in manifest["ranks"]] == [0, 1, 2]
    assert all(r["finished"] and "predict_s" in r["timings"] for r in manifest["ranks"])
    assert manifest["timings"]["images_computed"] + manifest["timings"]["images_reused"] == 10
    assert store.read_manifest(tmp_path / "one", METHOD, "Toy")["world_size"] == 1
