"""The harness inside the sandbox: loads the job, locks the limits, runs the learner's code.

Started by the parent as `python -I -B -u -c BOOTSTRAP ...` (command.py), already without
privileges (the bootstrap drops them before importing this module). It sees only the runtime files
of command.RUNTIME_FILES and reads only the job directory, which holds the training and
validation splits, the test INPUTS and the code, never a test label. It talks to the parent over
one pipe (`result_fd`), one JSON object a line:

    {"type": "ready"}                                   set up, limits locked
    {"type": "progress", "point": {...}}                a trainer progress point, as
                                                        runtime.progress defines it
    {"type": "result", "predictions": [...], "outcome": {...}, "export_error": "..." | null}
    {"type": "error", "kind": "...", "message": "...", "line": N | null}

(protocol.py has each message's schema and size.) After predicting, the harness exports the
trained model (runtime.artifacts.export) into the two files job.json names under "artifacts":
ONNX and safetensors; a model that cannot be exported still gets its result, with the reason in
export_error. The learner's code runs in this very process,
so it can write anything on that pipe too: the parent treats every line as untrusted input
(checks its size, depth and schema, throttles progress, never unpickles it).
"""

import contextlib
import dataclasses
import errno
import json
import linecache
import os
import resource
import sys
import traceback
import types
import typing

from runtime.sandbox.checks import SUBMISSION_FILENAME
from runtime.sandbox.limits import ONNX_FILENAME, WEIGHTS_FILENAME
from runtime.sandbox.protocol import (
    MAX_ERROR_MESSAGE_CHARS,
    MAX_EXPORT_ERROR_CHARS,
    OUTCOME_FIELDS,
)

MAIN_PID = os.getpid()
_result_fd = -1


def send(message: dict) -> None:
    """One line to the parent, from the main process only (a fork of the learner's is muted)."""
    if os.getpid() != MAIN_PID or _result_fd < 0:
        return
    data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
    view = memoryview(data)
    while view:
        written = os.write(_result_fd, view)
        view = view[written:]


def _exit(code: int) -> typing.NoReturn:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # the learner may have replaced or closed it
            stream.flush()
    os._exit(code)


def main(job_dir: str, result_fd: int) -> None:
    global _result_fd
    _result_fd = result_fd
    # Nothing but stdio and the result pipe stays open for the learner's code.
    os.closerange(3, result_fd)
    os.closerange(result_fd + 1, 1 << 16)
    try:
        job, tensors, trainer, objects = _load(job_dir)
        if isinstance(trainer, ImportError):
            raise trainer  # before "ready": the parent believes "sandbox" errors only then
        _lock_memory(job["memory_bytes"])
    except BaseException as error:
        traceback.print_exc()
        message = f"{type(error).__name__}: {error}"[:MAX_ERROR_MESSAGE_CHARS]
        send({"type": "error", "kind": "sandbox", "message": message, "line": None})
        _exit(70)
    send({"type": "ready"})
    try:
        result = _run(job, tensors, trainer, objects)
    except BaseException as error:
        if os.getpid() != MAIN_PID:  # a fork of the learner's code: leave quietly
            os._exit(1)
        kind, message, line = _explain(error)
        _print_learner_traceback(error)
        send({"type": "error", "kind": kind, "message": message, "line": line})
        _exit(1)
    if os.getpid() != MAIN_PID:
        os._exit(0)
    send(result)
    _exit(0)


def _load(job_dir: str):
    with open(os.path.join(job_dir, "job.json"), encoding="utf-8") as handle:
        job = json.load(handle)
    import torch

    torch.set_num_threads(job["threads"])
    torch.set_num_interop_threads(1)
    tensors = torch.load(os.path.join(job_dir, "data.pt"), weights_only=True)
    with open(os.path.join(job_dir, SUBMISSION_FILENAME), encoding="utf-8") as handle:
        job["code"] = handle.read()
    # Everything the run will import comes in now, before memory is locked, so that the limit
    # measures the learner's use and not the runtime's.
    try:
        from runtime import trainer
    except ImportError as error:
        trainer = error
    # The exporter too (torch.onnx, onnx, onnxruntime, safetensors: 0.6 s, ~80 MiB of address
    # space); without it a run still trains, and its export_error says why there is no export.
    with contextlib.suppress(ImportError):
        import runtime.artifacts.export  # noqa: F401
    objects = {name: _rebuild(job[name]) for name in ("info", "training", "budget")}
    return job, tensors, trainer, objects


