"""Checks ONNX and safetensors bytes before anything trusts them: sizes first, then structure,
then the libraries (onnx's checker, onnxruntime, safetensors) on what passed.

Nothing in the bytes is believed before it is checked against ArtifactLimits: a tensor's declared
size is compared with the cap before anything is allocated for it, and only the standard
operators of an allow-list, with no subgraphs, functions, other domains, external or sparse data,
may appear. Every refusal is an ArtifactInvalid whose message says what and where.
"""

import json
import math
import struct
from dataclasses import dataclass

import onnx
from google.protobuf.message import DecodeError
from onnx import AttributeProto, TensorProto

from runtime.artifacts.session import onnx_session

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class ArtifactLimits:
    """What an artifact may be. The defaults fit the platform's models with room to spare (the
    CIFAR CNN template is 0.25 MiB, 26 nodes, 62,006 parameters) and keep a check cheap.

    max_onnx_bytes: the ONNX file, checked before it is parsed.
    max_nodes: nodes of the graph (subgraphs would count too, but none is accepted).
    max_initializer_bytes: one tensor (an initializer or a Constant node's value), declared size.
    max_total_parameters: the values of all initializers together.
    min_opset, max_opset: the standard operators' version (the exporter writes OPSET = 17).
    min_ir_version, max_ir_version: the file format's version (opsets 13 to 17 go with IR 7
        and 8; 9 is accepted as the next one, which adds only types that are refused anyway).
    max_rank: dimensions of one tensor.
    max_folded_bytes: a tensor computed from constants alone (onnxruntime computes it when it
        loads the model, so a small file could otherwise make it allocate without bound).
    max_safetensors_bytes: the safetensors file; max_safetensors_header_bytes: its JSON header;
    max_safetensors_tensors: the tensors it may hold.
    """

    max_onnx_bytes: int = 64 * MiB
    max_nodes: int = 10_000
    max_initializer_bytes: int = 64 * MiB
    max_total_parameters: int = 64 * 1024 * 1024
    min_opset: int = 13
    max_opset: int = 17
    min_ir_version: int = 7
    max_ir_version: int = 9
    max_rank: int = 8
    max_folded_bytes: int = 64 * MiB
    max_safetensors_bytes: int = 64 * MiB
    max_safetensors_header_bytes: int = 1 * MiB
    max_safetensors_tensors: int = 10_000


