"""check_onnx and check_safetensors refuse every hostile file with a sentence that says what and
where, before anything large is allocated; each file is built small and fast with onnx.helper."""

import json
import struct
import tracemalloc

import pytest
from onnx import TensorProto, helper

from runtime.artifacts.check import (
    ALLOWED_OPERATORS,
    ArtifactInvalid,
    ArtifactLimits,
    check_onnx,
    check_safetensors,
)
from runtime.artifacts.export import export_onnx
from runtime.datasets import dataset_info
from runtime.spec import build_model, parse_spec
from runtime.spec.layers import LAYERS
from tests.onnx_support import (
    custom_domain_node,
    external_data_model,
    huge_initializer_model,
    huge_loop_model,
    million_nodes_model,
    model_bytes,
)

XOR = dataset_info("xor")  # vectors [2], two classes
DIGITS = dataset_info("digits")


def refused(data: bytes, **kwargs) -> str:
    with pytest.raises(ArtifactInvalid) as error:
        check_onnx(data, **kwargs)
    assert isinstance(error.value, ValueError)
    return error.value.message


def test_the_valid_model_passes():
    summary = check_onnx(model_bytes(), info=XOR)
    assert summary.operators == ("Gemm", "Softmax")
    assert (summary.node_count, summary.parameter_count) == (2, 4)
    assert summary.input_shape == ("batch", 2) and summary.output_shape == ("batch", 2)


def test_an_initializer_declaring_2_gb_is_refused_without_allocating_it():
    data = huge_initializer_model()  # no data at all
    assert len(data) < 1000
    tracemalloc.start()
    try:
        message = refused(data, info=XOR)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message == (
        'The initializer "huge" declares 2 GiB (float32 [536870912]); the most a tensor may hold '
        "is 64 MiB."
    )
    assert peak < 10 * 2**20


def test_an_initializer_holding_less_than_it_declares_is_refused():
    short = TensorProto(name="short", data_type=TensorProto.FLOAT, dims=[4], raw_data=b"\0" * 12)
    assert refused(model_bytes(initializers=[short])) == (
        'The initializer "short" declares 16 bytes of data (float32 [4]) but holds 12.'
    )


def test_a_custom_domain_operator_is_refused():
    node = custom_domain_node()
    assert refused(model_bytes(nodes=[node])) == (
        'Node 0 ("evil", Evil) is an operator of the domain "com.evil"; only the standard '
        "operators (the default domain) are accepted."
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.evil", 1)]
    assert refused(model_bytes(nodes=[node], opsets=opsets)) == (
        'The ONNX model imports operators of the domain "com.evil"; only the standard operators '
        "(the default domain) are accepted."
    )


def test_external_data_pointing_outside_is_refused():
    assert refused(external_data_model()) == (
        'The initializer "outside" keeps its data outside the file (external data, location '
        '"../../etc/passwd"); external data is not accepted.'
    )


def test_a_loop_with_a_huge_trip_count_is_refused():
    assert refused(huge_loop_model()) == (
        'Node 1 ("loop", Loop) is control flow; loops and conditionals (If, Loop, Scan) are not '
        "accepted, since they can run without bound."
    )


def test_a_million_nodes_are_refused_by_the_node_cap():
    data = million_nodes_model()
    assert len(data) < 64 * 2**20
    assert refused(data) == "The ONNX model has 1,000,002 nodes; the most accepted is 10,000."


def test_bytes_that_are_not_protobuf_are_refused():
    assert refused(b"not an onnx file at all") == (
        "The file is not an ONNX model: it cannot be read as an ONNX protobuf message."
    )


def test_a_file_over_the_size_cap_is_refused_before_it_is_parsed():
    assert refused(b"\0" * (65 * 2**20)) == (
        "The ONNX file is 65 MiB; the most accepted is 64 MiB."
    )
    small = ArtifactLimits(max_onnx_bytes=1024)
    assert refused(b"\0" * 2048, limits=small) == (
        "The ONNX file is 2 KiB; the most accepted is 1 KiB."
    )


@pytest.mark.parametrize("opset", [12, 18])
def test_an_opset_outside_the_range_is_refused(opset):
    assert refused(model_bytes(opset=opset)) == (
        f"The ONNX model uses opset {opset}; accepted are opsets 13 to 17."
    )


def test_an_ir_version_outside_the_range_is_refused():
    assert refused(model_bytes(ir_version=11)) == (
        "The ONNX model has IR version 11; accepted are versions 7 to 9."
    )


def test_a_function_proto_is_refused():
    function = helper.make_function(
        "local", "double", ["x"], ["y"], [helper.make_node("Add", ["x", "x"], ["y"])], []
    )
    opsets = [helper.make_opsetid("", 17)]
    assert refused(model_bytes(functions=[function], opsets=opsets)) == (
        'The ONNX model defines functions (the first is "double"); model-local functions are not '
        "accepted."
    )


def test_a_sparse_initializer_is_refused():
    values = helper.make_tensor("sparse", TensorProto.FLOAT, [1], [1.0])
    indices = helper.make_tensor("indices", TensorProto.INT64, [1], [0])
    sparse = helper.make_sparse_tensor(values, indices, [4])
    assert refused(model_bytes(sparse=[sparse])) == (
        'The ONNX model has a sparse initializer ("sparse"); sparse tensors are not accepted.'
    )


def test_a_constant_node_declaring_a_huge_tensor_is_refused():
    node = helper.make_node(
        "Constant",
        [],
        ["c"],
        name="c",
        value=TensorProto(name="v", data_type=TensorProto.FLOAT, dims=[2**31]),
    )
    assert refused(model_bytes(nodes=[node])) == (
        'The tensor of node 0 ("c", Constant) (attribute "value") declares 8 GiB (float32 '
        "[2147483648]); the most a tensor may hold is 64 MiB."
    )


def test_a_string_tensor_is_refused():
    node = helper.make_node("Constant", [], ["s"], name="s", value_strings=["a", "b"])
    assert refused(model_bytes(nodes=[node])) == (
        'Node 0 ("s", Constant) makes a tensor of strings (attribute "value_strings"); string '
        "tensors are not accepted."
    )


def test_a_subgraph_on_an_accepted_operator_is_refused():
    body = helper.make_graph([], "inner", [], [])
    node = helper.make_node("Relu", ["input"], ["r"], name="relu", hidden=body)
    assert refused(model_bytes(nodes=[node])) == (
        'Node 0 ("relu", Relu) has a subgraph (attribute "hidden"); subgraphs are not accepted.'
    )


def test_the_input_must_fit_the_dataset():
    assert refused(model_bytes(), info=DIGITS) == (
        'The input "input" has the shape [batch, 2]; it must be [batch, 64] for the digits dataset.'
    )
    tokens = [helper.make_tensor_value_info("input", TensorProto.INT64, ["batch", 2])]
    assert refused(model_bytes(inputs=tokens), info=XOR) == (
        'The input "input" is int64; it must be float32 for the xor dataset.'
    )
    fixed = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [0, 2])]
    assert refused(model_bytes(inputs=fixed), info=XOR) == (
        'The input "input" has the shape [0, 2]; it must be [batch, 2] for the xor dataset.'
    )


