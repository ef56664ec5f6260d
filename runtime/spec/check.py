"""check_spec and build_model: shape inference over plain integers, then the torch model."""

from dataclasses import dataclass

from ..errors import Problem, SpecInvalid
from .document import AugmentSpec, LayerSpec, ModelSpec
from .layers import LAYERS, RECURRENT, Act, Halt, LayerError, Resolved, build_layer
from .limits import MAX_ELEMENTS, MAX_PARAMS
from .parse import parse_spec
from .report import LayerReport, ModelBudget, SpecReport, memory_estimate, over_budget
from .words import KIND_TEXT, count, plural, shape

DEFAULT_LOSS = {"multiclass": "cross_entropy", "binary": "binary_cross_entropy"}


@dataclass(frozen=True)
class DatasetFacts:
    """What the spec is checked against: a DatasetInfo's fields, or the same given one by one."""

    input_shape: tuple[int, ...]
    kind: str  # "image" | "vector" | "tokens"
    task: str  # "multiclass" | "binary"
    num_classes: int
    vocab_size: int | None = None
    # tokens: the id that pads shorter sequences to input_shape (a text dataset's 0); None when
    # every sequence is full. A model with a recurrent layer then reads packed sequences.
    pad_id: int | None = None

    def __post_init__(self):
        rank = {"image": 3, "vector": 1, "tokens": 1}.get(self.kind)
        if rank is None or self.task not in DEFAULT_LOSS:
            raise ValueError(f"unknown dataset kind {self.kind!r} or task {self.task!r}")
        dims = self.input_shape
        if len(dims) != rank or not all(_positive(d) for d in dims):
            raise ValueError(f"a {self.kind} input_shape has {rank} positive sizes, not {dims!r}")
        classes = self.num_classes
        if not _positive(classes) or classes < 2 or (self.task == "binary" and classes != 2):
            raise ValueError(f"num_classes {classes!r} does not fit a {self.task} task")
        if self.vocab_size is not None and not _positive(self.vocab_size):
            raise ValueError(f"vocab_size must be a positive int or None, not {self.vocab_size!r}")
        if self.pad_id is not None and not (
            self.kind == "tokens"
            and isinstance(self.pad_id, int)
            and not isinstance(self.pad_id, bool)
            and 0 <= self.pad_id < (self.vocab_size or self.pad_id + 1)
        ):
            raise ValueError(
                f"pad_id {self.pad_id!r} is not a token id of this {self.kind} dataset"
            )


def _positive(n: object) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n > 0


def _dataset(info, input_shape, kind, task, num_classes, vocab_size, pad_id) -> DatasetFacts:
    """The facts from a DatasetInfo, or given one by one. A DatasetInfo says which id pads by
    its `pad_id` when it has one (a text dataset's, runtime.ingest.stored.TextDatasetInfo)."""
    if info is not None:
        input_shape, kind, task = info.input_shape, info.kind, info.task
        num_classes, vocab_size = info.num_classes, info.vocab_size
        pad_id = getattr(info, "pad_id", None)
    return DatasetFacts(tuple(input_shape or ()), kind, task, num_classes, vocab_size, pad_id)