class ArtifactInvalid(ValueError):
    """An artifact is refused; `message` is one sentence for learners and teachers."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class OnnxSummary:
    opset: int
    ir_version: int
    node_count: int
    operators: tuple[str, ...]  # sorted, each once
    parameter_count: int  # the values of the initializers (the weights)
    input_name: str
    input_dtype: str  # "float32" | "int64"
    input_shape: tuple[int | str, ...]  # ("batch", 3, 32, 32)
    output_shape: tuple[int | str, ...]  # ("batch", 10)
    size_bytes: int


@dataclass(frozen=True)
class SafetensorsSummary:
    tensor_count: int
    parameter_count: int
    dtypes: tuple[str, ...]  # sorted, each once
    size_bytes: int


# The standard operators the exporter writes for the platform's layers (every template and
# every spec layer type, tests/runtime/test_artifact_checks.py), those of the common torch layers a
# code submission uses, and the quantisation operators model compression needs. Not: Loop, Scan,
# If (unbounded control flow), random or training-mode operators (RandomNormal, Dropout...), string,
# sequence and optional operators, or anything outside the default domain.
ALLOWED_OPERATORS = frozenset(
    """
    Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool
    BatchNormalization Cast CastLike Ceil Celu Clip Concat Constant ConstantOfShape Conv
    ConvInteger ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div
    DynamicQuantizeLinear Einsum Elu Equal Erf Exp Expand Flatten Floor GRU Gather
    GatherElements GatherND Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater
    GreaterOrEqual HardSigmoid HardSwish Hardmax Identity InstanceNormalization IsInf IsNaN
    LRN LSTM LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax LpNormalization
    LpPool MatMul MatMulInteger Max MaxPool Mean MeanVarianceNormalization Min Mod Mul Neg
    Not OneHot Or PRelu Pad Pow QLinearConv QLinearMatMul QuantizeLinear RNN Range
    Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin
    ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize Round Selu Shape Shrink Sigmoid
    Sign Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub
    Sum Tan Tanh ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Where Xor
    """.split()  # noqa: SIM905 (a list to read)
)
CONTROL_FLOW = frozenset({"If", "Loop", "Scan", "SequenceMap"})
DEFAULT_DOMAINS = ("", "ai.onnx")

# Accepted tensor types: (name, bytes per value, the typed field that holds them without raw_data).
_TYPES = {
    TensorProto.FLOAT: ("float32", 4, "float_data"),
    TensorProto.UINT8: ("uint8", 1, "int32_data"),
    TensorProto.INT8: ("int8", 1, "int32_data"),
    TensorProto.UINT16: ("uint16", 2, "int32_data"),
    TensorProto.INT16: ("int16", 2, "int32_data"),
    TensorProto.INT32: ("int32", 4, "int32_data"),
    TensorProto.INT64: ("int64", 8, "int64_data"),
    TensorProto.BOOL: ("bool", 1, "int32_data"),
    TensorProto.FLOAT16: ("float16", 2, "int32_data"),
    TensorProto.DOUBLE: ("float64", 8, "double_data"),
    TensorProto.UINT32: ("uint32", 4, "uint64_data"),
    TensorProto.UINT64: ("uint64", 8, "uint64_data"),
    TensorProto.BFLOAT16: ("bfloat16", 2, "int32_data"),
}
_TYPED_FIELDS = (
    "float_data",
    "int32_data",
    "string_data",
    "int64_data",
    "double_data",
    "uint64_data",
)
_INPUT_DTYPES = {TensorProto.FLOAT: "float32", TensorProto.INT64: "int64"}
_KIND_DTYPE = {"image": "float32", "vector": "float32", "tokens": "int64"}


def format_bytes(count: int) -> str:
    for unit, size in (("GiB", 1024 * MiB), ("MiB", MiB), ("KiB", KiB)):
        if count >= size:
            value = count / size
            return f"{value:g} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{count} bytes"


def _quote(name: str, limit: int = 60) -> str:
    """A name from the file, fit for a message: printable, short, in quotes."""
    text = "".join(c if c.isprintable() else "?" for c in str(name))
    return f'"{text[:limit]}..."' if len(text) > limit else f'"{text}"'


def _first_line(error: BaseException, limit: int = 300) -> str:
    text = (str(error).strip().splitlines() or [type(error).__name__])[0].strip()
    return text[:limit] + "..." if len(text) > limit else text


def _node_where(index: int, node) -> str:
    name = f"{_quote(node.name)}, " if node.name else ""
    return f"Node {index} ({name}{_quote(node.op_type)[1:-1]})"


# --- ONNX ---------------------------------------------------------------------------------------


def check_onnx(data: bytes, *, info=None, limits: ArtifactLimits = ArtifactLimits()) -> OnnxSummary:
    """The summary of an ONNX file that passed every check, or ArtifactInvalid. With `info` (a
    DatasetInfo) the input and output must fit that dataset."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ArtifactInvalid("The ONNX model must be given as bytes.")
    data = bytes(data)
    if len(data) > limits.max_onnx_bytes:
        raise ArtifactInvalid(
            f"The ONNX file is {format_bytes(len(data))}; the most accepted is "
            f"{format_bytes(limits.max_onnx_bytes)}."
        )
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as error:
        raise ArtifactInvalid(
            "The file is not an ONNX model: it cannot be read as an ONNX protobuf message."
        ) from error
    if not model.HasField("graph"):
        raise ArtifactInvalid("The file is not an ONNX model: it has no graph.")
    opset = _check_header(model, limits)
    graph = model.graph
    _check_node_count(graph, limits)
    constants = _check_nodes(graph, limits)
    parameters = _check_initializers(graph, limits)
    input_name, input_dtype, input_shape = _check_input(graph, info)
    output_shape = _check_output(graph, info)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as error:  # the checker's ValidationError, shape inference's InferenceError
        raise ArtifactInvalid(f"The ONNX model is not valid: {_first_line(error)}") from error
    _check_folded(model, constants, limits)
    try:
        onnx_session(data)
    except Exception as error:
        raise ArtifactInvalid(
            f"onnxruntime cannot load the ONNX model: {_first_line(error)}"
        ) from error
    return OnnxSummary(
        opset=opset,
        ir_version=model.ir_version,
        node_count=len(graph.node),
        operators=tuple(sorted({node.op_type for node in graph.node})),
        parameter_count=parameters,
        input_name=input_name,
        input_dtype=input_dtype,
        input_shape=input_shape,
        output_shape=output_shape,
        size_bytes=len(data),
    )


