"""The python backend cases catch a broken model: a stub that dies (os._exit) on its third request
fails the case that sends several requests, the cell's JUnit file shows it FAILED with the server
log written during the case, and no tritonserver or stub process of that run is left.

A real cell (24.10, Python 3.11) runs in a subprocess, as a user runs it, over a case library made
here, with a matrix file of its own (so the repository's matrix.toml can change freely).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import triton_processes

junitparser = pytest.importorskip("junitparser")

ROOT = Path(__file__).resolve().parent.parent
CELL = "24.10-python-cpu-py3.11"

MATRIX = """\
runner = "local"

[axes]
triton = ["24.10"]
backend = ["python"]
instance_kind = ["cpu"]
python = ["3.11"]

[releases."24.10"]
server_version = "2.51.0"
pytriton = "0.7.0"
image = "nvcr.io/nvidia/tritonserver:24.10-py3"
pythons = ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]

[settings]
start_timeout = 60
load_timeout = 60
case_timeout = 120
stop_timeout = 10
"""

CONFIG = """\
name: "pb_dies_third"
backend: "python"
max_batch_size: 0
input [ { name: "IN" data_type: TYPE_INT32 dims: [ 1 ] } ]
output [ { name: "OUT" data_type: TYPE_INT32 dims: [ 1 ] } ]
instance_group [ { kind: ${kind} count: 1 } ]
"""

MODEL = '''\
"""Serves OUT = IN twice; the stub dies on its third request, before answering it."""

import os

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.seen = 0

    def execute(self, requests):
        self.seen += len(requests)
        if self.seen >= 3:
            print(f"PB_DIES_THIRD request {self.seen}: the stub exits now", flush=True)
            os._exit(1)
        return [pb_utils.InferenceResponse(output_tensors=[
            pb_utils.Tensor("OUT", pb_utils.get_input_tensor_by_name(r, "IN").as_numpy())]) for r in requests]
'''

CASE = '''\
import numpy as np
import pytest

pytestmark = [pytest.mark.backend("python"), pytest.mark.models("pb_dies_third")]


def test_several_requests(triton):
    client = triton.http_client(network_timeout=15, connection_timeout=15)
    try:
        for i in range(5):
            tensor = client_module().InferInput("IN", [1], "INT32")
            tensor.set_data_from_numpy(np.array([i], dtype=np.int32))
            result = client.infer("pb_dies_third", [tensor])
            assert result.as_numpy("OUT").tolist() == [i]
    finally:
        client.close()


def client_module():
    import tritonclient.http

    return tritonclient.http
'''


def write_library(root: Path) -> Path:
    area = root / "broken_python"
    model = area / "models" / "pb_dies_third"
    (model / "1").mkdir(parents=True)
    (model / "config.pbtxt").write_text(CONFIG)
    (model / "1" / "model.py").write_text(MODEL)
    (area / "test_dying_stub.py").write_text(CASE)
    return root


def test_dying_stub_fails_the_case_with_its_server_log(tmp_path: Path) -> None:
    library = write_library(tmp_path / "library")
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(MATRIX)
    reports = tmp_path / "reports"
    marker = uuid.uuid4().hex
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TRITON_MATRIX_TEST": marker, "TMPDIR": str(scratch)}
    env.pop("TRITON_MATRIX", None)
    done = subprocess.run(
        [sys.executable, "-m", "harness", "cell", CELL, "--matrix", str(matrix), "--cases", str(library),
         "--reports", str(reports)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    output = (done.stdout + done.stderr)[-4000:]
    assert done.returncode == 1, f"exit code {done.returncode} (1 = a case failed):\n{output}"

    junit = reports / "junit" / f"{CELL}.xml"
    assert junit.is_file(), output
    cases = [case for suite in junitparser.JUnitXml.fromfile(str(junit)) for case in suite]
    runs = [c for c in cases if c.name == "test_several_requests"]
    assert runs, f"no testcase test_several_requests in {junit}"
    case = runs[-1]  # a failed case runs once more (--reruns); the last run is its outcome
    results = case.result
    assert results and isinstance(results[0], junitparser.Failure), f"not FAILED: {results}\n{output}"
    assert "is not healthy" in (results[0].message or ""), results[0].message
    log = case.system_out or ""
    assert "loading: pb_dies_third" in log, log[-2000:]
    assert "PB_DIES_THIRD request 3: the stub exits now" in log, log[-2000:]

    assert not triton_processes(marker), "processes of the run are left"
