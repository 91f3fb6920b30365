"""PyTorch (libtorch) backend: a TorchScript module saved at render time loads and answers exactly.

Runs in pytorch cells (the NGC release images, with torch in the cell's venv to save the module);
where the server has no pytorch backend the cell is not applicable, found from its backend folder.
"""

from __future__ import annotations

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

pytestmark = [pytest.mark.backend("pytorch"), pytest.mark.models("pt_add_sub")]

A = np.array([[1.5, -2.0, 3.25, 0.0], [4.0, 5.0, -6.0, 7.5]], dtype=np.float32)
B = np.array([[0.5, 2.0, -0.25, 1.0], [1.0, 1.0, 1.0, 1.0]], dtype=np.float32)


def test_add_sub_is_exact(client):
    out = client.infer("pt_add_sub", {"INPUT__0": A, "INPUT__1": B})
    np.testing.assert_array_equal(out["OUTPUT__0"], A + B)
    np.testing.assert_array_equal(out["OUTPUT__1"], A - B)


def test_batch_of_one(client):
    """A batch of one row: both outputs exact, of shape (1, 4)."""
    out = client.infer("pt_add_sub", {"INPUT__0": A[:1], "INPUT__1": B[:1]})
    assert out["OUTPUT__0"].shape == (1, 4) and out["OUTPUT__1"].shape == (1, 4)
    np.testing.assert_array_equal(out["OUTPUT__0"], A[:1] + B[:1])
    np.testing.assert_array_equal(out["OUTPUT__1"], A[:1] - B[:1])


def test_full_batch_is_exact_and_a_larger_one_is_refused(client):
    """max_batch_size 8 is enforced: 8 rows are served exactly, 9 are refused naming the limit."""
    a, b = np.tile(A, (4, 1)), np.tile(B, (4, 1))  # 8 rows
    out = client.infer("pt_add_sub", {"INPUT__0": a, "INPUT__1": b})
    np.testing.assert_array_equal(out["OUTPUT__0"], a + b)
    np.testing.assert_array_equal(out["OUTPUT__1"], a - b)
    nine = np.vstack([a, A[:1]])
    with pytest.raises(InferenceServerException, match="batch-size must be <= 8"):
        client.infer("pt_add_sub", {"INPUT__0": nine, "INPUT__1": np.vstack([b, B[:1]])})