class Walk:
    """Shape inference over a stack of layers; implements layers.Context."""

    def __init__(self, dataset: DatasetFacts, batch_size: int):
        self.kind, self.vocab_size, self.pad_id = dataset.kind, dataset.vocab_size, dataset.pad_id
        self.batch_size = batch_size
        self.prev: LayerSpec | None = None
        self.flattened = False
        self.params = 0
        self.problems: list[Problem] = []

    def stack(self, layers, x: Act) -> tuple[Act | None, tuple[Resolved, ...]]:
        """The stack's output, or None once a layer's output cannot be known."""
        done = []
        for layer in layers:
            resolved = self.one(layer, x)
            if resolved is None:
                return None, tuple(done)
            done.append(resolved)
            x, self.prev = resolved.output, layer
        return x, tuple(done)

    def one(self, layer: LayerSpec, x: Act) -> Resolved | None:
        kind = LAYERS[layer.type]
        try:
            if x.tokens and not kind.takes_tokens:
                got = shape(x.shape)
                raise LayerError(
                    f"receives token ids {got} but needs vectors of numbers; "
                    "add an embedding layer first"
                )
            out = kind.infer(layer, x, self)
            self.within_limits(layer, out)
        except LayerError as error:
            self.problem(layer, error.tail, error.field)
            return None
        except Halt:
            return None
        output = Act(out.shape, out.tokens)
        return Resolved(layer, x, output, out.params, out.flops, out.args, out.children)

    def within_limits(self, layer: LayerSpec, out) -> None:
        """Hard caps whatever the exercise: nothing this big is ever built."""
        values = Act(out.shape).size
        if values > MAX_ELEMENTS:
            raise LayerError(
                f"would produce {count(values)} values per sample ({shape(out.shape)}), more "
                f"than the limit of {count(MAX_ELEMENTS)}; make it smaller"
            )
        if layer.type != "residual":  # a block's parameters are its layers'
            self.params += out.params
        if self.params > MAX_PARAMS:
            raise LayerError(
                f"would bring the model to {count(self.params)} parameters, more than the "
                f"limit of {count(MAX_PARAMS)}; make it smaller"
            )

    def problem(self, layer: LayerSpec, tail: str, field=None, path=None) -> None:
        where = path or (f"{layer.path}.{field}" if field else layer.path)
        message = f"layer {layer.position} ({layer.type}) {tail}"
        self.problems.append(Problem(where, message, layer.position))


def inspect_spec(
    spec: ModelSpec | dict | str | bytes,
    info=None,
    *,
    input_shape: tuple[int, ...] | None = None,
    kind: str | None = None,
    task: str | None = None,
    num_classes: int | None = None,
    vocab_size: int | None = None,
    pad_id: int | None = None,
    budget: ModelBudget | None = None,
) -> SpecReport:
    """Like check_spec, but returns the problems in the report instead of raising, with the
    shapes as far as they could be inferred: for the model builder to show as it is edited.
    A document that does not parse still raises SpecInvalid."""
    spec = parse_spec(spec)
    dataset = _dataset(info, input_shape, kind, task, num_classes, vocab_size, pad_id)
    walk = Walk(dataset, spec.training.batch_size)
    start = Act(dataset.input_shape, tokens=dataset.kind == "tokens")
    out, resolved = walk.stack(spec.layers, start)
    problems = [*walk.problems, *_task_problems(spec, dataset, out)]
    problems += _augment_problems(spec.training.augment, dataset)
    totals = (None, None, None)
    if out is not None:
        totals = _totals(resolved, start, spec.training.batch_size)
        problems += over_budget(budget, *totals) if budget else []
    layers = tuple(_layer_reports(resolved))
    output = None if out is None else out.shape
    return SpecReport(start.shape, layers, output, *totals, tuple(problems), resolved)


def check_spec(
    spec: ModelSpec | dict | str | bytes,
    info=None,
    *,
    input_shape: tuple[int, ...] | None = None,
    kind: str | None = None,
    task: str | None = None,
    num_classes: int | None = None,
    vocab_size: int | None = None,
    pad_id: int | None = None,
    budget: ModelBudget | None = None,
) -> SpecReport:
    """Every layer's output shape, parameters and FLOPs for this dataset, or SpecInvalid with
    every problem found. The dataset comes as a DatasetInfo (`info`) or field by field."""
    report = inspect_spec(
        spec,
        info,
        input_shape=input_shape,
        kind=kind,
        task=task,
        num_classes=num_classes,
        vocab_size=vocab_size,
        pad_id=pad_id,
        budget=budget,
    )
    if report.problems:
        raise SpecInvalid(list(report.problems))
    return report


def build_model(
    spec: ModelSpec | dict | str | bytes,
    info=None,
    *,
    input_shape: tuple[int, ...] | None = None,
    kind: str | None = None,
    task: str | None = None,
    num_classes: int | None = None,
    vocab_size: int | None = None,
    pad_id: int | None = None,
):
    """The model of exactly the spec's layers, inferred sizes filled in: a SpecModel, which is a
    torch.nn.Sequential. It checks the spec first (raising SpecInvalid), so an unchecked spec is
    never built. On padded token ids (`pad_id`, or the DatasetInfo's) a model with a recurrent
    layer computes the samples' lengths from its input and its recurrent layers read packed
    sequences (modules.py); any other model ignores the padding as it always did."""
    report = check_spec(
        spec,
        info,
        input_shape=input_shape,
        kind=kind,
        task=task,
        num_classes=num_classes,
        vocab_size=vocab_size,
        pad_id=pad_id,
    )
    from torch import nn  # here, so that parsing and checking never load torch

    from .modules import SpecModel

    if info is not None:
        pad_id = getattr(info, "pad_id", None)
    recurrent = any(r.layer.type in RECURRENT for r in _walk(report.resolved))
    layers = (build_layer(r, nn) for r in report.resolved)
    return SpecModel(*layers, pad_id=pad_id if recurrent else None)


