"""Fixtures of the custom-backend area (cases/custom_backend)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def kind(cell: Any) -> str:
    """The instance-group kind of the cell, for configs a case writes itself."""
    return "KIND_GPU" if cell.gpu else "KIND_CPU"


@pytest.fixture
def loaded(triton: Any) -> Iterator[Any]:
    """``loaded(name, config)``: load a model with a config of the case's own, unloaded after the case.

    A load failure fails the case with the server's message.
    """
    names: list[str] = []

    def load(name: str, config: str) -> Any:
        result = triton.load(name, config=config)
        if result.error is not None:
            pytest.fail(f"model {name!r} failed to load: {result.error}", pytrace=False)
        names.append(name)
        return result

    yield load
    for name in names:
        with contextlib.suppress(Exception):
            triton.unload(name)
