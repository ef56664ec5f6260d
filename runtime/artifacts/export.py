"""A trained model as files: its ONNX graph from raw dataset inputs to class probabilities, and
its weights as safetensors. Runs on the trusted side for spec models and inside the sandbox for
code submissions (command.RUNTIME_FILES): nothing here imports onnx's checker or the datasets."""

import copy
import io
import os
import warnings

import numpy as np
import torch
from torch import nn

from runtime.artifacts.session import onnx_session
from runtime.augment import BatchPreparer
from runtime.trainer import logits_model

OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
BATCH_AXIS = "batch"
# The exported graph must agree with PyTorch on random inputs this closely (probabilities).
VERIFY_TOLERANCE = 1e-4
VERIFY_BATCH = 3  # not the traced batch size (2): a batch size baked into the graph shows
TRACE_BATCH = 2
# The smallest float32 above 0.5, and the factor that puts a value just below another one.
_ABOVE_HALF = 0.5 + 2.0**-24
_JUST_BELOW = 1.0 - 2.0**-23
_MAX_TORCH_WORDS = 300


class ExportFailed(Exception):
    """The model could not be exported; `message` says why, for the learner."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ServingModel(nn.Module):
    """A trained model as it is served: RAW dataset inputs in (images float32 [N, C, H, W] with
    pixel values 0..255, vectors float32 [N, F], token ids int64 [N, T]), class probabilities
    out (float32 [N, classes]).

    Inside: the trainer's inference preparation (BatchPreparer.for_inference: images become
    x * scale + shift), the model without its final Sigmoid (trainer.logits_model), then softmax
    over several outputs, or for one binary logit z the two columns [1 - p, p], p = sigmoid(z).
    The argmax of the probabilities is trainer.predict's class, ties included: for one logit,
    class 1 exactly when z > 0 (p is kept at or below 0.5 otherwise and just above it when z > 0,
    where float32 rounds sigmoid of a tiny z to 0.5); for several, the first largest logit (every
    other column that rounds to the same probability is put just below it).
    """

    def __init__(self, model: nn.Module, *, info, training):
        super().__init__()
        self.model = logits_model(model)
        self.kind = info.kind
        prepare = BatchPreparer.for_inference(
            info=info, training=training, device=torch.device("cpu")
        )
        scale, shift = prepare.scale, prepare.shift
        # Per-channel numbers are buffers (the graph's constants); shared ones stay Python floats.
        self.scale = self.shift = None
        if isinstance(scale, torch.Tensor):
            self.register_buffer("channel_scale", scale.detach().float().cpu(), persistent=False)
            self.register_buffer("channel_shift", shift.detach().float().cpu(), persistent=False)
        else:
            self.scale, self.shift = float(scale), float(shift)
        # One logit or several: decided once, on an example batch (a trace cannot branch on it).
        with torch.no_grad():
            was_training = self.model.training
            self.model.eval()
            try:
                outputs = self.model(self.prepare(_example(info, TRACE_BATCH)))
            finally:
                self.model.train(was_training)
        if not isinstance(outputs, torch.Tensor):
            raise ExportFailed(
                "Your model could not be exported to ONNX: its forward returns a "
                f"{type(outputs).__name__}, not a tensor."
            )
        self.binary = outputs.dim() == 1 or outputs.shape[-1] == 1
        self.classes = 2 if self.binary else int(outputs.shape[-1])

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind != "image":
            return x
        if self.scale is None:
            return x.mul(self.channel_scale).add(self.channel_shift)
        return x.mul(self.scale).add(self.shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = self.model(self.prepare(x)).float()
        if self.binary:
            z = outputs.reshape(-1, 1)
            p = torch.sigmoid(z)
            p = torch.where(z > 0, p.clamp(min=_ABOVE_HALF), p.clamp(max=0.5))
            return torch.cat([1.0 - p, p], dim=1)
        probabilities = torch.softmax(outputs, dim=-1)
        top = outputs.argmax(dim=-1, keepdim=True)
        is_top = torch.arange(self.classes, device=outputs.device) == top
        highest = probabilities.gather(-1, top)
        return torch.where(
            is_top, probabilities, torch.minimum(probabilities, highest * _JUST_BELOW)
        )


def _example(info, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Raw inputs of the dataset's kind: zeros, or random values of the right range."""
    shape = (batch, *info.input_shape)
    if info.kind == "tokens":
        if generator is None:
            return torch.zeros(shape, dtype=torch.int64)
        return torch.randint(0, max(1, info.vocab_size or 1), shape, generator=generator)
    if generator is None:
        return torch.zeros(shape, dtype=torch.float32)
    if info.kind == "image":
        return torch.randint(0, 256, shape, generator=generator).float()
    return torch.randn(shape, generator=generator)


