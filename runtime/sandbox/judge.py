"""Judging a finished run: why it stopped, what came back on its result pipe and how it exited,
turned into the CodeRunResult the caller gets (the predictions put back in test order)."""

import signal
from typing import TYPE_CHECKING

from runtime.sandbox import protocol
from runtime.sandbox.limits import CodeRunResult, SandboxLimits, limit_message

if TYPE_CHECKING:
    from runtime.sandbox.supervise import Channel, Output


def _signal_of(returncode: int) -> int | None:
    if returncode < 0:
        return -returncode  # limits-only: the interpreter itself
    if returncode > 128:
        return returncode - 128  # bwrap passes on 128 + the signal
    return None


def judge(
    returncode: int, stopped: str | None, output: "Output", channel: "Channel", limits, order
) -> CodeRunResult:
    """`stopped`: why the parent stopped the run (None: it ended by itself)."""
    if stopped == "wall_time":
        return CodeRunResult("timed_out", limit_message("wall_time", limits), "wall_time")
    if stopped == "cancelled":
        return CodeRunResult("cancelled", "The run was cancelled.", "cancelled")
    if stopped == "output":
        return CodeRunResult("failed", limit_message("output", limits), "output")
    if channel.failure is not None:
        return _protocol_failure(channel.failure)
    if channel.result is not None and returncode == 0:
        return _success(channel.result, channel, order)
    if channel.error is not None:
        return _from_error(channel.error, limits, output)
    sig = _signal_of(returncode)
    if sig == signal.SIGXCPU:
        return CodeRunResult("failed", limit_message("cpu_time", limits), "cpu_time")
    if sig == signal.SIGXFSZ:
        return CodeRunResult("failed", limit_message("file_size", limits), "file_size")
    if not channel.ready:
        detail = output.last_line() or f"exit status {returncode}"
        return CodeRunResult("failed", f"The code sandbox could not start: {detail}", "sandbox")
    if sig == signal.SIGKILL:  # the CPU limit's hard end, or the kernel out of memory
        return CodeRunResult(
            "failed",
            "Your code was killed by the system (it used too much CPU time or memory).",
            "crash",
        )
    if sig is not None:
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return CodeRunResult("failed", f"Your code crashed (signal {name}).", "crash")
    return CodeRunResult(
        "failed", f"Your code exited before training finished (exit status {returncode}).", "exit"
    )


def _protocol_failure(detail: str) -> CodeRunResult:
    """The learner's failure: only their code can write on the pipe something the harness
    would not."""
    return CodeRunResult(
        "failed",
        f"The run's result pipe carried something the harness never sends: {detail}. Your "
        "code must not write to that pipe.",
        "protocol",
    )


def _from_error(error: protocol.Error, limits: SandboxLimits, output: "Output") -> CodeRunResult:
    kind, message = error.kind, error.message.replace("\x00", "\ufffd")
    if kind in ("memory", "processes", "file_size", "disk", "cpu_time"):
        return CodeRunResult("failed", limit_message(kind, limits), kind)
    if kind == "sandbox":
        detail = message[:300] or output.last_line()
        return CodeRunResult("failed", f"The code sandbox failed: {detail}", "sandbox")
    return CodeRunResult("failed", message[:600], kind)


def _success(message: protocol.Result, channel: "Channel", order) -> CodeRunResult:
    import torch

    predictions, count = message.predictions, len(order)
    if len(predictions) != count:
        return _protocol_failure(
            f"its result has {len(predictions)} predictions for {count} test inputs"
        )
    if predictions and max(predictions) >= channel.num_classes:
        return _protocol_failure(
            f"its result predicts a class outside 0 to {channel.num_classes - 1}"
        )
    in_test_order = torch.empty(count, dtype=torch.int64)
    in_test_order[order] = torch.tensor(predictions, dtype=torch.int64)
    outcome = message.outcome.model_dump()
    if outcome["diagnosis"] is not None:
        outcome["diagnosis"] = outcome["diagnosis"].replace("\x00", "\ufffd")
    # The history is the parent's own: the epoch ends it forwarded, each checked on the way.
    outcome["history"] = channel.history
    export_error = message.export_error.replace("\x00", "\ufffd") if message.export_error else None
    return CodeRunResult(
        "succeeded", predictions=in_test_order, outcome=outcome, export_error=export_error
    )
