"""A code submission's run, from the trusted side: check the code, prepare the job, start the
sandbox, watch it, judge it. The parts, by concern:

* uids.py: the pool of uids runs take when the worker is root, and the processes of a uid;
* job.py: the private job directory and the inputs written to it (never a test label);
* command.py: the launch, bwrap's arguments and what is bound into the sandbox (an allow-list of
  runtime files), or the limits-only launch;
* supervise.py: starting the sandbox, reading its output and its result pipe (the throttle on
  progress), the wall clock, cancel, the kill;
* judge.py: the run's outcome from why it stopped, what it sent and how it exited.

Isolation:

* bubblewrap, run as root (a worker in its container): the parent leases a dedicated uid from a
  pool (one per concurrent run), creates an empty network namespace (loopback down) and sets the
  rlimits in the forked child, then execs bwrap, still root, to build a minimal read-only root
  with new pid, ipc, uts, cgroup and mount namespaces. bwrap hands over only CAP_SETUID,
  CAP_SETGID and CAP_SETPCAP; the bootstrap (privileges.py) empties the bounding and ambient
  sets, drops to the leased uid (no groups) and clears the inheritable set before any other code
  of ours is imported, so every capability set is empty, and no_new_privs stays set.
  RLIMIT_NPROC is then enforced (it is not for root) and counts only this run's processes.
* bubblewrap, run by an ordinary user (a developer's machine): bwrap builds the same root in a new
  user namespace (--unshare-all, nested user namespaces disabled, its own network namespace with
  only loopback); the run keeps the user's uid, so its process limit is set above the processes
  the user already has.
* limits only (no bubblewrap, and only when the caller allows it): the rlimits, a cleared
  environment, an empty network namespace and a separate uid when run as root; no filesystem
  isolation at all.
"""

import dataclasses
import shutil
from collections.abc import Callable

from runtime.sandbox import command, exported, job, supervise, uids
from runtime.sandbox.checks import check_code
from runtime.sandbox.limits import BUBBLEWRAP_MISSING, CodeRunResult, SandboxLimits

# What a run needs besides training, kept out of the training budget: the sandbox's start
# (Python, torch, the data), torch's lazy imports, the predictions, the export of the model.
STARTUP_AND_PREDICT_SECONDS = 25.0
# The longest export_error a result carries (the harness's reason and the parent's together).
MAX_EXPORT_ERROR_CHARS = 2000


def bubblewrap_available() -> bool:
    """Whether `bwrap` is on PATH (code submissions are refused without it, by default)."""
    return shutil.which("bwrap") is not None


def run_code_submission(
    *,
    code: str,
    data,
    training,
    budget=None,
    limits: SandboxLimits = SandboxLimits(),  # noqa: B008 (immutable)
    allow_limits_only: bool = False,
    progress: Callable[[dict], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> CodeRunResult:
    """Train the model `code` builds on `data` (a DatasetSplits) and predict its test inputs.

    The sandbox gets the train and validation splits, the test inputs and never the test labels;
    the caller scores `result.predictions` against `data.test.y`. Failures of the learner's code
    come back as a result with a message, never as an exception.
    """
    problems = check_code(code)
    if problems:
        return CodeRunResult("failed", " ".join(p.message for p in problems), "invalid_code")
    bwrap = shutil.which("bwrap")
    if bwrap is None and not allow_limits_only:
        return CodeRunResult("failed", BUBBLEWRAP_MISSING, "refused")
    isolation = "bubblewrap" if bwrap else "limits_only"
    budget = _within_wall_clock(budget, limits)
    with uids.sandbox_ids() as ids:
        if isolation == "limits_only" and ids is not None:
            refusal = command.limits_only_refusal()
            if refusal:
                return CodeRunResult("failed", refusal, "refused")
        with job.job_directory(ids, isolation) as directory:
            artifacts_dir = (
                command.ARTIFACTS_IN_SANDBOX
                if isolation == "bubblewrap"
                else str(directory / "out")
            )
            order = job.write_inputs(
                directory,
                code=code,
                data=data,
                training=training,
                budget=budget,
                limits=limits,
                artifacts_dir=artifacts_dir,
            )
            if isolation == "bubblewrap":
                launch = command.bubblewrap_launch(bwrap, directory, ids, limits)
            else:
                launch = command.limits_only_launch(directory, ids, limits)
            result = supervise.supervise(
                launch,
                limits=limits,
                ids=ids,
                order=order,
                num_classes=int(data.info.num_classes),
                epochs=_epochs(training, budget),
                progress=progress,
                should_cancel=should_cancel,
            )
            if result.succeeded:  # the sandbox is gone: nothing writes the files any more
                _take_exported(result, directory, limits)
    result.isolation = isolation
    return result


def _take_exported(result: CodeRunResult, directory, limits: SandboxLimits) -> None:
    """The exported files, read within the cap and unchecked; why any is missing."""
    cap = min(limits.max_artifact_bytes, limits.max_file_bytes)
    result.onnx, result.weights, problems = exported.read_exported(directory / "out", cap)
    reasons = [reason for reason in (result.export_error, *problems) if reason]
    if reasons:
        text = " ".join(reasons)
        if len(text) > MAX_EXPORT_ERROR_CHARS:
            text = text[: MAX_EXPORT_ERROR_CHARS - 3] + "..."
        result.export_error = text


def _within_wall_clock(budget, limits: SandboxLimits):
    """The training budget, cut so that training stops by itself (and predictions still come
    back) before the wall clock kills the run."""
    from runtime.trainer import ComputeBudget

    room = max(1.0, limits.wall_seconds - STARTUP_AND_PREDICT_SECONDS)
    if budget is None:
        return ComputeBudget(max_seconds=room)
    if budget.max_seconds is None or budget.max_seconds > room:
        return dataclasses.replace(budget, max_seconds=room)
    return budget


def _epochs(training, budget) -> int | None:
    """The most epochs the run trains (the trainer's own rule): no epoch end beyond it is real."""
    counts = [getattr(training, "epochs", None), getattr(budget, "max_epochs", None)]
    counts = [c for c in counts if isinstance(c, int) and not isinstance(c, bool)]
    return min(counts) if counts else None
