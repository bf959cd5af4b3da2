"""The report opened in real headless Chromium: no missing image, no console error, a screenshot,
and the Robustness section (table with best marks and "n/d" reasons, severity and attack plots,
the severity image grid, its downloads) present and laid out.

Talks to Chromium over ``--remote-debugging-pipe`` (DevTools protocol as NUL-terminated JSON on
fds 3/4), so no websocket client or browser download is needed. Skips cleanly when Debian's
``chromium`` is not installed (``.ci/run`` installs it).

Env: ``RSR_BENCH_REPORT_STORE`` renders that store (e.g. a demo-suite run) instead of the
synthetic one; ``RSR_BENCH_SCREENSHOT`` copies the screenshot there as well.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from rsr_bench.report import build_report
from synthetic_store import build_synthetic_store

CHROMIUM = next((p for p in (os.environ.get("RSR_BENCH_CHROMIUM"), shutil.which("chromium"),
                             shutil.which("chromium-browser"), shutil.which("google-chrome")) if p), None)
BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(CHROMIUM is None or BASH is None,
                                reason="chromium not installed (apt-get install chromium)")


class DevTools:
    """Minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, binary: str, user_data_dir: Path, width: int = 1400, height: int = 1000):
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
                "--remote-debugging-pipe", f"--user-data-dir={user_data_dir}", f"--window-size={width},{height}",
                "about:blank"]
        # The pipe protocol wants fd 3 (commands in) and fd 4 (replies out); a bash exec moves
        # our pipe ends there without a preexec_fn (bash, not sh: dash only redirects fds 0-9).
        # The child's ends go above 9 first, so that they cannot be fd 3 or 4 themselves.
        r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
        w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
        for fd in (to_child_r, from_child_w):
            os.close(fd)
        wire = f'exec "$@" 3<&{r} 4>&{w} {r}<&- {w}>&-'
        self.proc = subprocess.Popen([BASH, "-c", wire, "bash", *args], pass_fds=(r, w),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(r)
        os.close(w)
        self.wfd, self.rfd = to_child_w, from_child_r
        self.buf = b""
        self.next_id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no DevTools message from chromium")
            ready, _, _ = select.select([self.rfd], [], [], left)
            if ready:
                chunk = os.read(self.rfd, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the debugging pipe")
                self.buf += chunk
        msg, _, self.buf = self.buf.partition(b"\0")
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.wfd, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, name: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        for i, ev in enumerate(self.events):
            if ev.get("method") == name:
                return self.events.pop(i)
        while True:
            ev = self._read_message(deadline)
            if ev.get("method") == name:
                return ev
            self.events.append(ev)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing anyway
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.wfd)
        os.close(self.rfd)


WAIT_IMAGES = """
(async () => {
  const imgs = [...document.images];
  imgs.forEach(i => { i.loading = 'eager'; });
  const done = Promise.all(imgs.map(i => i.complete ? 0 : new Promise(r => { i.onload = i.onerror = r; })));
  await Promise.race([done, new Promise(r => setTimeout(r, 15000))]);
  return JSON.stringify({n: imgs.length, broken: imgs.filter(i => !i.complete || i.naturalWidth === 0)
                                                 .map(i => i.getAttribute('src'))});
})()
"""


def add_robustness_cells(store: Path, tmp: Path) -> None:
    """A small real sweep into ``store``: bicubic and a precomputed (not differentiable) method on
    one demo image, two corruptions at two severities and a white-box PGD at one eps."""
    import numpy as np
    from PIL import Image

    from rsr_bench.datasets.demo import ensure_demo_dataset
    from rsr_bench.robust.sweep import RobustOptions, run_robust

    _, hr_dir = ensure_demo_dataset("demo_clean")
    (tmp / "published").mkdir()
    for src in hr_dir.glob("*.png"):  # outputs made elsewhere: the clean HR, darker
        Image.fromarray((np.asarray(Image.open(src).convert("RGB")) * 0.9).astype(np.uint8)).save(tmp / "published" / src.name)
    card = tmp / "pub.yaml"
    card.write_text("family: pub\nadapter: rsr_bench.adapters.precomputed:load\nvariants:\n  x4:\n    scale: 4\n"
                    "    options: {root: published, pattern: '{id}.png'}\n")
    run_robust(RobustOptions(methods="pub.x4", method_cards=[card], datasets="demo_clean", corruptions="jpeg,gaussian_noise",
                             severities="1,4", attacks="pgd", eps="8/255", attack_iters=2, metrics="psnr,lpips",
                             store=store, limit=1, progress=False), log=lambda m: None)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    env_store = os.environ.get("RSR_BENCH_REPORT_STORE")
    if env_store:
        store = Path(env_store)
    else:
        store = tmp_path_factory.mktemp("store")
        build_synthetic_store(store, n_images=6, size=(96, 72))
        add_robustness_cells(store, tmp_path_factory.mktemp("robust"))
    return build_report(store, tmp_path_factory.mktemp("report") / "r")


ROBUSTNESS_PROBE = """
(() => {
  const h = document.getElementById('robustness');
  if (!h) return JSON.stringify(null);
  const after = n => !!(h.compareDocumentPosition(n) & Node.DOCUMENT_POSITION_FOLLOWING);
  const tables = [...document.querySelectorAll('table.robust')].filter(after);
  const imgs = [...document.images].filter(after);
  return JSON.stringify({
    nav: !!document.querySelector('nav a[href="#robustness"]'),
    rows: tables.map(t => t.querySelectorAll('tbody tr').length),
    best: tables.reduce((n, t) => n + t.querySelectorAll('td.best').length, 0),
    nd: [...document.querySelectorAll('table.robust td')].filter(td => td.textContent.trim() === 'n/d')
           .map(td => td.getAttribute('title') || ''),
    plots: imgs.filter(i => i.closest('figure')).map(i => i.getAttribute('alt')),
    crops: imgs.filter(i => i.closest('table.rgrid')).length,
    visible: tables.length > 0 && tables[0].getBoundingClientRect().width > 200,
    downloads: [...document.querySelectorAll('p.downloads a')].map(a => a.getAttribute('href')),
  });
})()
"""


def inspect_page(url: str, tmp_path: Path) -> tuple[dict, list[str], Path]:
    """Load ``url``; return the image check (with the Robustness section's probe under
    ``"robustness"``), console/network errors and a full-page screenshot."""
    dt = DevTools(CHROMIUM, tmp_path / "profile")
    try:
        target = dt.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = dt.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            dt.send(f"{domain}.enable", session=session)
        dt.send("Emulation.setDeviceMetricsOverride",
                {"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": False}, session=session)
        dt.send("Page.navigate", {"url": url}, session=session)
        dt.wait_event("Page.loadEventFired", timeout=60)
        res = dt.send("Runtime.evaluate", {"expression": WAIT_IMAGES, "awaitPromise": True, "returnByValue": True},
                      session=session, timeout=60)
        images = json.loads(res["result"]["value"])
        probe = dt.send("Runtime.evaluate", {"expression": ROBUSTNESS_PROBE, "returnByValue": True}, session=session)
        images["robustness"] = json.loads(probe["result"]["value"])
        # Open a crop in the lightbox and close it, as a reader would, so that script runs too.
        dt.send("Runtime.evaluate", {"expression": "var a = document.querySelector('a.zoom'); if (a) a.click();"},
                session=session)
        dt.send("Runtime.evaluate", {"expression": "var b = document.getElementById('lightbox'); if (b) b.click();"},
                session=session)
        metrics = dt.send("Page.getLayoutMetrics", session=session)
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        shot = dt.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": 1400, "height": min(size["height"], 8000), "scale": 1}},
            session=session, timeout=60)
        time.sleep(0.2)
        dt.send("Runtime.evaluate", {"expression": "1"}, session=session)  # collect late events
    finally:
        dt.close()
    png = tmp_path / "report.png"
    png.write_bytes(base64.b64decode(shot["data"]))
    errors = []
    for ev in dt.events:
        p = ev.get("params", {})
        if ev.get("method") == "Runtime.exceptionThrown":
            errors.append(p["exceptionDetails"].get("text", "exception"))
        elif ev.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            errors.append(str(p.get("args")))
        elif ev.get("method") == "Log.entryAdded" and p["entry"]["level"] == "error":
            errors.append(f"{p['entry'].get('text')} {p['entry'].get('url', '')}")
    return images, errors, png


