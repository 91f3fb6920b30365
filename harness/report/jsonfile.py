"""compat.json: the machine-readable report (the shape other tools and the release diff read)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.report.model import Results


def write(results: Results, path: Path) -> None:
    path.write_text(json.dumps(results.as_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