# torch imports torch._dynamo (and sympy) when the first optimizer is made: about 2 s and 265 MiB
# of address space. Importing it up front would cost every run those 2 s, also the many that
# fail in build_model, so the limit leaves room for it instead.
LAZY_IMPORT_ALLOWANCE = 384 * 1024 * 1024


def _lock_memory(memory_bytes: int) -> None:
    """RLIMIT_AS = the address space in use now (Python, torch, the data) + the learner's budget
    (+ room for torch's own lazy imports)."""
    with open("/proc/self/status", encoding="ascii") as status:
        in_use = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    allowance = 0 if "torch._dynamo" in sys.modules else LAZY_IMPORT_ALLOWANCE
    limit = in_use + memory_bytes + allowance
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _run(job: dict, tensors: dict, trainer, objects: dict) -> dict:
    import torch

    from runtime.augment import BatchPreparer

    code = job["code"]
    module = types.ModuleType("submission")
    module.__file__ = SUBMISSION_FILENAME
    sys.modules["submission"] = module
    linecache.cache[SUBMISSION_FILENAME] = (
        len(code),
        None,
        code.splitlines(keepends=True),
        SUBMISSION_FILENAME,
    )
    exec(compile(code, SUBMISSION_FILENAME, "exec"), module.__dict__)  # noqa: S102 (the point)

    info = objects["info"]
    # The initial weights come from the exercise's seed, as for specs (trainer.seeded): the
    # same code gives the same run. This process serves one run, so seeding globally is fine.
    torch.manual_seed(objects["training"].seed)
    model = module.build_model(tuple(info.input_shape), info.num_classes)
    if not isinstance(model, torch.nn.Module):
        raise _Invalid(
            "invalid_model",
            f"build_model must return a torch.nn.Module; it returned {_describe(model)}.",
        )
    optimizer = None
    configure = getattr(module, "configure_optimizer", None)
    if configure is not None:
        optimizer = configure(model)
        if not isinstance(optimizer, torch.optim.Optimizer):
            returned = _describe(optimizer)
            raise _Invalid(
                "invalid_optimizer",
                f"configure_optimizer must return a torch.optim.Optimizer; it returned {returned}.",
            )
    # Inputs as the trainer gives them to the model (images: normalised floats, not uint8).
    prepare = BatchPreparer.for_inference(
        info=info, training=objects["training"], device=torch.device("cpu")
    )
    _dry_run(model, prepare.batch(tensors["train_x"][:DRY_RUN_BATCH]), info.num_classes)
    extra = {} if objects["budget"] is None else {"budget": objects["budget"]}
    outcome = trainer.train(
        model,
        training=objects["training"],
        train=Split(tensors["train_x"], tensors["train_y"]),
        val=Split(tensors["val_x"], tensors["val_y"]),
        info=info,
        device="cpu",
        progress=lambda point: send({"type": "progress", "point": point}),
        optimizer=optimizer,
        **extra,
    )
    predictions = trainer.predict(
        model, tensors["test_x"], info=info, training=objects["training"], device="cpu"
    )
    summary = outcome.as_dict()
    export_error = _export(model, info, objects["training"], job["artifacts"])
    return {
        "type": "result",
        "predictions": predictions.to(torch.int64).reshape(-1).tolist(),
        # The summary without its history: the parent keeps the epoch ends it was sent.
        "outcome": {name: summary.get(name) for name in OUTCOME_FIELDS},
        "export_error": export_error,
    }