def _check_header(model, limits: ArtifactLimits) -> int:
    if not limits.min_ir_version <= model.ir_version <= limits.max_ir_version:
        raise ArtifactInvalid(
            f"The ONNX model has IR version {model.ir_version}; accepted are versions "
            f"{limits.min_ir_version} to {limits.max_ir_version}."
        )
    versions = []
    for entry in model.opset_import:
        if entry.domain not in DEFAULT_DOMAINS:
            raise ArtifactInvalid(
                f"The ONNX model imports operators of the domain {_quote(entry.domain)}; only the "
                "standard operators (the default domain) are accepted."
            )
        versions.append(entry.version)
    if not versions:
        raise ArtifactInvalid(
            "The ONNX model does not say which version of the standard operators (opset) it uses."
        )
    if len(versions) > 1:
        raise ArtifactInvalid("The ONNX model imports the standard operators more than once.")
    (opset,) = versions
    if not limits.min_opset <= opset <= limits.max_opset:
        raise ArtifactInvalid(
            f"The ONNX model uses opset {opset}; accepted are opsets {limits.min_opset} to "
            f"{limits.max_opset}."
        )
    if len(model.functions):
        raise ArtifactInvalid(
            f"The ONNX model defines functions (the first is {_quote(model.functions[0].name)}); "
            "model-local functions are not accepted."
        )
    if len(model.graph.sparse_initializer):
        name = model.graph.sparse_initializer[0].values.name
        raise ArtifactInvalid(
            f"The ONNX model has a sparse initializer ({_quote(name)}); sparse tensors are not "
            "accepted."
        )
    return opset


def _check_node_count(graph, limits: ArtifactLimits) -> None:
    """Every node, subgraphs' included, counted without recursion and stopping at the cap."""
    count = len(graph.node)
    if count > limits.max_nodes:
        raise ArtifactInvalid(
            f"The ONNX model has {count:,} nodes; the most accepted is {limits.max_nodes:,}."
        )
    pending = [graph]
    while pending:
        for node in pending.pop().node:
            for attribute in node.attribute:
                subgraphs = [attribute.g] if attribute.HasField("g") else []
                subgraphs += list(attribute.graphs)
                for subgraph in subgraphs:
                    count += len(subgraph.node)
                    if count > limits.max_nodes:
                        raise ArtifactInvalid(
                            f"The ONNX model has more than {limits.max_nodes:,} nodes, its "
                            f"subgraphs' included; the most accepted is {limits.max_nodes:,}."
                        )
                    pending.append(subgraph)