def test_report_in_headless_chromium(report, tmp_path):
    images, errors, png = inspect_page(report.resolve().as_uri(), tmp_path)
    if os.environ.get("RSR_BENCH_SCREENSHOT"):
        shutil.copyfile(png, os.environ["RSR_BENCH_SCREENSHOT"])
    print(f"screenshot: {png}")
    assert images["n"] > 10
    assert images["broken"] == []
    assert errors == []
    assert png.stat().st_size > 20_000
    rob = images["robustness"]
    assert rob is not None and rob["nav"] and rob["visible"]
    if not os.environ.get("RSR_BENCH_REPORT_STORE"):  # the fixture's sweep: two methods, one base set
        assert rob["rows"] == [2] and rob["best"] >= 3
        assert rob["nd"] and all(t.startswith("not differentiable") for t in rob["nd"])
        assert len(rob["plots"]) >= 2 and any("ttack" in a for a in rob["plots"]), rob["plots"]
        assert rob["crops"] >= 4
        assert {"robustness.csv", "robustness.md", "robustness.tex"} <= {Path(h).name for h in rob["downloads"]}


def test_checker_sees_broken_images_and_console_errors(tmp_path):
    """The browser check itself must fail on a broken page, or its pass means nothing."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><img src="nope.png" loading="lazy" style="margin-top:3000px">'
                    "<script>console.error('boom'); undefinedFunction();</script></body></html>")
    images, errors, _ = inspect_page(page.as_uri(), tmp_path)
    assert images["broken"] == ["nope.png"]
    assert any("boom" in e for e in errors)
    assert any("undefinedFunction" in e or "Uncaught" in e for e in errors)