def test_two_inputs_are_refused():
    inputs = [
        helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 2]),
        helper.make_tensor_value_info("extra", TensorProto.FLOAT, ["batch", 2]),
    ]
    assert refused(model_bytes(inputs=inputs)) == (
        'The ONNX model has 2 inputs ("input", "extra"); it must have exactly one, the batch of '
        "samples."
    )


def test_the_output_must_be_one_probability_per_class():
    wide = [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3])]
    assert refused(model_bytes(outputs=wide), info=XOR) == (
        'The output "probabilities" has the shape [batch, 3]; it must be [batch, 2]: one '
        "probability per class for each sample."
    )


def test_an_unlisted_standard_operator_is_refused():
    node = helper.make_node("Det", ["w"], ["d"], name="det")
    assert "Det" not in ALLOWED_OPERATORS
    assert refused(model_bytes(nodes=[node])) == (
        'Node 0 ("det", Det) uses the operator "Det", which is not among the accepted operators '
        "(docs/runtime.md lists them)."
    )


def test_a_huge_tensor_computed_from_constants_is_refused_before_onnxruntime_folds_it():
    shape = helper.make_node(
        "Constant",
        [],
        ["shape"],
        name="shape",
        value=helper.make_tensor("s", TensorProto.INT64, [1], [10**10]),
    )
    grow = helper.make_node("ConstantOfShape", ["shape"], ["big"], name="grow")
    assert refused(model_bytes(nodes=[shape, grow])) == (
        'Node 1 ("grow", ConstantOfShape) computes from constants alone a tensor of 37.3 GiB; '
        "the most accepted is 64 MiB."
    )


def test_an_invalid_graph_is_refused_by_the_checker():
    node = helper.make_node("Relu", ["nowhere"], ["r"], name="relu")
    assert refused(model_bytes(nodes=[node])).startswith("The ONNX model is not valid: ")


