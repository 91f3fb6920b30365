"""compat.html in a real browser: headless Chromium (Debian's ``chromium``) renders the grid.

The report is built from JUnit files of real runs with a baseline; Chromium takes a screenshot and
dumps the DOM in one call. The PNG must not be blank and must show the grid's own paint (the state
colours and the outline of a regressed cell); the DOM must hold one grid cell per (case, cell).

docs/report.png is made with :func:`chromium_screenshot` from the compat.html of real runs.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

from PIL import Image

from bench.report_scale import chromium_args
from conftest import FIXTURES, require
from harness.report import build, pagefilter
from harness.report.html import COLOURS
from test_end_to_end import MATRIX

JUNIT = FIXTURES / "junit"
SIZE = (1280, 1000)
REGRESSION_OUTLINE = (0xCF, 0x22, 0x2E)  # td.chg-regression: painted by the grid only


def chromium_screenshot(page: Path, png: Path, size: tuple[int, int] = SIZE) -> str:
    """Screenshot ``page`` into ``png``; returns the DOM Chromium built. Flags: no network, no profile."""
    require(shutil.which("chromium") is not None, "chromium is not installed (apt-get install -y chromium)")
    args = chromium_args(page.as_uri(), png.parent / "chromium-profile", "--hide-scrollbars", f"--screenshot={png}",
                         size=size)
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and png.exists(), done.stderr[-2000:]
    return done.stdout


def report(tmp_path: Path) -> Path:
    """The report of a broken run against a baseline, with a not-applicable and an errored cell."""
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(MATRIX)  # no declared incompatibilities
    base = tmp_path / "baseline"
    (base / "junit").mkdir(parents=True)
    shutil.copy(JUNIT / "run1-baseline.xml", base / "junit" / "24.10-python-cpu-py3.11.xml")
    build.main(reports=base, matrix=matrix)
    reports = tmp_path / "reports"
    (reports / "junit").mkdir(parents=True)
    for cell, fixture in {"24.10-python-cpu-py3.11": "run2-broken.xml", "24.10-python-cpu-py3.12": "env-error.xml",
                          "24.10-python-gpu-py3.11": "gpu-not-applicable.xml"}.items():
        shutil.copy(JUNIT / fixture, reports / "junit" / f"{cell}.xml")
    assert build.main(reports=reports, baseline=base / "compat.json", matrix=matrix) == 1
    return reports / "compat.html"


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def elements(text: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(text)
    return parser.tags


def rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def test_the_page_needs_no_network(tmp_path: Path) -> None:
    page = report(tmp_path).read_text()
    for tag, attrs in elements(page):
        for name in ("src", "href", "action"):
            value = attrs.get(name) or ""
            assert "//" not in value and ":" not in value.split("/")[0], f"<{tag} {name}={value!r}>"
    assert not {"link", "img", "iframe", "object"} & {tag for tag, _ in elements(page)}
    scripts = [attrs for tag, attrs in elements(page) if tag == "script"]
    assert scripts == [{}] and page.count(pagefilter.script()) == 1, "one inline script: the filter's own"
    assert "url(" not in page and "@import" not in page


def test_chromium_renders_the_grid(tmp_path: Path) -> None:
    page = report(tmp_path)
    png = tmp_path / "report.png"
    dom = chromium_screenshot(page, png)

    tags = elements(dom)
    states = [attrs["class"].split()[1] for tag, attrs in tags if tag == "td" and (attrs.get("class") or "")
              .startswith("s ")]
    columns = [attrs for tag, attrs in tags if tag == "th" and attrs.get("class") == "cell"]
    assert len(columns) == 3 and len(states) == 8 * 3, "one grid cell per (case, cell)"
    assert set(states) == {"passed", "failed", "error", "not-applicable"}

    image = Image.open(png).convert("RGB")
    assert image.size == SIZE
    pixels = Counter({colour: n for n, colour in image.getcolors(maxcolors=SIZE[0] * SIZE[1])})
    assert len(pixels) > 100 and pixels.most_common(1)[0][1] < 0.9 * SIZE[0] * SIZE[1], "not blank"
    assert pixels[REGRESSION_OUTLINE] > 200, "the regressed cells' outline is painted"
    for state in set(states):
        assert pixels[rgb(COLOURS[state])] > 150, f"no {state} colour on screen"
