"""A training run's progress: the one definition of its points, checked wherever one crosses a
boundary, the ETA, and the schema of the run's summary (the trainer's TrainOutcome).

The trainer makes them, the sandbox forwards the ones a code run's child reports (untrusted),
the platform stores each as the payload of a "progress" JobEvent, diagnostics read them back
and the run page (static/js/run.js) draws them. All of them go through `ProgressPoint`:
`from_untrusted` checks a dict (types, finiteness, ranges; unknown keys dropped) and
`as_payload` writes the JSON object every consumer reads. `JSON_SCHEMA` is the same contract
for the event store (apps/jobs/events.py). Plain Python: the sandbox imports it.
"""

import math
from dataclasses import dataclass, fields
from typing import Any

# Counts above this are nonsense (and lose precision in a browser's numbers).
MAX_COUNT = 2**31 - 1
# No measurement is this large; a learner's child may say anything.
MAX_MEASURE = 1e12

# The ETA measures the time per step after a warm-up: the first steps (allocations, lazy
# imports, caches filling) are much slower than the rest and made the first ETA several times
# too long. The warm-up ends at the first step with at least this many steps done and at least
# this long since training began.
WARMUP_STEPS = 5
WARMUP_SECONDS = 1.0


class ProgressInvalid(ValueError):
    """A progress point that does not hold together; the message says which field and why."""


@dataclass(frozen=True)
class ProgressPoint:
    """One point of a run's progress. Counts are 1-based (`epoch` 1 is the first epoch; `step`
    counts the steps done over the whole run, out of `steps`). An epoch-end point carries the
    whole epoch's means and the validation measurements; the others carry the means since the
    previous point, and null validation fields."""

    epoch: int
    epochs: int
    step: int
    steps: int
    epoch_end: bool
    loss: float | None = None  # mean training loss; null when not finite
    train_accuracy: float | None = None
    val_accuracy: float | None = None  # epoch ends only, when the run has a validation split
    val_loss: float | None = None  # epoch ends only, likewise
    lr: float | None = None
    samples_per_second: float | None = None
    elapsed: float | None = None  # seconds since training began
    eta: float | None = None  # seconds left, estimated; null until it can be measured

    def __post_init__(self):
        _check_count("epochs", self.epochs, low=1)
        _check_count("epoch", self.epoch, low=1, high=self.epochs)
        _check_count("steps", self.steps, low=1)
        _check_count("step", self.step, low=0, high=self.steps)
        if type(self.epoch_end) is not bool:
            raise ProgressInvalid(f"epoch_end must be true or false, not {self.epoch_end!r}.")
        for name, (low, high) in _MEASURES.items():
            value = getattr(self, name)
            if value is not None and not _in_range(value, low, high):
                raise ProgressInvalid(
                    f"{name} must be a number from {low:g} to {high:g}, not {_shown(value)}."
                )

    @property
    def fraction_done(self) -> float:
        return self.step / self.steps

    @classmethod
    def from_untrusted(cls, raw: Any) -> "ProgressPoint":
        """A point from a dict anyone may have written (a learner's sandbox, a stored event).

        The counts and `epoch_end` must be right or the point is refused (ProgressInvalid); a
        measurement that is not a finite number in its range becomes null, since a diverging
        loss is still a point worth drawing. Unknown keys, and `fraction_done` (derived), are
        dropped."""
        if not isinstance(raw, dict):
            raise ProgressInvalid(f"A progress point must be an object, not {_shown(raw)}.")
        counts = {}
        for name in ("epoch", "epochs", "step", "steps"):
            value = raw.get(name)
            if type(value) is float and value.is_integer():
                value = int(value)  # JSON writers may spell 3 as 3.0
            if type(value) is not int:
                raise ProgressInvalid(f"{name} must be an integer, not {_shown(value)}.")
            counts[name] = value
        measures = {
            name: _measure(raw.get(name), low, high) for name, (low, high) in _MEASURES.items()
        }
        return cls(epoch_end=raw.get("epoch_end"), **counts, **measures)

    def as_payload(self) -> dict:
        """The point as JSON: every field, `fraction_done` included, in a fixed order."""
        payload = {f.name: getattr(self, f.name) for f in fields(self)}
        payload["fraction_done"] = self.fraction_done
        return payload


