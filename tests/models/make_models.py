"""Makes the project's small ONNX models, deterministically (seeded weights, fixed metadata).

    python tests/models/make_models.py [OUT_DIR]   # (re)writes tiny-mlp.onnx and fixtures/*.onnx

Needs the `onnx` and `numpy` packages (the test venv in ~/.cache/edgeimg/venv has them).

tiny-mlp.onnx: the served example model; tiny-mlp-v2.onnx the same network with other weights
(its update). x FP32 [N, 16] -> Gemm -> Relu -> MatMul + Add -> Relu
-> Gemm -> Softmax -> probs FP32 [N, 4], with the symbolic batch N also in value_info.
fixtures/: tiny models that exercise edge cases of model preparation.
"""

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
OUT = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else HERE
OPSET = 13  # tract and ONNX Runtime both run opset 13 fully
IR_VERSION = 8


def save(graph, path):
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="edgeimg-make-models",
        producer_version="1",
        ir_version=IR_VERSION,
    )
    onnx.checker.check_model(model, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    print(f"{path.relative_to(OUT)}: {path.stat().st_size} bytes")


def weight(rng, name, *shape):
    scale = 1.0 / np.sqrt(shape[0])
    return numpy_helper.from_array(rng.normal(0.0, scale, shape).astype(np.float32), name)


def tiny_mlp(seed=20251125, file="tiny-mlp.onnx"):
    rng = np.random.default_rng(seed)
    initializers = [
        weight(rng, "fc1.weight", 32, 16),  # Gemm with transB=1: stored [out, in]
        weight(rng, "fc1.bias", 32),
        weight(rng, "fc2.weight", 32, 32),
        weight(rng, "fc2.bias", 32),
        weight(rng, "head.weight", 32, 4),
        weight(rng, "head.bias", 4),
    ]
    nodes = [
        helper.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["h1"], transB=1),
        helper.make_node("Relu", ["h1"], ["a1"]),
        helper.make_node("MatMul", ["a1", "fc2.weight"], ["h2"]),
        helper.make_node("Add", ["h2", "fc2.bias"], ["h2b"]),
        helper.make_node("Relu", ["h2b"], ["a2"]),
        helper.make_node("Gemm", ["a2", "head.weight", "head.bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 4])],
        initializer=initializers,
    )
    # Shape inference writes value_info with the symbol N, which freezing must fix too.
    inferred = onnx.shape_inference.infer_shapes(helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION))
    graph.value_info.extend(inferred.graph.value_info)
    save(graph, OUT / file)


def string_input():
    graph = helper.make_graph(
        [helper.make_node("Identity", ["text"], ["same"])],
        "string_input",
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["N"])],
        [helper.make_tensor_value_info("same", TensorProto.STRING, ["N"])],
    )
    save(graph, OUT / "fixtures" / "string-input.onnx")


def two_inputs():
    """a, b [N, 8] share the batch N; w is a weight that older exporters also list as input."""
    w = numpy_helper.from_array(np.linspace(0.5, 2.0, 8, dtype=np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["a", "b"], ["ab"]),
            helper.make_node("Mul", ["ab", "w"], ["sum"]),
        ],
        "two_inputs",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 8]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 8]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, [8]),
        ],
        [helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["N", "width"])],
        initializer=[w],
        value_info=[helper.make_tensor_value_info("ab", TensorProto.FLOAT, ["N", 8])],
    )
    save(graph, OUT / "fixtures" / "two-inputs.onnx")


if __name__ == "__main__":
    tiny_mlp()
    # The same signature with other weights: a model update (edge-runtime's repository API).
    tiny_mlp(seed=20261202, file="tiny-mlp-v2.onnx")
    string_input()
    two_inputs()
