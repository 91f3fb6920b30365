"""What lets the modules that run inside a cell's venv import on Python 3.9 and 3.10.

The plugin runs in the cell's venv, whose Python is the cell's Python axis (3.9 to 3.13), while the
command line needs >= 3.11. Keyword-only dataclasses and tomllib arrived in 3.10 and 3.11.
"""

from __future__ import annotations

import sys

# ``@dataclass(frozen=True, **KW_ONLY)``: keyword-only where the Python has it (fields are ordered so
# that the positional form is valid too).
KW_ONLY: dict[str, bool] = {"kw_only": True} if sys.version_info >= (3, 10) else {}

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised by the 3.9 and 3.10 cells
    import tomli as tomllib

__all__ = ["KW_ONLY", "tomllib"]