def _walk(resolved: tuple[Resolved, ...]):
    for r in resolved:
        yield r
        yield from _walk(r.children)


def _layer_reports(resolved: tuple[Resolved, ...]):
    for r in _walk(resolved):
        layer = r.layer
        yield LayerReport(
            layer.position, layer.type, r.output.shape, r.params, r.flops, r.input.shape
        )


def _totals(resolved: tuple[Resolved, ...], start: Act, batch_size: int) -> tuple[int, int, int]:
    params = sum(r.params for r in resolved)
    flops = sum(r.flops for r in resolved)
    activations = start.size + sum(r.output.size for r in _walk(resolved))
    return params, flops, memory_estimate(params, activations, batch_size)


def _task_problems(spec: ModelSpec, dataset: DatasetFacts, out: Act | None) -> list[Problem]:
    """The end of the model against the loss (the spec's, or the task's default) and the task.

    - multiclass: cross_entropy by default; the model ends with [num_classes] raw scores.
      binary_cross_entropy is refused; mse compares [num_classes] outputs with one-hot targets.
    - binary: binary_cross_entropy by default; the model ends with [1], the score of class 1
      (a final sigmoid is fine: the trainer leaves it out of the loss). cross_entropy works
      with [2] outputs, one per class; mse compares [1] output with the 0/1 target.
    - cross_entropy applies softmax itself, so a model ending with sigmoid is refused with it.
    """
    loss = spec.training.loss or DEFAULT_LOSS[dataset.task]
    if loss == "binary_cross_entropy" and dataset.task != "binary":
        message = (
            f"binary_cross_entropy is for two-class tasks, but this task has "
            f"{dataset.num_classes} classes; use cross_entropy"
        )
        return [Problem("training.loss", message)]
    last = spec.layers[-1]
    problems = []
    if loss == "cross_entropy" and last.type == "sigmoid":
        message = (
            f"layer {last.position} (sigmoid) ends the model, but cross_entropy expects raw "
            "scores and applies softmax itself; remove the final sigmoid layer"
        )
        problems.append(Problem(last.path, message, last.position))
    if out is not None:
        message = _output_problem(out.shape, loss, dataset)
        if message:
            problems.append(Problem(last.path, message, last.position))
    return problems


def _output_problem(got: tuple[int, ...], loss: str, dataset: DatasetFacts) -> str | None:
    if loss == "cross_entropy" or (loss == "mse" and dataset.task == "multiclass"):
        want = dataset.num_classes
    else:
        want = 1
    if got == (want,):
        return None
    if len(got) > 1:
        return (
            f"the model's output is {shape(got)} per sample but the task needs [{want}]; end "
            f"with a flatten layer and a linear layer with out_features {want}"
        )
    if dataset.task == "multiclass":
        need = f"the task has {dataset.num_classes} classes"
    elif want == 1:
        need = f"a two-class task with {loss} needs 1, the score of the second class"
    else:
        need = "cross_entropy on a two-class task needs 2, one score per class"
    outputs = plural(got[0], "output")
    end = f"end with a linear layer with out_features {want}"
    return f"the last layer gives {outputs} but {need}; {end}"


def _augment_problems(augment: AugmentSpec, dataset: DatasetFacts) -> list[Problem]:
    if augment == AugmentSpec():
        return []
    if dataset.kind != "image":
        message = (
            f"augmentations work on images, but this dataset's samples are "
            f"{KIND_TEXT[dataset.kind]}; remove training.augment"
        )
        return [Problem("training.augment", message)]
    channels = dataset.input_shape[0]
    problems = []
    for name in ("normalize_mean", "normalize_std"):
        values = getattr(augment, name)
        if values is not None and len(values) != channels:
            message = (
                f"training.augment.{name} has {plural(len(values), 'value')} but the images "
                f"have {plural(channels, 'channel')}; give one value per channel"
            )
            problems.append(Problem(f"training.augment.{name}", message))
    return problems
