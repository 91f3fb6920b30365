"""Reports, from inside the stub: the interpreter's version, and which numpy it imported (version and
file), so a case can compare them with the cell's Python axis and the cell's venv."""

import sys

import numpy as np
import triton_python_backend_utils as pb_utils


def _string(name, text):
    return pb_utils.Tensor(name, np.array([text.encode()], dtype=np.object_))


class TritonPythonModel:
    def execute(self, requests):
        version = ".".join(str(part) for part in sys.version_info[:3])
        return [pb_utils.InferenceResponse(output_tensors=[
            _string("PYTHON", version), _string("NUMPY", np.__version__), _string("NUMPY_FILE", np.__file__)])
            for _ in requests]