# name: (lowest, highest) of each measurement.
_MEASURES: dict[str, tuple[float, float]] = {
    "loss": (0.0, MAX_MEASURE),
    "train_accuracy": (0.0, 1.0),
    "val_accuracy": (0.0, 1.0),
    "val_loss": (0.0, MAX_MEASURE),
    "lr": (0.0, MAX_MEASURE),
    "samples_per_second": (0.0, MAX_MEASURE),
    "elapsed": (0.0, MAX_MEASURE),
    "eta": (0.0, MAX_MEASURE),
}
FIELDS = (*(f.name for f in fields(ProgressPoint)), "fraction_done")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_count(name: str, value: Any, *, low: int, high: int = MAX_COUNT) -> None:
    if type(value) is not int or not low <= value <= high:
        raise ProgressInvalid(
            f"{name} must be an integer from {low} to {high}, not {_shown(value)}."
        )


def _in_range(value: Any, low: float, high: float) -> bool:
    number = type(value) in (int, float)  # not bool, not a subclass with surprises
    return number and math.isfinite(value) and low <= value <= high


def _measure(value: Any, low: float, high: float) -> float | None:
    return float(value) if _in_range(value, low, high) else None


def _nullable_number(low: float, high: float) -> dict:
    return {"type": ["number", "null"], "minimum": low, "maximum": high}


JSON_SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "required": list(FIELDS),
    "properties": {
        "epoch": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT},
        "epochs": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT},
        "step": {"type": "integer", "minimum": 0, "maximum": MAX_COUNT},
        "steps": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT},
        "epoch_end": {"type": "boolean"},
        "fraction_done": {"type": "number", "minimum": 0, "maximum": 1},
        **{name: _nullable_number(low, high) for name, (low, high) in _MEASURES.items()},
    },
}

# The run's summary, as runtime.trainer.TrainOutcome.as_dict() writes it; its history is
# the epoch-end points. The runner adds when the first step began (`first_step_at`) to a spec
# run's.
OUTCOME_SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "required": ["status", "epochs_completed", "steps", "seconds", "diagnosis", "history"],
    "properties": {
        "status": {"enum": ["completed", "cancelled", "timed_out", "diverged"]},
        "epochs_completed": {"type": "integer", "minimum": 0, "maximum": MAX_COUNT},
        "steps": {"type": "integer", "minimum": 0, "maximum": MAX_COUNT},
        "seconds": {"type": "number", "minimum": 0, "maximum": MAX_MEASURE},
        "diagnosis": {"type": ["string", "null"]},
        "history": {"type": "array", "items": JSON_SCHEMA},
        "first_step_at": {"type": ["string", "null"], "format": "date-time"},
    },
}


class Eta:
    """Seconds left, from the time per step measured after the warm-up: (now - mark time) /
    (step - mark step) x steps left, where the mark is the first step that ends the warm-up.
    `step(step, now)` is called after every training step; `seconds_left` is None until a step
    after the mark was measured (and 0 once every step is done)."""

    def __init__(
        self,
        *,
        total_steps: int,
        started: float,
        deadline: float = math.inf,
        warmup_steps: int = WARMUP_STEPS,
        warmup_seconds: float = WARMUP_SECONDS,
    ):
        self.total_steps = total_steps
        self.started = started
        self.deadline = deadline
        self.warmup_steps = warmup_steps
        self.warmup_seconds = warmup_seconds
        self.mark: tuple[int, float] | None = None

    def step(self, step: int, now: float) -> None:
        warm = step >= self.warmup_steps and now - self.started >= self.warmup_seconds
        if self.mark is None and warm:
            self.mark = (step, now)

    def seconds_left(self, step: int, now: float) -> float | None:
        if step >= self.total_steps:
            return 0.0
        if self.mark is None or step <= self.mark[0]:
            return None
        mark_step, mark_time = self.mark
        per_step = (now - mark_time) / (step - mark_step)
        # A time budget stops the run at its deadline, however many steps are left.
        return max(0.0, min(per_step * (self.total_steps - step), self.deadline - now))
