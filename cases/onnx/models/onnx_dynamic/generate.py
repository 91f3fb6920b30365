"""Writes 1/model.onnx (dynamic graph) when the repository is rendered."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from onnx_graphs import dynamic  # noqa: E402


def generate(model_dir):
    dynamic(Path(model_dir))
