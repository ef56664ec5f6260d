"""Running the sandbox and watching it: the learner's output (capped), the result pipe (each line
checked, progress throttled), the wall clock, cancel, and the kill of everything it started."""

import contextlib
import os
import selectors
import signal
import subprocess
import time

from pydantic import ValidationError

from runtime.progress import ProgressInvalid, ProgressPoint
from runtime.sandbox import protocol
from runtime.sandbox.command import Launch
from runtime.sandbox.judge import judge
from runtime.sandbox.limits import KEPT_OUTPUT_BYTES, CodeRunResult, format_bytes
from runtime.sandbox.uids import kill_processes_of
from runtime.trainer import PROGRESS_INTERVAL_S

# Progress points other than epoch ends that the parent passes on: at the trusted trainer's
# rate (PROGRESS_INTERVAL_S), with bursts of at most this many, and at most this many in a run.
PROGRESS_BURST = 4
MAX_PROGRESS_POINTS = 5000
# How long, after the sandbox exits, the parent waits for its pipes to close.
DRAIN_SECONDS = 2.0
POLL_SECONDS = 0.2


class Output:
    """The learner's stdout+stderr: counted in full, kept as its start and its end."""

    def __init__(self):
        self.total = 0
        self.head = bytearray()
        self.tail = bytearray()

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        half = KEPT_OUTPUT_BYTES // 2
        if len(self.head) < half:
            take = half - len(self.head)
            self.head += chunk[:take]
            chunk = chunk[take:]
        self.tail += chunk
        if len(self.tail) > half:
            del self.tail[: len(self.tail) - half]

    def text(self) -> str:
        skipped = self.total - len(self.head) - len(self.tail)
        middle = f"\n[... {skipped} bytes not kept ...]\n".encode() if skipped > 0 else b""
        text = bytes(self.head + middle + self.tail).decode("utf-8", errors="replace")
        return text.replace("\x00", "\ufffd")  # databases refuse NUL in text

    def last_line(self) -> str:
        lines = self.text().strip().splitlines()
        return lines[-1][:300] if lines else ""


class Channel:
    """The result pipe: JSON lines from an untrusted process (protocol.py), read with a limit on
    each line's size, its depth and its schema. The first malformed line stops the run
    (`failure` says why). Progress is throttled here, whatever the child does: see _forward."""

    def __init__(self, *, progress, test_count: int, num_classes: int, epochs: int | None):
        self.buffer = bytearray()
        self.total = 0
        self.lines = 0
        self.ready = False
        self.result: protocol.Result | None = None
        self.error: protocol.Error | None = None
        self.failure: str | None = None
        self.progress = progress
        self.num_classes = num_classes
        self.result_limit = protocol.result_line_limit(test_count, num_classes)
        self.longest = max(self.result_limit, *protocol.LINE_LIMITS.values())
        self.epochs = epochs
        self.history: list[dict] = []  # the epoch-end points forwarded, in order
        self.forwarded = 0  # progress points passed on, epoch ends included
        self.dropped = 0  # progress points not passed on
        self._points = 0  # points other than epoch ends passed on
        self._tokens = float(PROGRESS_BURST)
        self._refilled = time.monotonic()

    @property
    def finished(self) -> bool:
        return self.result is not None or self.error is not None

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        if self.failure is not None:
            return
        if self.total > protocol.MAX_CHANNEL_BYTES:
            self.failure = f"more than {format_bytes(protocol.MAX_CHANNEL_BYTES)} in all"
            return
        self.buffer += chunk
        while self.failure is None and (end := self.buffer.find(b"\n")) >= 0:
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 1]
            self.lines += 1
            self._line(line)
        if self.failure is None and len(self.buffer) > self.longest:
            self.lines += 1
            self.failure = self._too_long(self.longest)

    def _too_long(self, limit: int) -> str:
        return f"line {self.lines} is longer than {format_bytes(limit)}, the most it may be"

    def _line(self, line: bytes) -> None:
        if len(line) > self.longest:
            self.failure = self._too_long(self.longest)
            return
        try:
            message = protocol.MESSAGE.validate_json(line)
        except ValidationError as error:
            self.failure = _schema_problem(self.lines, error)
            return
        limit = protocol.LINE_LIMITS.get(message.type, self.result_limit)
        if len(line) > limit:
            self.failure = self._too_long(limit)
        elif isinstance(message, protocol.Ready):
            self.ready = True
        elif isinstance(message, protocol.Progress):
            self._forward(message)
        elif self.finished:
            return  # the first result or error is the run's answer
        elif isinstance(message, protocol.Result):
            self.result = message
        elif message.kind == "sandbox" and self.ready:
            # The harness reports its own failures before "ready", before any learner code ran;
            # one after it is learner code claiming to be the platform's fault.
            self.failure = f"line {self.lines} reports a failure of the sandbox after it started"
        else:
            self.error = message

    def _forward(self, message: protocol.Progress) -> None:
        """Passes on each new epoch end (epoch numbers rising, up to the run's epochs), and
        other points at the trainer's rate (PROGRESS_INTERVAL_S, with a burst of
        PROGRESS_BURST) up to MAX_PROGRESS_POINTS; drops and counts the rest."""
        point = None if self.finished else progress_point(message.point)
        if point is None:
            self.dropped += 1
            return
        now = time.monotonic()
        self._tokens = min(
            PROGRESS_BURST, self._tokens + (now - self._refilled) / PROGRESS_INTERVAL_S
        )
        self._refilled = now
        if self._new_epoch_end(point):
            self.history.append(point)
        elif self._tokens >= 1 and self._points < MAX_PROGRESS_POINTS:
            self._tokens -= 1
            self._points += 1
        else:
            self.dropped += 1
            return
        self.forwarded += 1
        if self.progress is not None:
            self.progress(point)

    def _new_epoch_end(self, point: dict) -> bool:
        if point.get("epoch_end") is not True and point.get("val_accuracy") is None:
            return False
        epoch = point.get("epoch")
        if type(epoch) is float and epoch.is_integer():
            epoch = int(epoch)
        if type(epoch) is not int or epoch < 1:
            return False
        if self.epochs is not None and epoch > self.epochs:
            return False
        return not self.history or epoch > self.history[-1]["epoch"]