def _torch_says(error: BaseException) -> str:
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if len(text) > _MAX_TORCH_WORDS:
        text = text[:_MAX_TORCH_WORDS] + "..."
    return text


def _why(error: BaseException) -> str:
    """The learner's sentence for an export error (a TracerWarning raised as an error, or torch's
    exporter refusing an operation)."""
    says = _torch_says(error)
    text = str(error)
    if "Python boolean" in text:
        return (
            "Your model could not be exported to ONNX: its forward takes a Python decision (an if "
            "or a loop) on the values of a tensor, which a fixed graph cannot hold. Use tensor "
            f"operations such as torch.where instead. PyTorch says: {says}"
        )
    if any(words in text for words in ("Python number", "Python integer", "Python index", "NumPy")):
        return (
            "Your model could not be exported to ONNX: its forward takes a tensor's values out of "
            "PyTorch (into NumPy, or a Python number with .item() or int()), which a fixed graph "
            f"cannot hold. Keep the computation in tensors. PyTorch says: {says}"
        )
    if "PythonOp" in text or "Python operator" in text or "autograd.Function" in text:
        return (
            "Your model could not be exported to ONNX: it uses a custom torch.autograd.Function, "
            "which ONNX has no operator for. Write it with standard PyTorch operations. PyTorch "
            f"says: {says}"
        )
    if isinstance(error, MemoryError):
        return "Your model could not be exported to ONNX: the export ran out of memory."
    return f"Your model could not be exported to ONNX. PyTorch says: {says}"


def _check_output(outputs, info, batch: int) -> None:
    want = (batch, info.num_classes)
    if not isinstance(outputs, torch.Tensor) or tuple(outputs.shape) != want:
        got = tuple(outputs.shape) if isinstance(outputs, torch.Tensor) else type(outputs).__name__
        raise ExportFailed(
            f"Your model could not be exported to ONNX: for {batch} inputs it gives {got} "
            f"probabilities instead of {want}: one score per class for each input."
        )


def export_onnx(model: nn.Module, *, info, training) -> bytes:
    """The ONNX file of `model` as served (ServingModel): opset OPSET, input "input" and output
    "probabilities" with a dynamic batch axis, the weights embedded, constants folded. Exports a
    CPU copy in evaluation mode (the caller's model is left as it was, on its device), then
    checks on random inputs that onnxruntime agrees with PyTorch. Raises ExportFailed."""
    try:
        copied = copy.deepcopy(model)
    except Exception as error:
        raise ExportFailed(
            "Your model could not be exported to ONNX: it could not be copied "
            f"({_torch_says(error)})."
        ) from error
    copied = copied.to("cpu").eval()
    example = _example(info, TRACE_BATCH)
    with torch.no_grad():
        try:
            serving = ServingModel(copied, info=info, training=training).eval()
            _check_output(serving(example), info, TRACE_BATCH)
        except ExportFailed:
            raise
        except Exception as error:
            raise ExportFailed(_why(error)) from error
    buffer = io.BytesIO()
    # Recorded here only (the legacy exporter's deprecation notices among them, never shown).
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            torch.onnx.export(
                serving,
                (example,),
                buffer,
                dynamo=False,
                opset_version=OPSET,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: BATCH_AXIS}, OUTPUT_NAME: {0: BATCH_AXIS}},
                do_constant_folding=True,
                export_params=True,
                keep_initializers_as_inputs=False,
            )
        except Exception as error:
            raise ExportFailed(_why(error)) from error
    _refuse_traced_decisions(seen)
    data = _with_output_shape(buffer.getvalue(), serving.classes)
    _verify(data, serving, info)
    return data


