"""What a code submission may use, what a run returns, and the sentences that explain a failure."""

import math
from dataclasses import dataclass
from typing import Any

import torch

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

# The smallest memory budget accepted. `memory_bytes` is what the learner's code may allocate on
# top of the runtime itself: Python, torch and the data already loaded. (Measured here: importing
# the CUDA build of torch maps about 3.1 GiB of address space, almost all of it shared libraries,
# so the address-space limit is set relative to the size of the process once everything is
# loaded; see child.py.)
MIN_MEMORY_BYTES = 256 * MiB
# A floor for max_processes: threads count towards it, and torch starts a few of its own.
MIN_PROCESSES = 16
# How much of the learner's stdout and stderr a result keeps (the start and the end).
KEPT_OUTPUT_BYTES = 16 * KiB


def _default_threads() -> int:
    """As many as this process's torch uses (the CPUs, or OMP_NUM_THREADS when it is set), at
    most 4."""
    return max(1, min(4, torch.get_num_threads()))


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits for one code submission.

    wall_seconds: the whole run, from start to the last prediction (the parent kills it then).
    cpu_seconds: CPU time of the learner's process, all threads together (RLIMIT_CPU); None:
        wall_seconds x threads, so that only wall_seconds binds for a busy multi-threaded run.
    memory_bytes: what the code may allocate beyond the loaded runtime (RLIMIT_AS, see above).
    max_processes: processes and threads of the sandbox user (RLIMIT_NPROC).
    max_file_bytes: the largest file the code may write (RLIMIT_FSIZE).
    tmp_bytes: the size of the private /tmp (and /dev/shm), both in memory.
    max_output_bytes: stdout and stderr together; more and the run is stopped.
    threads: torch's intra-op threads (and OMP_NUM_THREADS); None: min(4, this process's).
    max_artifact_bytes: the most the parent reads of each exported file (the ONNX model, the
        weights); a larger one is not kept. It cannot exceed max_file_bytes in effect: the
        sandbox cannot write more than that into a file.
    """

    wall_seconds: float = 600.0
    cpu_seconds: float | None = None
    memory_bytes: int = 4 * GiB
    max_processes: int = 64
    max_file_bytes: int = 64 * MiB
    tmp_bytes: int = 256 * MiB
    max_output_bytes: int = 1 * MiB
    threads: int | None = None
    max_artifact_bytes: int = 64 * MiB

    def __post_init__(self):
        if not self.wall_seconds > 0:
            raise ValueError("wall_seconds must be positive")
        if self.cpu_seconds is not None and not self.cpu_seconds > 0:
            raise ValueError("cpu_seconds must be positive")
        if self.memory_bytes < MIN_MEMORY_BYTES:
            raise ValueError(f"memory_bytes must be at least {format_bytes(MIN_MEMORY_BYTES)}")
        if self.max_processes < MIN_PROCESSES:
            raise ValueError(f"max_processes must be at least {MIN_PROCESSES}")
        if self.max_file_bytes < 1 * MiB or self.tmp_bytes < 1 * MiB:
            raise ValueError("max_file_bytes and tmp_bytes must be at least 1 MiB")
        if self.max_output_bytes < 1 * KiB:
            raise ValueError("max_output_bytes must be at least 1 KiB")
        if self.max_artifact_bytes < 1 * KiB:
            raise ValueError("max_artifact_bytes must be at least 1 KiB")
        if self.threads is not None and self.threads < 1:
            raise ValueError("threads must be at least 1")

    @property
    def thread_count(self) -> int:
        return self.threads or _default_threads()

    @property
    def cpu_limit(self) -> int:
        """RLIMIT_CPU in whole seconds (the kernel counts whole seconds)."""
        seconds = self.cpu_seconds or self.wall_seconds * self.thread_count
        return max(1, math.ceil(seconds))


@dataclass
class CodeRunResult:
    """What a code submission's run came to.

    status: "succeeded" (predictions came back), "failed", "cancelled" or "timed_out" (the wall
    clock). kind: why, for programs: None on success; "invalid_code", "refused", "memory",
    "processes", "cpu_time", "wall_time", "output", "file_size", "disk", "exception",
    "invalid_model", "invalid_optimizer", "exit", "crash", "cancelled", "sandbox", "protocol".
    message: one sentence for the learner ("" on success). predictions: int64 [N_test] class
    indices. outcome: the trainer's summary (TrainOutcome.as_dict()). output: the learner's
    stdout and stderr, cut to its first and last 8 KiB. seconds: the wall time the sandbox ran,
    from its start to its kill, measured by the parent (0 when nothing ran): what the run is
    charged. isolation: "bubblewrap" or "limits_only" (None when nothing ran).
    progress_forwarded, progress_dropped: the progress points the parent passed on to
    `progress`, and those it dropped (over the rate or the cap; see supervise.Channel).
    onnx, weights: the files the harness exported after training (runtime.artifacts.export),
    read by the parent within max_artifact_bytes and NOT checked: the caller runs check_onnx and
    check_safetensors before it trusts them. None when there is none. export_error: why an
    export is missing (the harness's reason, or the parent's for a file it would not read); a
    run that succeeded is graded from its predictions whatever this says.
    """

    status: str
    message: str = ""
    kind: str | None = None
    predictions: torch.Tensor | None = None
    outcome: dict[str, Any] | None = None
    output: str = ""
    seconds: float = 0.0
    isolation: str | None = None
    progress_forwarded: int = 0
    progress_dropped: int = 0
    onnx: bytes | None = None
    weights: bytes | None = None
    export_error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


# The files the harness exports into, as the parent names them in the job directory's out/.
ONNX_FILENAME = "model.onnx"
WEIGHTS_FILENAME = "weights.safetensors"


def format_bytes(count: int) -> str:
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if count >= size:
            value = count / size
            return f"{value:g} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{count} bytes"


def format_seconds(seconds: float) -> str:
    return f"{seconds:g} s"


BUBBLEWRAP_MISSING = (
    "Code submissions need bubblewrap (apt-get install bubblewrap), which is not installed on "
    "this worker, so learner code cannot run safely here; ask an administrator to install it."
)


def limit_message(kind: str, limits: SandboxLimits) -> str:
    """The sentence for a run stopped by one of its limits."""
    if kind == "memory":
        return f"Your code used more than {format_bytes(limits.memory_bytes)} of memory."
    if kind == "processes":
        return (
            f"Your code created too many processes (the limit is {limits.max_processes}, "
            "threads included)."
        )
    if kind == "cpu_time":
        return f"Your code used more than {format_seconds(limits.cpu_limit)} of CPU time."
    if kind == "wall_time":
        return f"Your code ran past its time limit of {format_seconds(limits.wall_seconds)}."
    if kind == "output":
        return f"Your code printed more than {format_bytes(limits.max_output_bytes)}."
    if kind == "file_size":
        return f"Your code wrote a file larger than {format_bytes(limits.max_file_bytes)}."
    if kind == "disk":
        return f"Your code filled its {format_bytes(limits.tmp_bytes)} of temporary space."
    raise ValueError(kind)
