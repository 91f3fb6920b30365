"""Fixtures of the custom-backend area (cases/custom_backend)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def kind(cell: Any) -> str:
    """The instance-group kind of the cell, for configs a case writes itself."""
    return "KIND_GPU" if cell.gpu else "KIND_CPU"
