"""ONNX graphs of fitted models: the names a family's graph uses and the layers dense families are made of.

A family describes itself with ``MnistlabModel.onnx_graph()``: a graph whose input ``x``
is what ``predict_proba`` takes (float32 N×784 in [0, 1]) and whose output
``probabilities`` is what it gives (float32 N×classes). The pixels' scaling in front of
it is the same for every family, so the export adds it (``inference.onnx_file``).

``onnx`` is imported by these functions only, so a family loads without it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import N_FEATURES

INPUT, OUTPUT = "x", "probabilities"
OPSET = 17  # read by onnxruntime (onnxruntime-web too) and written by PyTorch's exporter
IR_VERSION = 8  # the IR version that goes with opset 17, so that older runtimes read the file
# onnx operator of each hidden-layer activation, by the names the families use
ACTIVATIONS = {"relu": "Relu", "tanh": "Tanh", "logistic": "Sigmoid", "identity": "Identity"}


def model_of(graph):
    """A graph as a model of the opset and IR version above."""
    from onnx import helper

    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                             producer_name="mnistlab")


def dense_graph(layers: Sequence[tuple[np.ndarray, np.ndarray]], activation: str = "relu", binary: bool = False,
                mean: np.ndarray | None = None, scale: np.ndarray | None = None):
    """Dense layers ``a ← act(a·W + b)`` (W: n_in × n_out) then softmax, as an ONNX model.

    ``activation`` (a key of ACTIVATIONS) follows every layer but the last. ``binary``: the
    last layer gives one logit z, and the probabilities are [1 − σ(z), σ(z)]. ``mean`` and
    ``scale``: the input is first standardised, (x − mean) / scale, as the family does it.
    Everything is float32, as the families compute.
    """
    from onnx import TensorProto, helper, numpy_helper

    weights, nodes, current = [], [], INPUT

    def constant(name: str, value) -> str:
        weights.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attributes) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    if mean is not None:
        current = node("Sub", [current, constant("mean", mean)], "centred")
        current = node("Div", [current, constant("scale", scale)], "standardised")
    for layer, (W, b) in enumerate(layers, start=1):
        current = node("MatMul", [current, constant(f"W{layer}", W)], f"matmul{layer}")
        current = node("Add", [current, constant(f"b{layer}", b)], f"z{layer}")
        if layer < len(layers):
            current = node(ACTIVATIONS[activation], [current], f"a{layer}")
    if binary:
        p = node("Sigmoid", [current], "p")
        node("Concat", [node("Sub", [constant("one", 1.0), p], "q"), p], OUTPUT, axis=1)
    else:
        node("Softmax", [current], OUTPUT, axis=1)
    n_classes = 2 if binary else int(np.shape(layers[-1][0])[1])
    graph = helper.make_graph(
        nodes, "mnistlab", [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", N_FEATURES])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["N", n_classes])], initializer=weights)
    return model_of(graph)
