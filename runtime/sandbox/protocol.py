"""What the sandbox may say on its result pipe: one schema per message, and the size of each.

The learner's code runs in the process that writes the pipe, so every line is untrusted input.
The parent reads a line only if it is short enough for its kind, parses it with a JSON parser
that stops at a nesting limit (pydantic-core's, 200 levels, without recursing in Python) and
accepts it only if it fits its message's schema exactly: no unknown field, no other type (strict
mode: `true` is not a number, `1.5` not an integer), the sizes below. Anything else fails the
run as the learner's (kind "protocol"), with a message that says what was wrong.

    {"type": "ready"}
    {"type": "progress", "point": {name: value}}     values: numbers, text, flags, null, and
                                                     lists or objects of those (one level)
    {"type": "result", "predictions": [class index, ...], "outcome": OUTCOME,
     "export_error": "..." | null}                   why the model was not exported, if not
    {"type": "error", "kind": KIND, "message": "...", "line": N | null}

OUTCOME is the trainer's summary without its history (the parent rebuilds that from the
epoch-end progress points it forwarded): status, epochs_completed, steps, seconds, diagnosis.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, TypeAdapter

from runtime.sandbox.limits import KiB, MiB

# The most a run may send in all (progress included); more and it is stopped.
MAX_CHANNEL_BYTES = 64 * MiB
# The longest line of each kind. A result's is its outcome's allowance plus the predictions:
# one class index and a comma per test input (result_line_limit).
MAX_READY_LINE_BYTES = 64
MAX_PROGRESS_LINE_BYTES = 4 * KiB
MAX_ERROR_LINE_BYTES = 16 * KiB
MAX_OUTCOME_BYTES = 16 * KiB
# Text fields of the harness's own messages are far shorter; these bound what a line may hold.
MAX_DIAGNOSIS_CHARS = 2000
MAX_ERROR_MESSAGE_CHARS = 4000
MAX_EXPORT_ERROR_CHARS = 1000
# What a result line may spend on its export_error: every character escaped as \\uXXXX, quotes.
MAX_EXPORT_ERROR_BYTES = 6 * MAX_EXPORT_ERROR_CHARS + 64

# The kinds of error the harness reports (child.py); "sandbox" only before "ready".
ERROR_KINDS = (
    "sandbox",
    "exception",
    "invalid_model",
    "invalid_optimizer",
    "memory",
    "processes",
    "file_size",
    "disk",
    "cpu_time",
)
OUTCOME_FIELDS = ("status", "epochs_completed", "steps", "seconds", "diagnosis")

Count = Annotated[StrictInt, Field(ge=0)]
Scalar = StrictBool | StrictInt | Annotated[float, Field(strict=True)] | str | None


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Ready(_Message):
    type: Literal["ready"]


class Progress(_Message):
    type: Literal["progress"]
    point: dict[str, Scalar | list[Scalar] | dict[str, Scalar]]


class Outcome(_Message):
    status: Literal["completed", "cancelled", "timed_out", "diverged"]
    epochs_completed: Count
    steps: Count
    seconds: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    diagnosis: Annotated[str, Field(max_length=MAX_DIAGNOSIS_CHARS)] | None


class Result(_Message):
    type: Literal["result"]
    predictions: list[Count]
    outcome: Outcome
    export_error: Annotated[str, Field(max_length=MAX_EXPORT_ERROR_CHARS)] | None = None


class Error(_Message):
    type: Literal["error"]
    kind: Literal[ERROR_KINDS]
    message: Annotated[str, Field(max_length=MAX_ERROR_MESSAGE_CHARS)]
    line: Annotated[StrictInt, Field(ge=1)] | None


Message = Annotated[Ready | Progress | Result | Error, Field(discriminator="type")]
MESSAGE = TypeAdapter(Message)


def result_line_limit(test_count: int, num_classes: int) -> int:
    """The longest result line a run of `test_count` test inputs and `num_classes` classes
    needs: the envelope, each prediction with its comma, the outcome's allowance and the
    export error's."""
    digits = len(str(max(num_classes - 1, 0)))
    return 64 + test_count * (digits + 1) + MAX_OUTCOME_BYTES + MAX_EXPORT_ERROR_BYTES


LINE_LIMITS = {
    "ready": MAX_READY_LINE_BYTES,
    "progress": MAX_PROGRESS_LINE_BYTES,
    "error": MAX_ERROR_LINE_BYTES,
}
