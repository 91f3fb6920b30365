"""The ONNX graphs of this area, built with the onnx package at render time (no downloaded models),
and what each must compute: the cases and the project's own tests (with onnxruntime) share this."""

from __future__ import annotations

from pathlib import Path

import numpy as np

OPSET = 13
IR_VERSION = 8  # readable by the onnxruntime of every release in the matrix


def _save(graph, model_dir: Path) -> Path:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    target = model_dir / "1" / "model.onnx"
    target.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(target))
    return target


def identity(model_dir: Path) -> Path:
    """OUTPUT0 = INPUT0, FP32 [batch, 4]."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["INPUT0"], ["OUTPUT0"])], "identity",
        [helper.make_tensor_value_info("INPUT0", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("OUTPUT0", TensorProto.FLOAT, ["batch", 4])])
    return _save(graph, model_dir)


def add(model_dir: Path) -> Path:
    """OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1, FP32 [batch, 4]."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["INPUT0", "INPUT1"], ["OUTPUT0"]),
         helper.make_node("Sub", ["INPUT0", "INPUT1"], ["OUTPUT1"])], "add_sub",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", 4]) for n in ("INPUT0", "INPUT1")],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", 4]) for n in ("OUTPUT0", "OUTPUT1")])
    return _save(graph, model_dir)


def dynamic(model_dir: Path) -> Path:
    """OUTPUT0 = relu(INPUT0) for any [batch, n] shape."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["INPUT0"], ["OUTPUT0"])], "dynamic_relu",
        [helper.make_tensor_value_info("INPUT0", TensorProto.FLOAT, ["batch", "n"])],
        [helper.make_tensor_value_info("OUTPUT0", TensorProto.FLOAT, ["batch", "n"])])
    return _save(graph, model_dir)


def expected(kind: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What the graph of ``kind`` must answer for ``inputs``."""
    if kind == "identity":
        return {"OUTPUT0": inputs["INPUT0"]}
    if kind == "add":
        return {"OUTPUT0": inputs["INPUT0"] + inputs["INPUT1"], "OUTPUT1": inputs["INPUT0"] - inputs["INPUT1"]}
    if kind == "dynamic":
        return {"OUTPUT0": np.maximum(inputs["INPUT0"], 0)}
    raise ValueError(kind)


BUILDERS = {"identity": identity, "add": add, "dynamic": dynamic}
