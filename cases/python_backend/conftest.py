"""Fixtures of the python backend area (the helpers they use are in pb_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pb_helpers import BoundedClient, bounded_client_for


@pytest.fixture
def bounded_client(request: pytest.FixtureRequest, triton: Any) -> Iterator[BoundedClient]:
    """The case's ``client`` protocol again, with every request bounded in time: where a broken
    server would hang a request, the case fails with a timeout instead of hanging."""
    protocol = request.getfixturevalue("client").protocol
    bounded = bounded_client_for(triton, protocol)
    yield bounded
    bounded.close()