def _check_nodes(graph, limits: ArtifactLimits) -> set[str]:
    """Each node's domain, operator and attributes; returns the names of the values the
    Constant nodes make."""
    constants: set[str] = set()
    for index, node in enumerate(graph.node):
        where = _node_where(index, node)
        if node.domain not in DEFAULT_DOMAINS:
            raise ArtifactInvalid(
                f"{where} is an operator of the domain {_quote(node.domain)}; only the standard "
                "operators (the default domain) are accepted."
            )
        if node.op_type in CONTROL_FLOW:
            raise ArtifactInvalid(
                f"{where} is control flow; loops and conditionals (If, Loop, Scan) are not "
                "accepted, since they can run without bound."
            )
        if node.op_type not in ALLOWED_OPERATORS:
            raise ArtifactInvalid(
                f"{where} uses the operator {_quote(node.op_type)}, which is not among the "
                "accepted operators (docs/runtime.md lists them)."
            )
        for attribute in node.attribute:
            _check_attribute(where, attribute, limits)
        if node.op_type == "Constant":
            constants.update(node.output)
    return constants


def _check_attribute(where: str, attribute, limits: ArtifactLimits) -> None:
    name = _quote(attribute.name)
    if (
        attribute.HasField("g")
        or len(attribute.graphs)
        or attribute.type
        in (
            AttributeProto.GRAPH,
            AttributeProto.GRAPHS,
        )
    ):
        raise ArtifactInvalid(
            f"{where} has a subgraph (attribute {name}); subgraphs are not accepted."
        )
    if (
        attribute.HasField("sparse_tensor")
        or len(attribute.sparse_tensors)
        or attribute.type in (AttributeProto.SPARSE_TENSOR, AttributeProto.SPARSE_TENSORS)
    ):
        raise ArtifactInvalid(
            f"{where} has a sparse tensor (attribute {name}); sparse tensors are not accepted."
        )
    if attribute.name in ("value_string", "value_strings"):
        raise ArtifactInvalid(
            f"{where} makes a tensor of strings (attribute {name}); string tensors are not "
            "accepted."
        )
    tensors = ([attribute.t] if attribute.HasField("t") else []) + list(attribute.tensors)
    for tensor in tensors:
        _check_tensor(
            f"The tensor of {where[0].lower()}{where[1:]} (attribute {name})", tensor, limits
        )


def _check_tensor(where: str, tensor, limits: ArtifactLimits) -> int:
    """A tensor's storage, from what it declares, before anything reads its data; returns its
    number of values."""
    if tensor.data_location == TensorProto.EXTERNAL or len(tensor.external_data):
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        place = f", location {_quote(location)}" if location else ""
        raise ArtifactInvalid(
            f"{where} keeps its data outside the file (external data{place}); external data "
            "is not accepted."
        )
    if tensor.data_type == TensorProto.STRING:
        raise ArtifactInvalid(f"{where} holds strings; string tensors are not accepted.")
    if tensor.data_type not in _TYPES:
        type_name = (
            TensorProto.DataType.Name(tensor.data_type)
            if tensor.data_type in (TensorProto.DataType.values())
            else str(tensor.data_type)
        )
        raise ArtifactInvalid(f"{where} has the data type {type_name}, which is not accepted.")
    dtype, itemsize, typed = _TYPES[tensor.data_type]
    dims = list(tensor.dims)
    if len(dims) > limits.max_rank:
        raise ArtifactInvalid(
            f"{where} has {len(dims)} dimensions; the most accepted is {limits.max_rank}."
        )
    if any(d < 0 for d in dims):
        raise ArtifactInvalid(f"{where} has a negative dimension ({_dims(dims)}).")
    values = math.prod(dims)
    declared = values * itemsize
    if declared > limits.max_initializer_bytes:
        raise ArtifactInvalid(
            f"{where} declares {format_bytes(declared)} ({dtype} {_dims(dims)}); the most a "
            f"tensor may hold is {format_bytes(limits.max_initializer_bytes)}."
        )
    if tensor.HasField("raw_data"):
        stored = len(tensor.raw_data)
        if any(len(getattr(tensor, field)) for field in _TYPED_FIELDS) or stored != declared:
            raise ArtifactInvalid(
                f"{where} declares {declared:,} bytes of data ({dtype} {_dims(dims)}) but holds "
                f"{stored:,}."
            )
        return values
    held = {field: len(getattr(tensor, field)) for field in _TYPED_FIELDS}
    if held[typed] != values or any(n for field, n in held.items() if field != typed):
        raise ArtifactInvalid(
            f"{where} declares {values:,} values ({dtype} {_dims(dims)}) but holds "
            f"{sum(held.values()):,}."
        )
    return values


