"""Hostile code submissions that write on the sandbox's result pipe what the harness never
would: for the sandbox's own tests and for the same submissions through the worker."""

RAW_WRITER = """
import os
import sys


def build_model(input_shape, num_classes):
    fd = sys.modules["runtime.sandbox.child"]._result_fd
    data = memoryview(__DATA__)
    while data:
        data = data[os.write(fd, data) :]
    __THEN__
"""


def raw_writer(data: str, then: str = "os._exit(0)") -> str:
    """Learner code that writes `data` (a Python expression for bytes) on the result pipe, then
    runs `then`."""
    return RAW_WRITER.replace("__DATA__", data).replace("__THEN__", then)


def forged_result(outcome: str, predictions: int = 32) -> str:
    """A result message with `predictions` zeros (32: one per test input of the sandbox tests'
    data) and `outcome` (a Python expression for bytes)."""
    zeros = f'b",".join([b"0"] * {predictions})'
    return raw_writer(
        f'b\'{{"type":"result","predictions":[\' + {zeros} + b\'],"outcome":\' '
        f"+ {outcome} + b'}}\\n'"
    )


# 200,000 well-formed progress lines (each as the harness would send one), then a failure of
# the learner's own.
FORGED_POINT = (
    '{"type":"progress","point":{"epoch":1,"epochs":1,"step":1,"steps":1,"epoch_end":false,'
    '"loss":0.5}}'
)
PROGRESS_FLOOD = raw_writer(f"b'{FORGED_POINT}\\n' * 200_000", then="raise RuntimeError('forged')")


def outcome_of_20_mb(predictions: int = 32) -> str:
    return forged_result(
        'b\'{"status":"completed","epochs_completed":1,"steps":1,"seconds":1.0,'
        "\"diagnosis\":\"' + b'x' * 20_000_000 + b'\"}'",
        predictions,
    )


def protocol_message(detail: str) -> str:
    return (
        f"The run's result pipe carried something the harness never sends: {detail}. Your code "
        "must not write to that pipe."
    )