def _schema_problem(number: int, error: ValidationError) -> str:
    """What was wrong with a line, in a sentence: its JSON, its type, or its first wrong field."""
    first = error.errors(include_url=False)[0]
    kind, where, what = first["type"], first["loc"], first["msg"]
    if kind == "json_invalid":
        if "recursion limit" in what:
            return f"line {number} is nested too deeply"
        return f"line {number} is not valid JSON"
    if kind in ("union_tag_not_found", "model_type", "dict_type"):
        return f"line {number} is not a message (an object with a type)"
    if kind == "union_tag_invalid":
        return f"line {number} is a message of an unknown type"
    field = ".".join(str(part) for part in where[1:]) or "the message"
    return f"line {number}, a {where[0]} message, does not fit its schema ({field}: {what})"


def progress_point(point) -> dict | None:
    """The child's progress point, checked as every point is (runtime.progress), or
    None when it does not hold together (it is then dropped)."""
    try:
        return ProgressPoint.from_untrusted(point).as_payload()
    except ProgressInvalid:
        return None


def supervise(launch: Launch, *, limits, ids, order, num_classes, epochs, progress, should_cancel):
    started = time.monotonic()
    output = Output()
    channel = Channel(
        progress=progress, test_count=len(order), num_classes=num_classes, epochs=epochs
    )
    process = None
    stopped: str | None = None  # why the parent stopped it
    try:
        try:
            process = subprocess.Popen(  # noqa: S603 (argv built above, no shell)
                launch.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=launch.env,
                cwd=launch.cwd,
                pass_fds=[launch.result_w, *launch.data_fds],
                start_new_session=True,
                preexec_fn=launch.preexec,
            )
        except (OSError, subprocess.SubprocessError) as error:
            # E.g. no right to make a network namespace: a container without CAP_SYS_ADMIN.
            message = f"The code sandbox could not start: {error}"
            return CodeRunResult("failed", message, "sandbox")
        finally:
            for fd in [launch.result_w, *launch.data_fds]:
                os.close(fd)
        stopped = _watch(process, launch.result_r, output, channel, limits, should_cancel)
    finally:
        if process is not None:
            _stop(process, ids)
        os.close(launch.result_r)
    # The device time the run held, measured here from its start to its kill: what it is
    # charged, whatever it reported (apps/quotas).
    seconds = time.monotonic() - started
    result = judge(process.returncode, stopped, output, channel, limits, order)
    result.seconds = seconds
    result.output = output.text()
    result.progress_forwarded, result.progress_dropped = channel.forwarded, channel.dropped
    return result


def _watch(process, result_r, output: Output, channel: Channel, limits, should_cancel):
    deadline = time.monotonic() + limits.wall_seconds
    out_fd = process.stdout.fileno()
    selector = selectors.DefaultSelector()
    for fd in (out_fd, result_r):
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ)
    exited_at = None
    try:
        while selector.get_map():
            now = time.monotonic()
            timeout = max(0.0, min(POLL_SECONDS, deadline - now))
            for key, _ in selector.select(timeout):
                try:
                    chunk = os.read(key.fd, 1 << 16)
                except BlockingIOError:
                    continue
                if not chunk:
                    selector.unregister(key.fd)
                elif key.fd == out_fd:
                    output.add(chunk)
                else:
                    channel.add(chunk)
            if output.total > limits.max_output_bytes:
                return "output"
            if channel.failure is not None:
                return "protocol"
            now = time.monotonic()
            if exited_at is None and process.poll() is not None:
                exited_at = now
            if exited_at is not None:
                if now - exited_at > DRAIN_SECONDS:
                    return None  # something the learner left behind holds a pipe open
                continue
            if now >= deadline:
                return "wall_time"
            if should_cancel is not None and should_cancel():
                return "cancelled"
        return None
    finally:
        selector.close()


def _stop(process: subprocess.Popen, ids) -> None:
    """Kill the sandbox and everything in it, and reap it; always."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    process.wait()
    if ids is not None:
        kill_processes_of(ids[0])
    if process.stdout is not None:
        process.stdout.close()
