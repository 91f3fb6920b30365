"""triton-matrix: run a case library against real Triton servers across a matrix of cells."""

from harness.errors import HarnessError

__all__ = ["HarnessError"]
