"""The report's "Speed and memory" section, compat.json's ``perf`` block and the perf gate, from
``reports/perf.json``. Ratios lead: absolute figures from a shared box are noise.

A chart per metric: each release's ratio to the reference as a dot with its interval as a bar, the
threshold band shaded; inline SVG that reads without JavaScript.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.layout import perf_path

TITLE = "Speed and memory"
WORSE = ("slower", "more")  # the words of a called regression (harness.perf.stats directions)
CHART_W, ROW_H, PAD = 420, 18, 110


class PerfUnreadable(HarnessError):
    """reports/perf.json is there but is not perf's results."""


def read(reports: Path) -> dict[str, Any] | None:
    """perf's results, or None when ``nox -s perf`` has not run."""
    path = perf_path(reports)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["releases"], data["reference"]  # noqa: B018 - the keys every reader needs
    except (OSError, ValueError, KeyError, TypeError):
        raise PerfUnreadable("not written by nox -s perf", where=str(path), fix="delete it or run nox -s perf again")
    return data


def compared(perf: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(release, metric key, entry) of every figure compared with the reference, in release order."""
    return [(release, key, entry) for release, figures in perf["releases"].items()
            for key, entry in figures.items() if "call" in entry and entry["call"] is not None]


def regressions(perf: dict[str, Any]) -> list[str]:
    """Each called slowdown or memory increase as one line (``--perf-gate`` fails on any)."""
    return [f"{release} {key}: {entry['call']} than {perf['reference']} ({_change(entry)})"
            for release, key, entry in compared(perf) if entry["call"] in WORSE]


def block(perf: dict[str, Any]) -> dict[str, Any]:
    """compat.json's ``perf``: the reference, the machine, and per release each compared metric's call."""
    calls: dict[str, dict[str, Any]] = {}
    for release, key, entry in compared(perf):
        calls.setdefault(release, {})[key] = {k: entry[k] for k in ("call", "ratio", "difference", "median")
                                              if k in entry}
    return {"reference": perf["reference"], "machine": perf.get("machine", {}), "calls": calls,
            "regressions": regressions(perf)}


@dataclass(frozen=True)
class CallChange:
    """A metric whose call against the reference differs from the baseline report's (same -> slower, ...)."""

    release: str
    key: str
    before: str | None  # the baseline's call (None: not measured there)
    after: str  # the call now
    change: str  # the ratio or difference now, with its interval

    @property
    def worse(self) -> bool:
        return self.after in WORSE

    def line(self) -> str:
        return f"{self.release} {self.key}: {self.before or 'not measured'} → {self.after} ({self.change})"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def call_changes(baseline_block: Any, perf: dict[str, Any] | None) -> list[CallChange]:
    """Each compared metric of ``perf`` whose call differs from the baseline compat.json's ``perf`` block
    (calls only: absolute figures of runs on other days or machines are not comparable), worse first.
    Nothing when either side has no perf figures."""
    if perf is None or not isinstance(baseline_block, dict) or not isinstance(baseline_block.get("calls"), dict):
        return []
    before = {(release, key): entry.get("call") for release, calls in baseline_block["calls"].items()
              if isinstance(calls, dict) for key, entry in calls.items() if isinstance(entry, dict)}
    found = [CallChange(release, key, before.get((release, key)), entry["call"], _change(entry))
             for release, key, entry in compared(perf) if before.get((release, key)) != entry["call"]]
    return sorted(found, key=lambda c: (not c.worse, c.release, c.key))


def _change(entry: dict[str, Any]) -> str:
    if "ratio" in entry:
        r = entry["ratio"]
        return f"x{r['median']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"
    d = entry["difference"]
    return f"{d['median']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}] MB/1k req"


def _median(entry: dict[str, Any]) -> str:
    m = entry["median"]
    return f"{m['median']:.4g} [{m['low']:.4g}, {m['high']:.4g}]"


def markdown(perf: dict[str, Any] | None, escape: Any = str) -> list[str]:
    if not perf:
        return []
    machine = perf.get("machine", {})
    lines = [f"## {TITLE}", "", f"Against {perf['reference']}: ratio of medians with its 95% interval over "
             f"{perf.get('settings', {}).get('rounds', '?')} interleaved rounds; called only when the whole "
             f"interval clears the threshold. Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} "
             f"cores, load {machine.get('load_before', ['?'])[0]} -> {machine.get('load_after', ['?'])[0]}.", "",
             "| release | metric | change | call | median [95%] |", "|---|---|---|---|---|"]
    for release, key, entry in compared(perf):
        call = f"**{entry['call']}**" if entry["call"] != "same" else "same"
        lines.append(f"| {escape(release)} | `{escape(key)}` | {_change(entry)} | {call} | {_median(entry)} |")
    return [*lines, ""]


def chart(perf: dict[str, Any], key: str) -> str:
    """One metric's ratio per release with its interval, against the reference's 1.0: inline SVG."""
    rows = [(release, entry["ratio"]) for release, k, entry in compared(perf) if k == key and "ratio" in entry]
    if not rows:
        return ""
    top = max(2.0, *(r["high"] for _, r in rows))
    span = CHART_W - PAD - 10

    def x(value: float) -> float:
        return PAD + span * min(value, top) / top

    height = ROW_H * len(rows) + 24
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_W}" height="{height}" role="img" '
           f'aria-label="{html.escape(key)}: ratio to {html.escape(perf["reference"])}">',
           f'<rect x="{x(0.9):.1f}" y="0" width="{x(1.1) - x(0.9):.1f}" height="{height - 20}" fill="#eee"/>',
           f'<line x1="{x(1):.1f}" y1="0" x2="{x(1):.1f}" y2="{height - 20}" stroke="#888"/>',
           f'<text x="{x(1):.1f}" y="{height - 6}" font-size="10" text-anchor="middle">1.0</text>',
           f'<text x="{x(top):.1f}" y="{height - 6}" font-size="10" text-anchor="end">{top:.1f}</text>']
    for i, (release, r) in enumerate(rows):
        y = ROW_H * i + ROW_H / 2
        out += [f'<text x="4" y="{y + 4:.1f}" font-size="11">{html.escape(release)}</text>',
                f'<line x1="{x(r["low"]):.1f}" y1="{y:.1f}" x2="{x(r["high"]):.1f}" y2="{y:.1f}" stroke="#369" '
                f'stroke-width="3"/>', f'<circle cx="{x(r["median"]):.1f}" cy="{y:.1f}" r="4" fill="#036"/>']
    return "".join([*out, "</svg>"])


def html_section(perf: dict[str, Any] | None) -> list[str]:
    if not perf:
        return []
    e = html.escape
    out = [f'<h2 id="perf">{TITLE}</h2>', f"<p>Against {e(perf['reference'])}: the ratio of medians with its 95% "
           "interval; called only when the whole interval clears the threshold (shaded: 10%).</p>",
           "<table><tr><th>release</th><th>metric</th><th>change</th><th>call</th><th>median [95%]</th></tr>"]
    for release, key, entry in compared(perf):
        out.append(f"<tr><td>{e(release)}</td><td><code>{e(key)}</code></td><td>{e(_change(entry))}</td>"
                   f"<td>{e(entry['call'])}</td><td>{e(_median(entry))}</td></tr>")
    out.append("</table>")
    for key in dict.fromkeys(k for _, k, entry in compared(perf) if "ratio" in entry):
        out.append(f"<figure><figcaption><code>{e(key)}</code></figcaption>{chart(perf, key)}</figure>")
    return out