_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep


def _refuse_traced_decisions(seen: list[warnings.WarningMessage]) -> None:
    """A trace records one path through Python code: a decision taken on a tensor's value
    outside torch (the learner's forward) would be baked in, so it fails the export. torch's own
    modules decide on shapes only (LSTM's input checks), which the trace keeps right."""
    for warning in seen:
        if issubclass(warning.category, torch.jit.TracerWarning) and not str(
            warning.filename
        ).startswith(_TORCH_DIR):
            where = f" (line {warning.lineno} of {os.path.basename(str(warning.filename))})"
            raise ExportFailed(_why(RuntimeError(f"{warning.message}{where}")))


def _with_output_shape(data: bytes, classes: int) -> bytes:
    """The graph with its output declared [batch, classes]: the exporter leaves the width of a
    computed output (the binary [1 - p, p]) unnamed; _verify then confirms it."""
    import onnx

    model = onnx.load_from_string(data)
    dims = model.graph.output[0].type.tensor_type.shape.dim
    if len(dims) == 2 and not dims[1].HasField("dim_value"):
        dims[1].Clear()
        dims[1].dim_value = classes
        return model.SerializeToString()
    return data


def _verify(data: bytes, serving: ServingModel, info) -> None:
    """onnxruntime's probabilities on random inputs (another batch size than the traced one)
    against PyTorch's: a graph that kept one batch size or one branch does not pass."""
    x = _example(info, VERIFY_BATCH, torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = serving(x).numpy()
    try:
        session = onnx_session(data)
        got = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
    except Exception as error:
        raise ExportFailed(
            "Your model was exported to ONNX, but the exported graph does not run on a batch of "
            f"{VERIFY_BATCH} inputs (a batch size fixed in the forward, such as x.view(2, -1)? "
            f"use x.flatten(1) instead). onnxruntime says: {_torch_says(error)}"
        ) from error
    if got.shape != expected.shape or not np.allclose(
        got, expected, rtol=0, atol=VERIFY_TOLERANCE, equal_nan=True
    ):
        raise ExportFailed(
            "Your model was exported to ONNX, but the exported graph gives other probabilities "
            "than PyTorch on the same inputs (its forward probably depends on something the "
            "export could not record, such as Python state or randomness in evaluation mode)."
        )


def weights_safetensors(model: nn.Module) -> bytes:
    """The model's state_dict as safetensors bytes (CPU, contiguous). Tensors that share memory
    (tied weights, views) are stored each on its own, so every key loads back as it was."""
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    storages: set[int] = set()
    for name, value in model.state_dict().items():
        if not isinstance(value, torch.Tensor):
            raise ExportFailed(
                f"Your model's weights could not be saved: its state_dict entry {name!r} is a "
                f"{type(value).__name__}, not a tensor."
            )
        if value.layout != torch.strided or value.is_quantized:
            raise ExportFailed(
                f"Your model's weights could not be saved: {name!r} is a sparse or quantized "
                "tensor, which safetensors cannot hold."
            )
        tensor = value.detach().to("cpu")
        storage = tensor.untyped_storage()
        shared = storage.data_ptr() in storages or storage.nbytes() != tensor.nbytes
        if storage.nbytes():
            storages.add(storage.data_ptr())
        tensors[name] = tensor.clone().contiguous() if shared else tensor.contiguous()
    try:
        return save(tensors)
    except Exception as error:
        raise ExportFailed(
            f"Your model's weights could not be saved as safetensors: {_torch_says(error)}"
        ) from error
