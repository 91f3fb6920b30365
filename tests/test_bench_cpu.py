"""bench.cpu: the CPU seconds of a process whose parent ended first still count (the stub of a killed
server). Run in a child Python, so that pytest itself never becomes a subreaper."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.fast  # no server, no venv, no container

# A shell that leaves a 0.3 s CPU burner behind and ends at once: the burner is orphaned. It says when
# it is done by its marker file; only an adopted one is then waited for here.
ORPHAN_SCRIPT = """
import os, subprocess, sys, tempfile, time
from bench import cpu
adopted = {adopt}
if adopted:
    assert cpu.adopt_orphans()
marker = os.path.join(tempfile.mkdtemp(), "done")
burn = f"import time; t = time.process_time(); exec('while time.process_time() - t < 0.3: pass'); open('{{marker}}', 'w')"
before = cpu.children_cpu_s()
subprocess.run(["sh", "-c", f"{{sys.executable}} -c \\"{{burn}}\\" & exit 0"], check=True)
deadline = time.monotonic() + 20
while not os.path.exists(marker) and time.monotonic() < deadline:
    time.sleep(0.05)
while adopted and not cpu.reap_orphans() and time.monotonic() < deadline:
    time.sleep(0.05)
print(cpu.children_cpu_s() - before)
"""


def orphan_cpu_s(adopt: bool) -> float:
    done = subprocess.run([sys.executable, "-c", ORPHAN_SCRIPT.format(adopt=adopt)], cwd=ROOT,
                          capture_output=True, text=True, check=True, timeout=30)
    return float(done.stdout.strip())


def test_an_orphan_s_cpu_seconds_count_once_adopted() -> None:
    assert orphan_cpu_s(adopt=True) >= 0.25
    assert orphan_cpu_s(adopt=False) < 0.1, "without adoption init waits for it: its seconds are lost"