def _export(model, info, training, paths: dict) -> str | None:
    """Writes the weights (safetensors) and the ONNX model into the parent's files; None, or
    why one of them is missing. Nothing raised here (the learner's forward runs again during
    the export) fails the run: it was trained and predicted already."""
    try:
        from runtime.artifacts.export import ExportFailed, export_onnx, weights_safetensors
    except ImportError as error:
        return f"The model could not be exported: the exporter is not available here ({error})."
    reasons = []
    for name, make in (
        (WEIGHTS_FILENAME, lambda: weights_safetensors(model)),
        (ONNX_FILENAME, lambda: export_onnx(model, info=info, training=training)),
    ):
        try:
            _write_artifact(paths[name], make())
        except ExportFailed as failed:
            reasons.append(failed.message)
        except OSError as error:
            what = "ONNX model" if name == ONNX_FILENAME else "weights"
            if error.errno == errno.EFBIG:
                reasons.append(f"The exported {what} is larger than the largest file allowed.")
            else:
                reasons.append(f"The exported {what} could not be written ({error.strerror}).")
        except BaseException as error:  # learner code: SystemExit, anything
            if os.getpid() != MAIN_PID:
                os._exit(1)
            reasons.append(f"The model could not be exported: {type(error).__name__}: {error}")
    text = " ".join(reasons)
    if len(text) > MAX_EXPORT_ERROR_CHARS:
        text = text[: MAX_EXPORT_ERROR_CHARS - 3] + "..."
    return text or None


