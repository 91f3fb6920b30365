"""The ONNX models the onnxruntime cases generate, and the answers the cases expect, checked here
with the onnx and onnxruntime packages (no Triton onnxruntime backend is needed for this)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from harness import repository
from harness.matrix import Cell

AREA = ROOT / "cases" / "onnx"
sys.path.insert(0, str(AREA))
import onnx_graphs  # noqa: E402

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is in requirements-dev.txt")


def run(model: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs)))


@pytest.mark.parametrize("kind", sorted(onnx_graphs.BUILDERS))
def test_generated_graph_computes_what_the_cases_expect(kind: str, tmp_path: Path) -> None:
    model = onnx_graphs.BUILDERS[kind](tmp_path)
    assert model == tmp_path / "1" / "model.onnx"
    rng = np.random.default_rng(7)
    width = 4 if kind != "dynamic" else 9
    inputs = {"INPUT0": rng.standard_normal((3, width), dtype=np.float32)}
    if kind == "add":
        inputs["INPUT1"] = rng.standard_normal((3, width), dtype=np.float32)
    got = run(model, inputs)
    want = onnx_graphs.expected(kind, inputs)
    assert set(got) == set(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])


def test_render_generates_the_models_for_a_cell(tmp_path: Path) -> None:
    cell = Cell(triton="24.10", backend="onnxruntime", instance_kind="cpu", python="3.11")
    models = repository.render([ROOT / "cases"], cell, tmp_path / "repo")
    onnx_models = sorted(name for name in models if name.startswith("onnx_"))
    assert onnx_models == ["onnx_accelerators", "onnx_add", "onnx_autocomplete", "onnx_dynamic", "onnx_identity"]
    for name in onnx_models:
        assert (tmp_path / "repo" / name / "1" / "model.onnx").stat().st_size > 0, name
        assert not (tmp_path / "repo" / name / "generate.py").exists()
    assert "KIND_CPU" in (tmp_path / "repo" / "onnx_identity" / "config.pbtxt").read_text()
