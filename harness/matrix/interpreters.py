"""Find a working interpreter for a Python version.

A name on ``PATH`` is not proof: pyenv's shims for non-global versions exist but fail, and nox then
skips the session and exits 0. So every candidate is run once and must report the wanted version.
Candidates: ``python3.X`` on ``PATH``, then ``$(pyenv prefix 3.X)/bin/python3.X``. Standard library only.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.compat import KW_ONLY

_PROBE = "import sys; print('%d.%d' % sys.version_info[:2]); print(sys.base_prefix)"


@dataclass(frozen=True, **KW_ONLY)
class Interpreter:
    version: str
    executable: Path
    base_prefix: Path

    @property
    def libdir(self) -> Path:
        """Where its libpython lives; the python backend stub needs it on ``LD_LIBRARY_PATH``."""
        return self.base_prefix / "lib"


@dataclass(frozen=True, **KW_ONLY)
class Missing:
    version: str
    tried: tuple[str, ...]

    @property
    def reason(self) -> str:
        tried = ", ".join(self.tried) or "nothing"
        return f"no working Python {self.version} interpreter (tried {tried}); install it or put it on PATH"


def probe(executable: str | Path, version: str) -> Interpreter | None:
    """Run ``executable`` and return it if it really is Python ``version``."""
    try:
        out = subprocess.run(
            [str(executable), "-c", _PROBE], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.split("\n")
    if out.returncode != 0 or len(lines) < 2 or lines[0].strip() != version:
        return None
    base_prefix = Path(lines[1].strip())
    # A venv's python stands for its base interpreter: the same Python must give the same cell venv.
    base = base_prefix / "bin" / f"python{version}"
    return Interpreter(version=version, executable=base if base.exists() else Path(executable),
                       base_prefix=base_prefix)


@functools.cache
def find(version: str) -> Interpreter | Missing:
    """The first working interpreter for ``version`` (e.g. ``"3.12"``), or why there is none."""
    tried: list[str] = []
    on_path = shutil.which(f"python{version}")
    if on_path:
        tried.append(on_path)
        found = probe(on_path, version)
        if found:
            return found
    pyenv = shutil.which("pyenv") or os.path.expanduser("~/.pyenv/bin/pyenv")
    if os.path.exists(pyenv):
        try:
            prefix = subprocess.run(
                [pyenv, "prefix", version], capture_output=True, text=True, timeout=20, check=False
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            prefix = ""
        if prefix:
            candidate = Path(prefix) / "bin" / f"python{version}"
            tried.append(str(candidate))
            found = probe(candidate, version)
            if found:
                return found
        else:
            tried.append(f"pyenv prefix {version}")
    return Missing(version=version, tried=tuple(tried))
