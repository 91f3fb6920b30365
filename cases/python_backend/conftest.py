"""Fixtures of the python backend area (the helpers they use are in pb_helpers.py)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pb_helpers import BoundedClient, Models, bounded_client_for, release_key


@pytest.fixture
def bounded_client(request: pytest.FixtureRequest, triton: Any) -> Iterator[BoundedClient]:
    """The case's ``client`` protocol again, with every request bounded in time: where a broken
    server would hang a request, the case fails with a timeout instead of hanging."""
    protocol = request.getfixturevalue("client").protocol
    bounded = bounded_client_for(triton, protocol)
    yield bounded
    bounded.close()


@pytest.fixture
def release_is(release: Any) -> Callable[[str], bool]:
    """``release_is(">=24.03")``: compares the cell's release (operators >=, <=, >, <, ==)."""

    def check(expr: str) -> bool:
        op, value = re.fullmatch(r"(>=|<=|<|>|==)\s*(\d\d\.\d\d)", expr).groups()
        mine, other = release_key(release.name), release_key(value)
        return {">=": mine >= other, "<=": mine <= other, ">": mine > other, "<": mine < other,
                "==": mine == other}[op]

    return check


@pytest.fixture
def loader(triton: Any) -> Iterator[Models]:
    """Per-case model loading on the cell's server; unloads at the end, waiting for the stubs."""
    models = Models(triton)
    yield models
    models.close()


@pytest.fixture
def private_loader() -> Iterator[Callable[[Any], Models]]:
    """``private_loader(server)``: the same, on a server started by ``triton_factory``."""
    made: list[Models] = []

    def make(server: Any) -> Models:
        models = Models(server)
        made.append(models)
        return models

    yield make
    for models in made:
        models.close()
