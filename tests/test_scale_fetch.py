"""Ranks sharing one asset cache fetch each asset once (issue 11): a process waits while another
fetches the same asset, then finds it cached; no double download, no half-written cache file.

Planted bug this module catches: ``ensure_asset`` without ``_fetching`` (both processes run the
converter: the counter file has two lines).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

CONVERTER = '''
import os
import time
from pathlib import Path

def slow_copy(raw, dest):
    with open(os.environ["FETCH_COUNTER"], "a") as fh:
        fh.write("fetch\\n")
    time.sleep(1.5)
    dest.write_bytes(Path(raw).read_bytes())
'''

FETCH = '''
import os, sys, time
from pathlib import Path
from rsr_bench.fetch import assets
from rsr_bench.fetch.assets import Asset, Source
tmp = Path(sys.argv[1])
(tmp / f"ready-{sys.argv[2]}").touch()
while len(list(tmp.glob("ready-*"))) < 2:
    time.sleep(0.01)
a = Asset("w", "w.bin", (Source("m", url=(tmp / "w.src").as_uri(), sha256=sys.argv[3], converter="slowconv:slow_copy"),))
print(assets.ensure_asset(a).read_bytes().decode())
'''


def test_two_processes_fetch_an_asset_once(tmp_path):
    data = b"weights-bytes"
    (tmp_path / "w.src").write_bytes(data)
    (tmp_path / "slowconv.py").write_text(textwrap.dedent(CONVERTER))
    env = {**os.environ, "RSR_BENCH_CACHE": str(tmp_path / "cache"), "FETCH_COUNTER": str(tmp_path / "fetches.txt"),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    sha = hashlib.sha256(data).hexdigest()
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(FETCH), str(tmp_path), str(i), sha], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert [o.strip() for o, _ in outs] == ["weights-bytes"] * 2
    fetches = (tmp_path / "fetches.txt").read_text().splitlines()
    assert fetches == ["fetch"], "the asset was fetched twice"
