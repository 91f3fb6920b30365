"""The report at 100 cells x 300 cases with 20 runs of history (``bench.synthetic``): how big compat.html and
compat.json are, and how long Chromium takes to show the page.

Chromium's time: headless Chromium (Debian's ``chromium``, no network, a fresh profile) opens a copy of
compat.html from disk with a probe appended after ``</html>`` (the report itself has no timing code). On
the load event the probe forces a style and layout of the whole page and writes ``performance.now()``
into the DOM, which ``--dump-dom`` prints: the milliseconds from navigation start until the page is
parsed, its script has run and it is laid out, i.e. usable. The median of ``ROUNDS`` runs; Chromium's
own start is not in it (``chromium_wall_s`` says the whole process, for scale).

    python bench/report_scale.py            # prints the figures (nox -s bench puts them in bench.json)
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import synthetic  # noqa: E402
from harness.report import html, jsonfile, timeline  # noqa: E402

ROUNDS = 3
PROBE = ("<script>addEventListener('load',()=>{document.body.getBoundingClientRect();"
         "document.documentElement.offsetHeight;const p=document.createElement('output');p.id='probe-ms';"
         "p.textContent=performance.now().toFixed(1);document.body.append(p)})</script>")
PROBED = re.compile(r'<output id="probe-ms">([\d.]+)</output>')


class NoChromium(Exception):
    """``chromium`` is not on PATH."""


def chromium_args(url: str, profile: Path, *extra: str, size: tuple[int, int] = (1280, 1000)) -> list[str]:
    """Headless Chromium on a page from disk: no network, no profile of the user's, the DOM printed."""
    chromium = shutil.which("chromium")
    if chromium is None:
        raise NoChromium("chromium is not installed (apt-get install -y chromium)")
    return [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
            f"--window-size={size[0]},{size[1]}", *extra, "--dump-dom", url]


def dump_dom(page: Path, profile: Path, fragment: str = "") -> str:
    """The DOM Chromium built for ``page`` (with ``#fragment``), after its load event."""
    args = chromium_args(page.as_uri() + (f"#{fragment}" if fragment else ""), profile)
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def chromium_ms(page: Path, work: Path) -> tuple[float, float]:
    """(milliseconds until the page is usable, seconds of the whole Chromium process) for one opening."""
    probed = work / f"probed-{page.name}"
    probed.write_bytes(page.read_bytes() + PROBE.encode())
    started = time.monotonic()
    dom = dump_dom(probed, work / "profile")
    wall = time.monotonic() - started
    found = PROBED.search(dom)
    if found is None:
        raise RuntimeError("the probe wrote nothing: the page did not load")
    return float(found.group(1)), wall


def measure(work: Path) -> dict[str, Any]:
    results = synthetic.big_results()
    past = timeline.build(synthetic.big_window(results), ["numpy2-abi"])
    page, data = work / "compat.html", work / "compat.json"
    html.write(results, page, past=past)
    jsonfile.write(results, data, past=past)
    text = data.read_text()
    history_bytes = len(text[text.index('\n "history": {'):].encode())  # as written: the last key of compat.json
    figures: dict[str, Any] = {"cells": synthetic.CELLS, "cases": synthetic.CASES, "runs": synthetic.RUNS,
                               "html_bytes": page.stat().st_size, "json_bytes": data.stat().st_size,
                               "json_history_bytes": history_bytes}
    try:
        opened = [chromium_ms(page, work) for _ in range(ROUNDS)]
    except NoChromium as exc:
        figures["chromium"] = str(exc)
        return figures
    figures["chromium_usable_s"] = round(statistics.median(ms for ms, _ in opened) / 1000, 3)
    figures["chromium_wall_s"] = round(statistics.median(wall for _, wall in opened), 3)
    return figures


def report_scale() -> dict[str, Any]:
    """bench.json's figures: ``report_html_bytes``, ``report_html_chromium_s`` and the details."""
    with tempfile.TemporaryDirectory() as tmp:
        figures = measure(Path(tmp))
    print(f"report at {figures['cells']} cells x {figures['cases']} cases, {figures['runs']} runs: compat.html "
          f"{figures['html_bytes']:,} bytes, usable in Chromium in {figures.get('chromium_usable_s', '?')} s; "
          f"compat.json {figures['json_bytes']:,} bytes (history {figures['json_history_bytes']:,})", flush=True)
    return {"report_html_bytes": figures["html_bytes"], "report_html_chromium_s": figures.get("chromium_usable_s"),
            "report_scale": figures}


if __name__ == "__main__":
    print(json.dumps(report_scale(), indent=1))