def _dims(dims) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


def _check_initializers(graph, limits: ArtifactLimits) -> int:
    total = 0
    for tensor in graph.initializer:
        total += _check_tensor(f"The initializer {_quote(tensor.name)}", tensor, limits)
        if total > limits.max_total_parameters:
            raise ArtifactInvalid(
                f"The ONNX model has more than {limits.max_total_parameters:,} parameters; the "
                f"most accepted is {limits.max_total_parameters:,}."
            )
    return total


def _shape_of(value) -> list | None:
    """A value's dimensions: ints, or a str for a named (symbolic) one; None if it has none."""
    if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
        return None
    dims = []
    for dim in value.type.tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(dim.dim_value)
        elif dim.HasField("dim_param") and dim.dim_param:
            dims.append(dim.dim_param)
        else:
            dims.append(None)
    return dims


def _batched(dims: list | None) -> tuple | None:
    """("batch", d1, ...) when the first dimension is a batch (named, or a positive number) and
    the others are positive numbers; None otherwise."""
    if not dims:
        return None
    first, rest = dims[0], dims[1:]
    if isinstance(first, str):
        first = "batch"
    elif not (isinstance(first, int) and first >= 1):
        return None
    if not all(isinstance(d, int) and d >= 1 for d in rest):
        return None
    return (first, *rest)


def _shape_text(shape) -> str:
    return (
        "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]" if shape else "unknown"
    )


def _check_input(graph, info) -> tuple[str, str, tuple]:
    initialized = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initialized]
    if not inputs:
        raise ArtifactInvalid("The ONNX model has no input.")
    if len(inputs) > 1:
        names = ", ".join(_quote(value.name) for value in inputs[:4])
        raise ArtifactInvalid(
            f"The ONNX model has {len(inputs)} inputs ({names}); it must have exactly one, the "
            "batch of samples."
        )
    (value,) = inputs
    name = _quote(value.name)
    if not value.type.HasField("tensor_type"):
        raise ArtifactInvalid(f"The input {name} is not a tensor.")
    elem = value.type.tensor_type.elem_type
    dtype = _INPUT_DTYPES.get(elem)
    want_dtype = _KIND_DTYPE.get(info.kind) if info is not None else None
    type_name = _type_name(elem)
    if dtype is None or (want_dtype is not None and dtype != want_dtype):
        want = want_dtype or "float32 or int64"
        dataset = f" for the {info.name} dataset" if info is not None else ""
        raise ArtifactInvalid(f"The input {name} is {type_name}; it must be {want}{dataset}.")
    dims = _shape_of(value)
    shape = _batched(dims)
    want_shape = ("batch", *info.input_shape) if info is not None else None
    if shape is None or (want_shape is not None and shape[1:] != want_shape[1:]):
        want = (
            f"[batch, {', '.join(str(d) for d in info.input_shape)}] for the {info.name} dataset"
            if info is not None
            else "[batch, ...] with a size for every dimension after the batch"
        )
        raise ArtifactInvalid(
            f"The input {name} has the shape {_shape_text(dims)}; it must be {want}."
        )
    return value.name, dtype, shape


def _type_name(elem: int) -> str:
    if elem in _TYPES:
        return _TYPES[elem][0]
    if elem in TensorProto.DataType.values():
        return TensorProto.DataType.Name(elem).lower()
    return f"type {elem}"


