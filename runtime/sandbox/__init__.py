"""Running learner code (a code submission) under bubblewrap with resource limits.

A code submission is Python defining `build_model(input_shape, num_classes) -> torch.nn.Module`
and optionally `configure_optimizer(model) -> torch.optim.Optimizer`. `check_code` checks it
without running it; `run_code_submission` trains and predicts in a separate, sandboxed process:

* the parent writes the train and validation splits, the test INPUTS and the code to a private
  directory, which the sandbox sees read-only at /job; test labels never leave the parent, which
  scores the returned predictions itself;
* the sandbox is bubblewrap: a read-only root holding only /usr, the Python installation, the
  virtualenv and runtime, a private /tmp and /dev/shm in memory, new pid, ipc, uts,
  cgroup, mount and network namespaces (no interface up), an empty environment, no capabilities,
  and when the worker is root a uid of its own (from a pool, see uids.py);
* rlimits: address space, CPU time, processes, file size, no core files; the parent enforces the
  wall clock and an output cap, and kills the whole sandbox on either, on cancel and at the end;
* progress points and the final predictions come back as JSON lines on a pipe; the learner's
  print() goes to stdout/stderr, read with a cap.

Without bubblewrap, runs are refused unless the caller passes allow_limits_only=True: then the
code runs with the same limits but no filesystem isolation (see runner.py). The sandbox trains on
the CPU (the GPU is not exposed, and an address-space limit does not combine with CUDA).

The sandbox imports this package too (its harness is runtime.sandbox.child) but is given only
the runtime files it needs (command.RUNTIME_FILES), not the parent's modules: those behind
run_code_submission and bubblewrap_available load on first use, in the parent.
"""

import importlib

from runtime.sandbox.checks import MAX_CODE_BYTES, check_code
from runtime.sandbox.limits import (
    BUBBLEWRAP_MISSING,
    CodeRunResult,
    SandboxLimits,
    format_bytes,
    limit_message,
)

_FROM_RUNNER = ("bubblewrap_available", "run_code_submission")

__all__ = [
    "BUBBLEWRAP_MISSING",
    "MAX_CODE_BYTES",
    "CodeRunResult",
    "SandboxLimits",
    "bubblewrap_available",
    "check_code",
    "format_bytes",
    "limit_message",
    "run_code_submission",
]


def __getattr__(name: str):
    if name in _FROM_RUNNER:
        value = getattr(importlib.import_module("runtime.sandbox.runner"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