def _write_artifact(path: str, data: bytes) -> None:
    """Into the file the parent made (never a new one, never through a link)."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


DRY_RUN_BATCH = 2
# Words of torch's shape errors ("mat1 and mat2 shapes cannot be multiplied", "size mismatch",
# "Expected 4-dimensional input", "shape '[-1, 5]' is invalid for input of size 12").
_SHAPE_WORDS = ("shape", "size", "dimension", "expected")


def _dry_run(model, sample, num_classes: int) -> None:
    """One forward pass on a couple of training inputs before any training, so that a shape
    error comes back at once and in the learner's words (which layer, what it expects, what it
    got) rather than as torch's RuntimeError from inside the trainer. Evaluation mode and no
    gradients: nothing about the model changes, and no random number is drawn."""
    import torch

    entered: list[tuple[str, typing.Any, tuple]] = []  # leaf layers, in the order they ran
    finished: set[int] = set()

    def before(name):
        def hook(module, args):
            shape = next((tuple(a.shape) for a in args if isinstance(a, torch.Tensor)), ())
            entered.append((name, module, shape))

        return hook

    def after(module, args, output):
        finished.add(id(module))

    leaves = [(n, m) for n, m in model.named_modules() if next(m.children(), None) is None]
    handles = [m.register_forward_pre_hook(before(n)) for n, m in leaves]
    handles += [m.register_forward_hook(after) for _, m in leaves]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = model(sample)
    except RuntimeError as error:
        words = str(error).lower()
        if _resource_kind(error) or not entered or not any(w in words for w in _SHAPE_WORDS):
            raise  # not about shapes: reported as any exception of the learner's code is
        raise _Invalid("invalid_model", _shape_words(entered, finished, error)) from error
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    want = (len(sample), num_classes)
    # Two classes may also be one logit per input (the trainer's binary loss), as specs build.
    allowed = {want} | ({(len(sample), 1), (len(sample),)} if num_classes == 2 else set())
    if not isinstance(output, torch.Tensor) or tuple(output.shape) not in allowed:
        got = tuple(output.shape) if isinstance(output, torch.Tensor) else _describe(output)
        raise _Invalid(
            "invalid_model",
            f"For a batch of {want[0]} inputs your model returned "
            f"{_shape(got)}; it must return a tensor of shape {_shape(want)}: one "
            f"score per class for each input.",
        )


def _shape(shape) -> str:
    return f"({', '.join(str(n) for n in shape)})" if isinstance(shape, tuple) else str(shape)


def _expects(module) -> str:
    """What a layer expects of its input, in words, for the common layers."""
    for attribute, words in (
        ("in_features", "input features"),
        ("in_channels", "input channels"),
        ("num_features", "features (channels)"),
        ("input_size", "input features"),
    ):
        value = getattr(module, attribute, None)
        if isinstance(value, int):
            return f", which expects {value} {words}"
    return ""


def _shape_words(entered, finished: set[int], error: RuntimeError) -> str:
    name, module, shape = entered[-1]
    torch_says = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
    layer = f"layer “{name}” ({type(module).__name__}{_expects(module)})"
    if id(module) in finished:  # the error came after that layer, in the forward's own code
        where = f"After {layer} your forward failed"
    else:
        where = f"The {layer} got an input of shape {_shape(shape)}"
    return (
        f"Shape error, found on a test batch of {DRY_RUN_BATCH} training inputs before "
        f"training: {where}. PyTorch says: {torch_says}"
    )


@dataclasses.dataclass
class Split:
    """As runtime.datasets.Split, which the sandbox does not get (see command.RUNTIME_FILES)."""

    x: typing.Any
    y: typing.Any


class _Invalid(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _describe(value) -> str:
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"


def _explain(error: BaseException) -> tuple[str, str, int | None]:
    """(kind, message, line in the learner's code) for an exception out of the learner's code."""
    line = _learner_line(error)
    if isinstance(error, _Invalid):
        return error.kind, str(error), line
    for cause in _chain(error):
        kind = _resource_kind(cause)
        if kind:
            return kind, "", line
    text = str(error).strip().splitlines()
    headline = f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
    if isinstance(error, SystemExit):
        headline = f"Your code called exit({error.code!r})"
    if len(headline) > 400:
        headline = headline[:400] + "..."
    if line is not None:
        headline += f" (line {line} of your code)"
    return "exception", headline, line


def _chain(error: BaseException):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _resource_kind(error: BaseException) -> str | None:
    if isinstance(error, MemoryError):
        return "memory"
    if isinstance(error, OSError):
        if error.errno == errno.EFBIG:
            return "file_size"
        if error.errno == errno.ENOSPC:
            return "disk"
        if error.errno == errno.EAGAIN:  # fork() or clone() over RLIMIT_NPROC
            return "processes"
        if error.errno == errno.ENOMEM:
            return "memory"
    if isinstance(error, RuntimeError):
        text = str(error)
        if "can't allocate memory" in text or "not enough memory" in text:
            return "memory"  # torch's CPU allocator under RLIMIT_AS
        if "can't start new thread" in text:
            return "processes"
    return None


def _learner_frames(error: BaseException) -> list[traceback.FrameSummary]:
    return [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if frame.filename == SUBMISSION_FILENAME
    ]


def _learner_line(error: BaseException) -> int | None:
    if isinstance(error, SyntaxError) and error.filename == SUBMISSION_FILENAME:
        return error.lineno
    frames = _learner_frames(error)
    return frames[-1].lineno if frames else None


def _print_learner_traceback(error: BaseException) -> None:
    """The traceback through the learner's own code only, to their stderr."""
    if isinstance(error, _Invalid):
        sys.stderr.write(f"{error}\n")
        return
    try:
        frames = _learner_frames(error)
        lines = ["Traceback (most recent call last):\n"] if frames else []
        lines += traceback.format_list(frames)
        lines += traceback.format_exception_only(type(error), error)
        sys.stderr.write("".join(lines))
    except Exception:  # noqa: S110 (stderr may be gone; the parent still gets the error line)
        pass


# --- rebuilding the parent's dataclasses from JSON ---------------------------------------------


def _rebuild(described):
    """An object the parent described as {"type": "module.Qualname", "fields": {...}}."""
    if described is None:
        return None
    cls = _resolve(described["type"])
    if cls is None:
        return _namespace(described["fields"])
    return _from_fields(cls, described["fields"])


def _resolve(name: str):
    module_name, _, qualname = name.rpartition(".")
    if not module_name.startswith("runtime."):
        return None  # a stand-in (tests): the trainer only reads attributes
    try:
        import importlib

        value = importlib.import_module(module_name)
        for part in qualname.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError):
        return None
    return value if dataclasses.is_dataclass(value) else None


def _namespace(value):
    if isinstance(value, dict):
        return types.SimpleNamespace(**{k: _namespace(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_namespace(v) for v in value)
    return value


def _from_fields(cls, data: dict):
    hints = typing.get_type_hints(cls)
    kwargs = {
        f.name: _convert(hints.get(f.name), data[f.name])
        for f in dataclasses.fields(cls)
        if f.init and f.name in data
    }
    return cls(**kwargs)


def _convert(hint, value):
    if value is None or hint is None:
        return value
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return _from_fields(hint, value)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            if arg is not type(None):
                converted = _convert(arg, value)
                if converted is not value or not isinstance(value, dict | list):
                    return converted
        return value
    if origin is tuple and isinstance(value, list):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v) for v in value)
        if args and len(args) == len(value):
            return tuple(_convert(a, v) for a, v in zip(args, value, strict=True))
        return tuple(value)
    if origin is list and isinstance(value, list):
        return [_convert(args[0] if args else None, v) for v in value]
    return value