def _check_output(graph, info) -> tuple:
    outputs = list(graph.output)
    if len(outputs) != 1:
        raise ArtifactInvalid(
            f"The ONNX model has {len(outputs)} outputs; it must have exactly one, the class "
            "probabilities."
        )
    (value,) = outputs
    name = _quote(value.name)
    if not value.type.HasField("tensor_type"):
        raise ArtifactInvalid(f"The output {name} is not a tensor.")
    elem = value.type.tensor_type.elem_type
    if elem != TensorProto.FLOAT:
        raise ArtifactInvalid(f"The output {name} is {_type_name(elem)}; it must be float32.")
    dims = _shape_of(value)
    shape = _batched(dims)
    if shape is None or len(shape) != 2 or (info is not None and shape[1] != info.num_classes):
        classes = str(info.num_classes) if info is not None else "classes"
        raise ArtifactInvalid(
            f"The output {name} has the shape {_shape_text(dims)}; it must be [batch, {classes}]: "
            "one probability per class for each sample."
        )
    return shape


def _check_folded(model, constants: set[str], limits: ArtifactLimits) -> None:
    """Nodes that compute from constants alone run when onnxruntime loads the model (constant
    folding): their outputs must have sizes known from the file, within the cap."""
    graph = model.graph
    known = {tensor.name for tensor in graph.initializer} | constants
    folded = []
    for index, node in enumerate(graph.node):
        inputs = [name for name in node.input if name]
        if node.op_type != "Constant" and inputs and all(name in known for name in inputs):
            known.update(node.output)
            folded.append((index, node))
    if not folded:
        return
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as error:
        raise ArtifactInvalid(f"The ONNX model is not valid: {_first_line(error)}") from error
    values = {value.name: value for value in inferred.graph.value_info}
    values.update({value.name: value for value in inferred.graph.output})
    for index, node in folded:
        for output in node.output:
            value = values.get(output)
            dims = _shape_of(value) if value is not None else None
            elem = value.type.tensor_type.elem_type if value is not None else 0
            if dims is None or not all(isinstance(d, int) for d in dims) or elem not in _TYPES:
                raise ArtifactInvalid(
                    f"{_node_where(index, node)} computes a tensor from constants alone whose "
                    "size cannot be known before it runs; such tensors are not accepted."
                )
            size = math.prod(dims) * _TYPES[elem][1]
            if size > limits.max_folded_bytes:
                raise ArtifactInvalid(
                    f"{_node_where(index, node)} computes from constants alone a tensor of "
                    f"{format_bytes(size)}; the most accepted is "
                    f"{format_bytes(limits.max_folded_bytes)}."
                )


# --- safetensors --------------------------------------------------------------------------------

_SAFETENSORS_TYPES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U64": 8,
    "U32": 4,
    "U16": 2,
    "U8": 1,
    "BOOL": 1,
}


