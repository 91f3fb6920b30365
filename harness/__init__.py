"""triton-matrix: run a case library against real Triton servers across a matrix of cells."""

from pathlib import Path

from harness.errors import HarnessError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The checkout: matrix.toml, cases/, images/ and harness/ itself (every room finds them from here)."""

__all__ = ["HarnessError", "PROJECT_ROOT"]
