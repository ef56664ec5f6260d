"""ONNX files for tests: a module exported as the trusted side exports it, and the hand-built
graphs of the hostile cases (checked by runtime/artifacts in tests/runtime, refused through the
job runner in tests/jobs)."""

import io
import warnings

import numpy as np
import torch
from onnx import TensorProto, helper, numpy_helper


def onnx_export(module: torch.nn.Module, sample: torch.Tensor) -> bytes:
    """`module` as the trusted side exports it: input "input", output "probabilities", a
    dynamic batch axis, opset 17."""
    module.eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the legacy exporter's deprecation notice
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            sample,
            buffer,
            input_names=["input"],
            output_names=["probabilities"],
            dynamic_axes={"input": {0: "batch"}, "probabilities": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    return buffer.getvalue()


def weight(name="w"):
    return numpy_helper.from_array(np.ones((2, 2), dtype=np.float32), name)


def model_bytes(
    *,
    nodes=None,
    initializers=None,
    inputs=None,
    outputs=None,
    opset=17,
    ir_version=8,
    opsets=None,
    functions=(),
    sparse=(),
) -> bytes:
    """A small valid model (input [batch, 2] -> Gemm -> Softmax -> [batch, 2]) with parts
    replaced."""
    nodes = nodes if nodes is not None else []
    nodes = [
        *nodes,
        helper.make_node("Gemm", ["input", "w"], ["scores"], name="gemm"),
        helper.make_node("Softmax", ["scores"], ["probabilities"], name="softmax"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        inputs or [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 2])],
        outputs
        or [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 2])],
        initializer=[weight(), *(initializers or [])],
        sparse_initializer=list(sparse),
    )
    model = helper.make_model(
        graph,
        opset_imports=opsets or [helper.make_opsetid("", opset)],
        ir_version=ir_version,
        functions=list(functions),
    )
    return model.SerializeToString()


def huge_initializer_model() -> bytes:
    """An initializer declaring 2 GiB (float32 [2**29]) that holds no data at all."""
    huge = TensorProto(name="huge", data_type=TensorProto.FLOAT, dims=[2**29])
    return model_bytes(initializers=[huge])


def custom_domain_node():
    return helper.make_node("Evil", ["input"], ["x"], name="evil", domain="com.evil")


def external_data_model() -> bytes:
    """An initializer whose data is "outside the file", at ../../etc/passwd."""
    tensor = TensorProto(name="outside", data_type=TensorProto.FLOAT, dims=[4])
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    return model_bytes(initializers=[tensor])


def huge_loop_model(*, name: str | None = "loop") -> bytes:
    """A Loop whose trip count is 2**62."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, [])],
    )
    trips = helper.make_node(
        "Constant",
        [],
        ["trips"],
        name="trips",
        value=helper.make_tensor("t", TensorProto.INT64, [], [2**62]),
    )
    loop = helper.make_node("Loop", ["trips", ""], [], name=name, body=body)
    return model_bytes(nodes=[trips, loop])


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def million_nodes_model() -> bytes:
    """A million Relu nodes, built as bytes: the graph message once more, which protobuf merges
    into the first, appending its nodes."""
    node = helper.make_node("Relu", ["input"], ["input"]).SerializeToString()
    field = b"\x0a" + varint(len(node)) + node  # GraphProto.node = 1
    nodes = field * 1_000_000
    return model_bytes() + b"\x3a" + varint(len(nodes)) + nodes  # ModelProto.graph = 7