def _unique_keys(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ArtifactInvalid(
                f"The safetensors header names {_quote(key)} twice; each name must appear once."
            )
        out[key] = value
    return out


def check_safetensors(
    data: bytes,
    *,
    limits: ArtifactLimits = ArtifactLimits(),
) -> SafetensorsSummary:
    """The summary of a safetensors file that passed every check, or ArtifactInvalid. The
    header is read and checked here (its length, its JSON, every entry's type, shape and place)
    before the safetensors library loads the file."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ArtifactInvalid("The safetensors file must be given as bytes.")
    data = bytes(data)
    size = len(data)
    if size > limits.max_safetensors_bytes:
        raise ArtifactInvalid(
            f"The safetensors file is {format_bytes(size)}; the most accepted is "
            f"{format_bytes(limits.max_safetensors_bytes)}."
        )
    if size < 8:
        raise ArtifactInvalid(
            f"The safetensors file is {size} bytes long: too short to hold the 8-byte length of "
            "its header."
        )
    (header_length,) = struct.unpack("<Q", data[:8])
    if header_length > limits.max_safetensors_header_bytes:
        raise ArtifactInvalid(
            f"The safetensors header declares {format_bytes(header_length)}; the most accepted "
            f"is {format_bytes(limits.max_safetensors_header_bytes)}."
        )
    if 8 + header_length > size:
        raise ArtifactInvalid(
            f"The safetensors header declares {header_length:,} bytes, more than the file holds "
            f"after its length ({size - 8:,})."
        )
    try:
        header = json.loads(
            data[8 : 8 + header_length].decode("utf-8"), object_pairs_hook=_unique_keys
        )
    except ArtifactInvalid:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ArtifactInvalid("The safetensors header is not JSON.") from error
    if not isinstance(header, dict):
        raise ArtifactInvalid("The safetensors header is not a JSON object.")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise ArtifactInvalid("The safetensors header's __metadata__ must map text to text.")
    if len(header) > limits.max_safetensors_tensors:
        raise ArtifactInvalid(
            f"The safetensors file holds {len(header):,} tensors; the most accepted is "
            f"{limits.max_safetensors_tensors:,}."
        )
    data_length = size - 8 - header_length
    places, parameters = [], 0
    for name, entry in header.items():
        values, begin, end = _check_entry(name, entry, data_length, limits)
        parameters += values
        places.append((begin, end, name))
    places.sort()
    position = 0
    for begin, end, name in places:
        if begin != position:
            what = "overlaps the one before it" if begin < position else "leaves a gap before it"
            raise ArtifactInvalid(
                f"The safetensors tensor {_quote(name)} starts at byte {begin:,} of the data and "
                f"{what} (which ends at byte {position:,}); tensors must follow each other."
            )
        position = end
    if position != data_length:
        raise ArtifactInvalid(
            f"The safetensors tensors cover {position:,} bytes of data, but the file holds "
            f"{data_length:,}."
        )
    try:
        from safetensors.torch import load

        load(data)
    except Exception as error:
        raise ArtifactInvalid(f"safetensors cannot load the file: {_first_line(error)}") from error
    dtypes = tuple(sorted({entry["dtype"] for entry in header.values()}))
    return SafetensorsSummary(
        tensor_count=len(header), parameter_count=parameters, dtypes=dtypes, size_bytes=size
    )


def _check_entry(
    name: str, entry, data_length: int, limits: ArtifactLimits
) -> tuple[int, int, int]:
    where = f"The safetensors tensor {_quote(name)}"
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise ArtifactInvalid(f"{where} must have exactly a dtype, a shape and data_offsets.")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in _SAFETENSORS_TYPES:
        raise ArtifactInvalid(
            f"{where} has the dtype {_quote(str(dtype))}, which is not accepted (accepted: "
            f"{', '.join(_SAFETENSORS_TYPES)})."
        )

    def whole(n) -> bool:
        return isinstance(n, int) and not isinstance(n, bool) and n >= 0

    if not isinstance(shape, list) or len(shape) > limits.max_rank or not all(map(whole, shape)):
        raise ArtifactInvalid(
            f"{where} has the shape {_quote(json.dumps(shape))}; a shape is a list of at most "
            f"{limits.max_rank} whole numbers."
        )
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(whole, offsets))):
        raise ArtifactInvalid(f"{where} has data_offsets that are not two whole numbers.")
    begin, end = offsets
    if not begin <= end <= data_length:
        raise ArtifactInvalid(
            f"{where} has data_offsets [{begin:,}, {end:,}] outside the {data_length:,} bytes of "
            "data the file holds."
        )
    values = math.prod(shape)
    if values * _SAFETENSORS_TYPES[dtype] != end - begin:
        raise ArtifactInvalid(
            f"{where} is {dtype} {_dims(shape)}, {values * _SAFETENSORS_TYPES[dtype]:,} bytes, but "
            f"its data_offsets span {end - begin:,}."
        )
    return values, begin, end
