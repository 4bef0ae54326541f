"""Test fixtures for edge-runtime: freeze a real model's symbolic dims, and build a small model.

Usage:
  fixtures.py freeze SRC.onnx DST.onnx 1,3,48,192   # inputs get this shape, outputs' batch dim follows
  fixtures.py small DST.onnx                        # two inputs (FP32, INT64), two outputs (FP32, BOOL)
  fixtures.py add DST.onnx                          # z = x + y over free dims n and m (fails at run time if n != m)
  fixtures.py half DST.onnx                         # y = relu(h) * [0.5, 1, 2], all FP16
  fixtures.py bfloat DST.onnx                       # y = bf16(float(x) * [0.5, 1, 2]), BF16 in and out
  fixtures.py strings DST.onnx                      # ai.onnx.ml LabelEncoder both ways + the words echoed
  fixtures.py infer MODEL.onnx INPUTS.json          # the host's onnxruntime on named inputs; outputs as JSON

Outputs are written to a temporary name and renamed, so a cache never holds half a file.
Needs the `onnx` package; installs it with pip when missing (the Rust tests call this script).
"""

import os
import subprocess
import sys


def ensure_onnx():
    try:
        import onnx  # noqa: F401
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "onnx"])


def save(model, dst):
    import onnx

    onnx.checker.check_model(model)
    tmp = dst + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, dst)


def save_graph(graph, dst):
    """A model of `graph` at opset 13, IR version 8 (what both engines read), saved to `dst`."""
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    save(model, dst)


def is_concrete(dim):
    return dim.HasField("dim_value") and dim.dim_value > 0


def freeze(src, dst, shape):
    import onnx

    model = onnx.load(src)
    graph_inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    if len(graph_inputs) != 1:
        sys.exit(f"freeze expects a single-input model, {src} has {len(graph_inputs)}")
    dims = graph_inputs[0].type.tensor_type.shape.dim
    if len(dims) != len(shape):
        sys.exit(f"input has rank {len(dims)}, shape {shape} has rank {len(shape)}")
    for dim, value in zip(dims, shape):
        dim.Clear()
        dim.dim_value = value
    # Classifier-style outputs: the only free dim is the batch (first) one, which follows the input's.
    for output in model.graph.output:
        for index, dim in enumerate(output.type.tensor_type.shape.dim):
            if not is_concrete(dim):
                if index != 0:
                    sys.exit(f"output {output.name} has a free non-batch dim {index}; cannot freeze it")
                dim.Clear()
                dim.dim_value = shape[0]
    save(model, dst)


def small(dst):
    from onnx import TensorProto, helper

    # sum = relu(a + float(b)) * scale; positive = a > 0. Exercises FP32, INT64 and BOOL tensors.
    nodes = [
        helper.make_node("Cast", ["b"], ["b_float"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["a", "b_float"], ["added"]),
        helper.make_node("Relu", ["added"], ["relu"]),
        helper.make_node("Mul", ["relu", "scale"], ["sum"]),
        helper.make_node("Greater", ["a", "zero"], ["positive"]),
    ]
    graph = helper.make_graph(
        nodes,
        "edge_small",
        inputs=[
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 3]),
            helper.make_tensor_value_info("b", TensorProto.INT64, [2, 3]),
        ],
        outputs=[
            helper.make_tensor_value_info("sum", TensorProto.FLOAT, [2, 3]),
            helper.make_tensor_value_info("positive", TensorProto.BOOL, [2, 3]),
        ],
        initializer=[
            helper.make_tensor("scale", TensorProto.FLOAT, [3], [0.5, 1.0, 2.0]),
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        ],
    )
    save_graph(graph, dst)


def add(dst):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "y"], ["z"])],
        "edge_add",
        inputs=[
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"]),
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m"]),
        ],
        outputs=[helper.make_tensor_value_info("z", TensorProto.FLOAT, ["k"])],
    )
    save_graph(graph, dst)


