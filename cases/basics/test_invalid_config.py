"""A broken config.pbtxt must be refused at load, with the protobuf parser's message."""

import pytest

pytestmark = pytest.mark.backend("python")


def test_unknown_data_type_is_refused(triton, loader):
    result = loader.load("invalid_dtype")
    assert result.error is not None, "the model loaded although its data_type is TYPE_FOO"
    # The load response only says the repository could not be polled; the parser's message
    # naming the bad value is in the log lines written during this load.
    assert "failed to load" in result.error or "failed to poll" in result.error, result.error
    assert "TYPE_FOO" in result.log, result.log[-2000:]
