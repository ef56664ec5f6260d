"""What check_spec learns about a model: per-layer shapes and sizes, totals, and the budget."""

from dataclasses import dataclass, field

from ..errors import Problem
from .words import count, percent, size

BYTES = 4  # float32


@dataclass(frozen=True)
class ModelBudget:
    """An exercise's limits; None is no limit."""

    max_params: int | None = None
    max_flops: int | None = None
    max_memory_bytes: int | None = None

    def __post_init__(self):
        for name in ("max_params", "max_flops", "max_memory_bytes"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(
                    f"ModelBudget.{name} must be a positive int or None, not {value!r}"
                )


@dataclass(frozen=True)
class LayerReport:
    position: str  # "3", or "3.2" inside the residual block at 3
    type: str
    output_shape: tuple[int, ...]  # per sample, without the batch
    params: int  # a residual block's are those of its layers
    flops: int  # estimated, forward, per sample
    input_shape: tuple[int, ...] = ()

    def as_dict(self) -> dict:
        return {
            "position": self.position,
            "type": self.type,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "params": self.params,
            "flops": self.flops,
        }


@dataclass(frozen=True)
class SpecReport:
    """Shapes and sizes of every layer that could be inferred, nested ones after their block.

    Totals are None when inference stopped at a problem; `problems` is empty for a spec that
    can be built (check_spec raises instead of returning one with problems).
    """

    input_shape: tuple[int, ...]
    layers: tuple[LayerReport, ...]
    output_shape: tuple[int, ...] | None
    total_params: int | None
    total_flops: int | None
    memory_bytes: int | None
    problems: tuple[Problem, ...] = ()
    resolved: tuple = field(default=(), repr=False, compare=False)  # for build_model

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {
            "input_shape": list(self.input_shape),
            "output_shape": None if self.output_shape is None else list(self.output_shape),
            "layers": [layer.as_dict() for layer in self.layers],
            "total_params": self.total_params,
            "total_flops": self.total_flops,
            "memory_bytes": self.memory_bytes,
            "problems": [problem.as_dict() for problem in self.problems],
        }


def memory_estimate(params: int, activations: int, batch_size: int) -> int:
    """Training memory in bytes: parameters x 4 bytes x 4 (weights, gradients, two Adam states)
    plus the input's and every layer's output values per sample x batch size x 4 bytes x 2
    (activations and their gradients)."""
    return params * BYTES * 4 + activations * batch_size * BYTES * 2


def over_budget(budget: ModelBudget, params: int, flops: int, memory: int) -> list[Problem]:
    """One problem per exceeded limit, saying by how much."""
    problems = []
    if budget.max_params is not None and params > budget.max_params:
        excess = _excess(params, budget.max_params, count)
        problems.append(Problem("layers", f"the model has {count(params)} parameters, {excess}"))
    if budget.max_flops is not None and flops > budget.max_flops:
        excess = _excess(flops, budget.max_flops, count)
        message = f"the model needs about {count(flops)} FLOPs per sample, {excess}"
        problems.append(Problem("layers", message))
    if budget.max_memory_bytes is not None and memory > budget.max_memory_bytes:
        excess = _excess(memory, budget.max_memory_bytes, size)
        message = (
            f"training needs about {size(memory)} of memory, {excess}; "
            "a smaller batch_size or model needs less"
        )
        problems.append(Problem("training.batch_size", message))
    return problems


def _excess(value: int, limit: int, fmt) -> str:
    extra = value - limit
    return f"{fmt(extra)} ({percent(extra, limit)}) over this exercise's limit of {fmt(limit)}"