def half(dst):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["h"], ["relu"]),
            helper.make_node("Mul", ["relu", "scale"], ["y"]),
        ],
        "edge_half",
        inputs=[helper.make_tensor_value_info("h", TensorProto.FLOAT16, [2, 3])],
        outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT16, [2, 3])],
        initializer=[helper.make_tensor("scale", TensorProto.FLOAT16, [3], [0.5, 1.0, 2.0])],
    )
    save_graph(graph, dst)


def bfloat(dst):
    from onnx import TensorProto, helper

    # ONNX Runtime's CPU kernels take BF16 in Cast, so the arithmetic is FP32 between two casts.
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["xf", "scale"], ["product"]),
            helper.make_node("Cast", ["product"], ["y"], to=TensorProto.BFLOAT16),
        ],
        "edge_bfloat",
        inputs=[helper.make_tensor_value_info("x", TensorProto.BFLOAT16, [2, 3])],
        outputs=[helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [2, 3])],
        initializer=[helper.make_tensor("scale", TensorProto.FLOAT, [3], [0.5, 1.0, 2.0])],
    )
    save_graph(graph, dst)


# The vocabulary of the `strings` model, in id order; an unknown word is id -1, an unknown id "<unk>".
WORDS = ["zero", "one", "two", "three", "vier", "五"]


def strings(dst):
    from onnx import TensorProto, helper

    # ai.onnx.ml's LabelEncoder, as classical-ML pipelines (scikit-learn's) export it: words ->
    # ids and ids -> names; and the words back unchanged. (No StringNormalizer: ONNX Runtime's
    # needs the en_US.UTF-8 locale installed, which neither these hosts nor the images have.)
    nodes = [
        helper.make_node("LabelEncoder", ["words"], ["ids"], domain="ai.onnx.ml",
                         keys_strings=WORDS, values_int64s=list(range(len(WORDS))), default_int64=-1),
        helper.make_node("LabelEncoder", ["codes"], ["names"], domain="ai.onnx.ml",
                         keys_int64s=list(range(len(WORDS))), values_strings=WORDS, default_string="<unk>"),
        helper.make_node("Identity", ["words"], ["echo"]),
    ]
    graph = helper.make_graph(
        nodes,
        "edge_strings",
        inputs=[
            helper.make_tensor_value_info("words", TensorProto.STRING, ["n"]),
            helper.make_tensor_value_info("codes", TensorProto.INT64, ["m"]),
        ],
        outputs=[
            helper.make_tensor_value_info("ids", TensorProto.INT64, ["n"]),
            helper.make_tensor_value_info("names", TensorProto.STRING, ["m"]),
            helper.make_tensor_value_info("echo", TensorProto.STRING, ["n"]),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("ai.onnx.ml", 2)]
    )
    model.ir_version = 8
    save(model, dst)


def infer(model, inputs):
    """Prints the host onnxruntime's outputs for `inputs` ({name: [values]}, 1-D) as JSON."""
    import json

    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    types = {"tensor(string)": object, "tensor(int64)": np.int64, "tensor(float)": np.float32}
    feed = {i.name: np.array(inputs[i.name], dtype=types[i.type]) for i in session.get_inputs()}
    names = [o.name for o in session.get_outputs()]
    outputs = session.run(names, feed)
    print(json.dumps({n: o.tolist() for n, o in zip(names, outputs)}, ensure_ascii=False))


def main(argv):
    ensure_onnx()
    if len(argv) == 5 and argv[1] == "freeze":
        freeze(argv[2], argv[3], [int(d) for d in argv[4].split(",")])
    elif len(argv) == 3 and argv[1] == "small":
        small(argv[2])
    elif len(argv) == 3 and argv[1] == "add":
        add(argv[2])
    elif len(argv) == 3 and argv[1] == "half":
        half(argv[2])
    elif len(argv) == 3 and argv[1] == "bfloat":
        bfloat(argv[2])
    elif len(argv) == 3 and argv[1] == "strings":
        strings(argv[2])
    elif len(argv) == 4 and argv[1] == "infer":
        import json

        with open(argv[3], encoding="utf-8") as f:
            infer(argv[2], json.load(f))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
