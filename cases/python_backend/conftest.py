"""Fixtures of the python backend area (the helpers they use are in pb_helpers.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pb_helpers import BoundedClient, Models, bounded_client_for


@pytest.fixture
def bounded_client(request: pytest.FixtureRequest, triton: Any) -> Iterator[BoundedClient]:
    """The case's ``client`` protocol again, with every request bounded in time: where a broken
    server would hang a request, the case fails with a timeout instead of hanging."""
    protocol = request.getfixturevalue("client").protocol
    bounded = bounded_client_for(triton, protocol)
    yield bounded
    bounded.close()


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