SPEC_TRAINING = {"optimizer": {"type": "adam", "lr": 0.01}, "epochs": 1, "batch_size": 8}
LAYER_SPECS = [  # every spec layer type at least once
    (
        "shapes",
        [
            {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
            {"type": "batchnorm2d"},
            {"type": "gelu"},
            {"type": "avgpool2d", "kernel_size": 2},
            {
                "type": "residual",
                "layers": [
                    {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
                    {"type": "tanh"},
                ],
            },
            {"type": "maxpool2d", "kernel_size": 2},
            {"type": "adaptive_avgpool2d", "output_size": 2},
            {"type": "flatten"},
            {"type": "dropout"},
            {"type": "linear", "out_features": 8},
            {"type": "batchnorm1d"},
            {"type": "layernorm"},
            {"type": "sigmoid"},
            {"type": "relu"},
            {"type": "linear", "out_features": 10},
        ],
    ),
    (
        "sequences",
        [
            {"type": "embedding", "embedding_dim": 8},
            {"type": "transformer_encoder_layer", "nhead": 2},
            {"type": "transformer_encoder_layer", "nhead": 2, "activation": "gelu"},
            {"type": "rnn", "hidden_size": 8, "output": "all"},
            {
                "type": "gru",
                "hidden_size": 8,
                "num_layers": 2,
                "bidirectional": True,
                "output": "all",
            },
            {"type": "lstm", "hidden_size": 8, "bidirectional": True},
            {"type": "linear", "out_features": 6},
        ],
    ),
]


def test_every_spec_layer_type_exports_within_the_allow_list():
    seen = set()
    for name, layers in LAYER_SPECS:
        info = dataset_info(name)
        training = dict(SPEC_TRAINING)
        if info.kind == "image":  # per-channel normalisation too
            training["augment"] = {
                "normalize_mean": [0.4, 0.5, 0.6],
                "normalize_std": [0.2, 0.25, 0.3],
            }
        spec = parse_spec({"version": 1, "layers": layers, "training": training})
        summary = check_onnx(
            export_onnx(build_model(spec, info), info=info, training=spec.training), info=info
        )
        assert set(summary.operators) <= ALLOWED_OPERATORS
        seen |= {layer["type"] for layer in layers}
        seen |= {inner["type"] for layer in layers for inner in layer.get("layers", [])}
    assert seen == set(LAYERS)


# --- safetensors ----------------------------------------------------------------------------------


def safetensors_bytes(header: dict, data: bytes, *, length: int | None = None) -> bytes:
    encoded = json.dumps(header).encode()
    return struct.pack("<Q", len(encoded) if length is None else length) + encoded + data


def st_refused(data: bytes) -> str:
    with pytest.raises(ArtifactInvalid) as error:
        check_safetensors(data)
    return error.value.message


def test_a_valid_safetensors_file_passes():
    header = {
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "I64", "shape": [1], "data_offsets": [8, 16]},
        "__metadata__": {"format": "pt"},
    }
    summary = check_safetensors(safetensors_bytes(header, b"\0" * 16))
    assert (summary.tensor_count, summary.parameter_count, summary.dtypes) == (2, 3, ("F32", "I64"))


def test_a_header_longer_than_the_file_is_refused():
    data = safetensors_bytes({}, b"", length=10**6)
    assert st_refused(data) == (
        "The safetensors header declares 1,000,000 bytes, more than the file holds after its "
        "length (2)."
    )


def test_a_header_over_its_cap_is_refused():
    assert st_refused(struct.pack("<Q", 2**40) + b"{}") == (
        "The safetensors header declares 1024 GiB; the most accepted is 1 MiB."
    )


def test_a_header_that_is_not_json_is_refused():
    assert st_refused(struct.pack("<Q", 5) + b"{nope") == "The safetensors header is not JSON."


def test_overlapping_offsets_are_refused():
    header = {
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
    }
    assert st_refused(safetensors_bytes(header, b"\0" * 12)) == (
        'The safetensors tensor "b" starts at byte 4 of the data and overlaps the one before it '
        "(which ends at byte 8); tensors must follow each other."
    )


def test_offsets_out_of_range_are_refused():
    header = {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}
    assert st_refused(safetensors_bytes(header, b"\0" * 8)) == (
        'The safetensors tensor "a" has data_offsets [0, 16] outside the 8 bytes of data the '
        "file holds."
    )


def test_a_size_that_does_not_match_the_shape_is_refused():
    header = {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}
    assert st_refused(safetensors_bytes(header, b"\0" * 8)) == (
        'The safetensors tensor "a" is F32 [3], 12 bytes, but its data_offsets span 8.'
    )


def test_a_dtype_not_allowed_is_refused():
    header = {"a": {"dtype": "F8_E4M3", "shape": [8], "data_offsets": [0, 8]}}
    assert st_refused(safetensors_bytes(header, b"\0" * 8)) == (
        'The safetensors tensor "a" has the dtype "F8_E4M3", which is not accepted (accepted: '
        "F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL)."
    )
