"""The code sandbox: learner code that attacks the machine fails with a clear message, finds
nothing it should not, and leaves the parent healthy with no process behind.

Each test runs real learner code in a real sandbox (bubblewrap; the worker's root is dropped to
a leased uid). Probes that "succeed" in running (reading environments, files, the network)
print what they could see and then raise; the tests assert on what was seen.
"""

import contextlib
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from runtime.datasets import DatasetInfo, DatasetSplits, Split
from runtime.progress import FIELDS
from runtime.sandbox import (
    BUBBLEWRAP_MISSING,
    SandboxLimits,
    bubblewrap_available,
    check_code,
    command,
    run_code_submission,
    supervise,
    uids,
)
from runtime.sandbox.seccomp import seccomp_program
from runtime.spec import AugmentSpec, OptimizerSpec, ScheduleSpec, TrainingSpec
from runtime.trainer import PROGRESS_INTERVAL_S, ComputeBudget
from tests.runtime.sandbox_support import (
    PROGRESS_FLOOD,
    forged_result,
    outcome_of_20_mb,
    protocol_message,
    raw_writer,
)

ROOT = Path(__file__).resolve().parents[2]

needs_bwrap = pytest.mark.skipif(
    not bubblewrap_available(), reason="bubblewrap is missing: run scripts/ensure-test-deps"
)

# Labels with a recognisable pattern. The test labels must never be readable in the sandbox; the
# training labels must be (a control: the search below does find labels that were sent).
TRAIN_MARK = [4, 8, 1, 5, 9, 2, 6, 0]
TEST_MARK = [7, 3, 9, 1, 0, 8, 2, 6, 5, 4, 7, 7, 3, 3, 9, 9]

TRAINING = TrainingSpec(
    optimizer=OptimizerSpec(type="adam", lr=0.01),
    schedule=ScheduleSpec(),
    loss=None,
    epochs=2,
    batch_size=16,
    augment=AugmentSpec(),
)
QUICK = SandboxLimits(wall_seconds=60)

TINY_MODEL = """
import torch
from torch import nn
from torch.nn import functional as F


class Echo(nn.Module):  # a layer that learns, and a prediction: the class in the first feature
    def __init__(self, features, num_classes):
        super().__init__()
        self.num_classes = num_classes
        self.linear = nn.Linear(features, num_classes)

    def forward(self, x):
        classes = x[:, 0].long().clamp(0, self.num_classes - 1)
        return F.one_hot(classes, self.num_classes).float() * 100 + self.linear(x)


def build_model(input_shape, num_classes):
    print("building for", input_shape, num_classes)
    return Echo(input_shape[0], num_classes)


def configure_optimizer(model):  # instead of the spec's Adam at 0.01
    return torch.optim.SGD(model.parameters(), lr=0.125)
"""


def tiny_data() -> DatasetSplits:
    """Ten classes of 4-feature vectors. The labels of all splits are views of one tensor, so
    that sending a split's labels without copying them would also send the test labels."""
    n_train, n_val, n_test = 48, 16, 32
    labels = torch.tensor(TRAIN_MARK * 6 + TRAIN_MARK * 2 + TEST_MARK * 2, dtype=torch.int64)
    x = torch.randn(n_train + n_val + n_test, 4, generator=torch.Generator().manual_seed(0))
    info = DatasetInfo(
        name="tiny",
        title="Tiny",
        kind="vector",
        task="multiclass",
        input_shape=(4,),
        num_classes=10,
        class_names=tuple(str(i) for i in range(10)),
        vocab_size=None,
        sizes=(n_train, n_val, n_test),
        requires_download=False,
    )
    a, b = n_train, n_train + n_val
    return DatasetSplits(
        info, Split(x[:a], labels[:a]), Split(x[a:b], labels[a:b]), Split(x[b:], labels[b:])
    )


def run(code: str, limits: SandboxLimits = QUICK, **kwargs):
    kwargs.setdefault("data", tiny_data())
    kwargs.setdefault("training", TRAINING)
    kwargs.setdefault("budget", ComputeBudget(max_seconds=30))
    return run_code_submission(code=code, limits=limits, **kwargs)


LIMITS = (resource.RLIMIT_AS, resource.RLIMIT_CPU, resource.RLIMIT_NPROC, resource.RLIMIT_FSIZE)


@contextlib.contextmanager
def leases_recorded(patch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The sandbox uids runs lease meanwhile (other test sessions may lease others)."""
    leased: list[int] = []
    original = uids.sandbox_ids

    @contextlib.contextmanager
    def recording():
        with original() as ids:
            if ids is not None:
                leased.append(ids[0])
            yield ids

    patch.setattr(uids, "sandbox_ids", recording)
    yield leased


def assert_nothing_left(leased: list[int]) -> None:
    for uid in leased:
        assert uids.processes_of(uid) == [], f"processes of sandbox uid {uid} remain"


@pytest.fixture(autouse=True)
def parent_survives(monkeypatch):
    """After every test: no process of the run's uid is left, the parent's own limits are
    untouched, and it still starts processes and allocates memory."""
    before = {which: resource.getrlimit(which) for which in LIMITS}
    with leases_recorded(monkeypatch) as leased:
        yield
    assert_nothing_left(leased)
    assert {which: resource.getrlimit(which) for which in LIMITS} == before
    child = subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True, text=True)
    assert child.stdout == "42\n"
    assert torch.ones(1024, 1024).sum().item() == 1024 * 1024


def learner_line(code: str, text: str) -> int:
    return next(n for n, line in enumerate(code.splitlines(), 1) if text in line)


# --- static checks ------------------------------------------------------------------------------


def test_check_code_accepts_build_model_and_configure_optimizer():
    assert "def configure_optimizer(model):" in TINY_MODEL
    assert check_code(TINY_MODEL) == []


def test_check_code_reports_a_syntax_error_with_its_line_and_column():
    (problem,) = check_code("import torch\n\ndef build_model(input_shape, num_classes)\n    pass\n")
    assert problem.path == "code:3"
    assert problem.message == "Syntax error on line 3, column 42: expected ':'."


def test_check_code_requires_build_model():
    (problem,) = check_code("def build(input_shape, num_classes):\n    pass\n")
    assert problem.path == "code"
    assert problem.message == (
        "Your code must define a function build_model(input_shape, num_classes) that returns "
        "a torch.nn.Module."
    )


def test_check_code_checks_the_signatures():
    code = "def build_model(shape):\n    pass\n\ndef configure_optimizer():\n    pass\n"
    assert [(p.path, p.message) for p in check_code(code)] == [
        (
            "code:1",
            "build_model on line 1 must accept 2 arguments: build_model(input_shape, num_classes).",
        ),
        (
            "code:4",
            "configure_optimizer on line 4 must accept 1 argument: configure_optimizer(model).",
        ),
    ]


def test_check_code_limits_the_size():
    (problem,) = check_code(TINY_MODEL + "#" * 70_000)
    assert (
        problem.message == f"Your code is {(len(TINY_MODEL) + 70_000) / 1024:.1f} KiB; "
        "the limit is 64 KiB."
    )


def test_invalid_code_never_starts_a_sandbox():
    result = run("def build(a, b):\n    pass\n")
    assert (result.status, result.kind, result.isolation) == ("failed", "invalid_code", None)


# --- runs ---------------------------------------------------------------------------------------


@needs_bwrap
def test_a_model_trains_and_predicts_the_test_inputs():
    points = []
    data = tiny_data()
    data.test.x[:, 0] = torch.arange(data.test.x.shape[0]) % 10  # what Echo will predict
    # The smallest memory budget: the runtime's own memory does not come out of it.
    limits = SandboxLimits(wall_seconds=60, memory_bytes=256 * 2**20)
    result = run(TINY_MODEL, data=data, progress=points.append, limits=limits)
    assert (result.status, result.kind, result.message) == ("succeeded", None, "")
    assert result.isolation == "bubblewrap"
    assert result.predictions.dtype == torch.int64
    assert result.predictions.shape == (data.test.x.shape[0],)
    assert int(result.predictions.min()) >= 0 and int(result.predictions.max()) < 10
    assert result.outcome["status"] == "completed"
    assert result.outcome["epochs_completed"] == 2
    # Every field of the point comes through, the counts the page needs included (48 / 16 =
    # 3 steps an epoch, 2 epochs): the sandbox used to drop epochs, steps and epoch_end.
    assert set(points[-1]) == set(FIELDS)
    ends = [p for p in points if p["epoch_end"]]
    assert [(p["epoch"], p["epochs"], p["step"], p["steps"]) for p in ends] == [
        (1, 2, 3, 6),
        (2, 2, 6, 6),
    ]
    assert points[-1] == ends[-1]
    assert (points[-1]["fraction_done"], points[-1]["eta"]) == (1.0, 0.0)
    assert points[-1]["val_accuracy"] is not None and points[-1]["val_loss"] is not None
    assert points[-1]["lr"] == 0.125  # configure_optimizer's
    assert result.output == "building for (4,) 10\n"


@needs_bwrap
def test_an_exception_names_the_line_of_the_learners_code():
    code = (
        "import torch\n\ndef build_model(input_shape, num_classes):\n"
        "    width = 0\n    raise ValueError(f'bad width {width}')\n"
    )
    result = run(code)
    assert (result.status, result.kind) == ("failed", "exception")
    assert result.message == "ValueError: bad width 0 (line 5 of your code)"
    assert 'File "submission.py", line 5, in build_model' in result.output


@needs_bwrap
def test_build_model_must_return_a_module():
    result = run("def build_model(input_shape, num_classes):\n    return 3\n")
    assert (result.status, result.kind) == ("failed", "invalid_model")
    assert result.message == "build_model must return a torch.nn.Module; it returned an int."


@needs_bwrap
def test_configure_optimizer_must_return_an_optimizer():
    code = TINY_MODEL.replace(
        "return torch.optim.SGD(model.parameters(), lr=0.125)", "return model.parameters()"
    )
    assert code != TINY_MODEL
    result = run(code)
    assert (result.status, result.kind) == ("failed", "invalid_optimizer")
    assert result.message == (
        "configure_optimizer must return a torch.optim.Optimizer; it returned a generator."
    )


@needs_bwrap
def test_a_fork_bomb_hits_the_process_limit():
    code = (
        "import os\n\ndef build_model(input_shape, num_classes):\n"
        "    while True:\n        os.fork()\n"
    )
    result = run(code)
    assert (result.status, result.kind) == ("failed", "processes")
    assert result.message == (
        "Your code created too many processes (the limit is 64, threads included)."
    )


@needs_bwrap
def test_a_50_gb_allocation_hits_the_memory_limit():
    code = """
import torch

def build_model(input_shape, num_classes):
    small = torch.ones(256 * 2**20, dtype=torch.uint8)  # within the budget
    print("256 MiB:", int(small[-1]) == 1)
    try:
        bytearray(50 * 2**30)
    except MemoryError:
        print("bytearray: MemoryError")
    torch.empty(50 * 2**30, dtype=torch.uint8)
"""
    result = run(code)
    assert (result.status, result.kind) == ("failed", "memory")
    assert result.message == "Your code used more than 4 GiB of memory."
    assert result.output.startswith("256 MiB: True\nbytearray: MemoryError\nTraceback")


@needs_bwrap
def test_an_infinite_loop_hits_the_wall_clock():
    started = time.monotonic()
    result = run(
        "def build_model(input_shape, num_classes):\n    while True:\n        pass\n",
        limits=SandboxLimits(wall_seconds=5),
    )
    assert (result.status, result.kind) == ("timed_out", "wall_time")
    assert result.message == "Your code ran past its time limit of 5 s."
    assert time.monotonic() - started < 15


@needs_bwrap
def test_an_infinite_loop_hits_the_cpu_limit():
    result = run(
        "def build_model(input_shape, num_classes):\n    while True:\n        pass\n",
        limits=SandboxLimits(wall_seconds=60, cpu_seconds=3),
    )
    assert (result.status, result.kind) == ("failed", "cpu_time")
    assert result.message == "Your code used more than 3 s of CPU time."


@needs_bwrap
def test_a_cancelled_run_stops_at_once():
    started = time.monotonic()
    result = run(
        "def build_model(input_shape, num_classes):\n    while True:\n        pass\n",
        should_cancel=lambda: time.monotonic() > started + 3,
    )
    assert (result.status, result.kind) == ("cancelled", "cancelled")
    assert result.message == "The run was cancelled."
    assert time.monotonic() - started < 10


@needs_bwrap
def test_writing_10_gb_hits_the_file_size_limit():
    code = """
def build_model(input_shape, num_classes):
    chunk = b"x" * 2**20
    with open("/tmp/big", "wb") as f:
        for _ in range(10 * 1024):  # 10 GiB
            f.write(chunk)
"""
    result = run(code, limits=SandboxLimits(wall_seconds=60, max_file_bytes=16 * 2**20))
    assert (result.status, result.kind) == ("failed", "file_size")
    assert result.message == "Your code wrote a file larger than 16 MiB."


@needs_bwrap
def test_filling_tmp_hits_its_size():
    code = """
def build_model(input_shape, num_classes):
    chunk = b"x" * 2**20
    for n in range(1000):
        with open(f"/tmp/part{n}", "wb") as f:
            for _ in range(8):
                f.write(chunk)
"""
    limits = SandboxLimits(wall_seconds=60, max_file_bytes=16 * 2**20, tmp_bytes=32 * 2**20)
    result = run(code, limits=limits)
    assert (result.status, result.kind) == ("failed", "disk")
    assert result.message == "Your code filled its 32 MiB of temporary space."


@needs_bwrap
def test_printing_megabytes_hits_the_output_limit():
    code = (
        "def build_model(input_shape, num_classes):\n    while True:\n        print('x' * 1000)\n"
    )
    result = run(code)
    assert (result.status, result.kind) == ("failed", "output")
    assert result.message == "Your code printed more than 1 MiB."
    assert len(result.output) < 20_000
    assert "bytes not kept" in result.output


# --- what the code reports -----------------------------------------------------------------------
# The learner's code runs in the process that writes the result pipe, so it can write anything
# there: the parent throttles what it forwards and refuses what the harness would never send.


@needs_bwrap
def test_200000_forged_progress_lines_are_throttled_and_counted():
    points = []
    result = run(PROGRESS_FLOOD, progress=points.append)
    assert (result.status, result.kind) == ("failed", "exception")
    assert result.message.startswith("RuntimeError: forged (line ")
    # At the trusted trainer's rate over the run's whole life, and nothing lost uncounted.
    assert 1 <= len(points) <= supervise.PROGRESS_BURST + result.seconds / PROGRESS_INTERVAL_S
    assert (result.progress_forwarded, result.progress_dropped) == (
        len(points),
        200_000 - len(points),
    )
    assert (points[0]["epoch"], points[0]["step"], points[0]["loss"]) == (1, 1, 0.5)


def test_epoch_ends_pass_once_each_within_the_runs_epochs_and_other_points_are_throttled():
    """The parent's throttle on its own, fed at one instant: the burst passes, then only new
    epoch ends (their epoch rising, at most the run's 2)."""
    points = []
    channel = supervise.Channel(progress=points.append, test_count=1, num_classes=2, epochs=2)
    ordinary = (
        b'{"type":"progress","point":{"epoch":1,"epochs":2,"step":3,"steps":8,"epoch_end":false}}\n'
    )
    # Each a valid point (it claims 9 epochs): the parent's own rule holds it to the run's 2.
    end = (
        '{{"type":"progress","point":{{"epoch":{},"epochs":9,"step":4,"steps":8,'
        '"epoch_end":true,"val_accuracy":0.5}}}}\n'
    )
    channel.add(b'{"type":"ready"}\n' + ordinary * supervise.PROGRESS_BURST)
    channel.add("".join(end.format(epoch) for epoch in (1, 1, 2, 3, 7, 2)).encode())
    channel.add(ordinary * 10)
    assert channel.failure is None
    assert [(p["epoch"], p["step"]) for p in points] == [
        *[(1, 3)] * supervise.PROGRESS_BURST,
        (1, 4),
        (2, 4),
    ]
    assert channel.history == points[-2:]
    assert (channel.forwarded, channel.dropped) == (supervise.PROGRESS_BURST + 2, 4 + 10)


@needs_bwrap
def test_a_genuine_runs_history_is_the_epoch_ends_the_parent_forwarded():
    points = []
    result = run(TINY_MODEL, progress=points.append)
    assert result.status == "succeeded"
    ends = [p for p in points if p.get("epoch_end") or p.get("val_accuracy") is not None]
    assert [p["epoch"] for p in ends] == [1, 2]
    assert result.outcome["history"] == ends
    assert set(result.outcome) == {
        "status",
        "epochs_completed",
        "steps",
        "seconds",
        "diagnosis",
        "history",
    }
    assert (result.progress_forwarded, result.progress_dropped) == (len(points), 0)


@needs_bwrap
@pytest.mark.parametrize(
    "code, detail",
    [
        (
            raw_writer("b'[' * 100_000 + b']' * 100_000 + b'\\n'"),
            "line 2 is longer than 22.0 KiB, the most it may be",
        ),
        (raw_writer("b'[' * 5_000 + b']' * 5_000 + b'\\n'"), "line 2 is nested too deeply"),
        (forged_result("b'{\"a\":' * 990 + b'1' + b'}' * 990"), "line 2 is nested too deeply"),
        (
            forged_result('b\'{"status":"timed_out","seconds":[1,2]}\''),
            "line 2, a result message, does not fit its schema (outcome.epochs_completed: "
            "Field required)",
        ),
        (
            forged_result(
                'b\'{"status":"completed","epochs_completed":1,"steps":1,'
                '"seconds":[1,2],"diagnosis":null}\''
            ),
            "line 2, a result message, does not fit its schema (outcome.seconds: Input should be "
            "a valid number)",
        ),
        (
            raw_writer('b\'{"type":"error","kind":"sandbox","message":"x","line":null}\\n\''),
            "line 2 reports a failure of the sandbox after it started",
        ),
        (
            raw_writer('b\'{"type":"ready","extra":1}\\n\''),
            "line 2, a ready message, does not fit its schema (extra: Extra inputs are not "
            "permitted)",
        ),
        (raw_writer("b'not json\\n'"), "line 2 is not valid JSON"),
        (raw_writer("b'[1]\\n'"), "line 2 is not a message (an object with a type)"),
    ],
    ids=[
        "100000-levels",
        "5000-levels",
        "outcome-990-deep",
        "outcome-incomplete",
        "seconds-a-list",
        "sandbox-claimed",
        "unknown-field",
        "not-json",
        "not-an-object",
    ],
)
def test_a_malformed_message_fails_the_run_as_the_learners(code, detail):
    result = run(code)
    assert (result.status, result.kind) == ("failed", "protocol")
    assert result.message == protocol_message(detail)
    assert (result.outcome, result.predictions) == (None, None)


@needs_bwrap
def test_a_20_mb_outcome_fails_the_run_and_is_not_kept():
    result = run(outcome_of_20_mb())
    assert (result.status, result.kind, result.outcome) == ("failed", "protocol", None)
    assert result.message == protocol_message("line 2 is longer than 22.0 KiB, the most it may be")
    assert len(result.output) < 1000


# --- what the code can see ----------------------------------------------------------------------

SECRET = "aula-sandbox-secret-7f3c9d"

PROBE = r"""
import errno, fcntl, json, os, socket, stat, struct

SECRET_NAME = "AULA_SANDBOX_SECRET"
PATHS = __PATHS__
HIDDEN = [bytes.fromhex(h) for h in __HIDDEN__]
CONTROL = [bytes.fromhex(h) for h in __CONTROL__]
STATIC = __STATIC__
SINCE = __SINCE__


def error_name(e):
    return "error " + (errno.errorcode.get(e.errno) or type(e).__name__)


def environments():
    seen = {"os.environ": dict(os.environ)}
    for name in os.listdir("/proc"):
        if name.isdigit() or name in ("self", "thread-self"):
            for what in ("environ", "cmdline"):
                try:
                    with open(f"/proc/{name}/{what}", "rb") as f:
                        seen[f"/proc/{name}/{what}"] = f.read().decode(errors="replace")
                except OSError as e:
                    seen[f"/proc/{name}/{what}"] = error_name(e)
    return seen


def files():
    seen = {}
    for path in PATHS:
        try:
            if os.path.isdir(path):
                seen[path] = "listed " + ",".join(sorted(os.listdir(path)))
            else:
                with open(path, "rb") as f:
                    seen[path] = "read " + f.read(300).decode(errors="replace")
        except OSError as e:
            seen[path] = error_name(e)
    return seen


def search():
    found = {"hidden": [], "control": [], "names": 0, "files_read": 0, "bytes_read": 0}
    for top, dirs, names in os.walk("/"):
        if top in ("/proc", "/sys"):
            dirs[:] = []  # environments() reads every process's environ and cmdline
            continue
        static = any(top == s or top.startswith(s + "/") for s in STATIC)
        for name in names:
            found["names"] += 1
            path = os.path.join(top, name)
            try:
                info = os.lstat(path)
                if not stat.S_ISREG(info.st_mode) or static and info.st_mtime < SINCE:
                    continue
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            found["files_read"] += 1
            found["bytes_read"] += len(data)
            if any(p in data for p in HIDDEN):
                found["hidden"].append(path)
            if any(p in data for p in CONTROL):
                found["control"].append(path)
    return found


def network():
    seen = {"interfaces": {}, "connect": {}}
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _, name in socket.if_nameindex():
        request = struct.pack("16sH14x", name.encode(), 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(probe.fileno(), 0x8913, request))[1]
        seen["interfaces"][name] = "UP" if flags & 1 else "DOWN"
    with open("/proc/net/dev") as f:
        seen["proc_net_dev"] = [line.split(":")[0].strip() for line in f.readlines()[2:]]
    for port in (5432, 6379):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=3).close()
            seen["connect"][str(port)] = "connected"
        except OSError as e:
            seen["connect"][str(port)] = error_name(e)
    return seen


def namespaces():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    seen = {}
    for name, flags in (("user", 0x10000000), ("net", 0x40000000), ("mount", 0x00020000),
                        ("user+net", 0x50000000)):
        ok = libc.unshare(flags) == 0
        seen[name] = "made" if ok else error_name(OSError(ctypes.get_errno(), ""))
    with open("/proc/self/status") as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"):
        seen[key] = status[key].strip()
    return seen


def datasets():
    seen = {}
    try:
        import runtime.datasets  # noqa: F401

        seen["runtime.datasets"] = "imported"
    except ImportError as e:
        seen["runtime.datasets"] = type(e).__name__
    try:
        from sklearn.datasets import load_digits

        seen["digits"] = "loaded %d" % len(load_digits().target)
    except ImportError as e:
        seen["digits"] = type(e).__name__
    except OSError as e:
        seen["digits"] = error_name(e)
    return seen


def mounts():
    with open("/proc/self/mountinfo") as f:
        return sorted({line.split()[4] for line in f})


def build_model(input_shape, num_classes):
    report = {"environ": environments(), "files": files(), "search": search(),
              "network": network(), "mounts": mounts(), "uid": os.getuid(),
              "namespaces": namespaces(), "datasets": datasets()}
    print("PROBE " + json.dumps(report))
    raise RuntimeError("probe finished")
"""


def patterns(labels: list[int]) -> list[str]:
    """The ways a label sequence could be stored: raw int64/int32/uint8 and as text."""
    values = labels[:12]
    return [
        torch.tensor(values, dtype=torch.int64).numpy().tobytes().hex(),
        torch.tensor(values, dtype=torch.int32).numpy().tobytes().hex(),
        bytes(values).hex(),
        ", ".join(map(str, values)).encode().hex(),
        ",".join(map(str, values)).encode().hex(),
    ]


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """One sandbox run that looks at everything it can; the tests below judge what it saw."""
    if not bubblewrap_available():
        pytest.skip("bubblewrap is missing: run scripts/ensure-test-deps")
    private = tmp_path_factory.mktemp("parent-secrets")
    (private / "secret.txt").write_text(SECRET)
    paths = [
        str(ROOT),
        str(ROOT / "config" / "settings.py"),
        str(ROOT / "var"),
        str(ROOT / "tests"),
        str(ROOT / ".env"),
        str(ROOT / "apps" / "jobs" / "tasks.py"),
        "/root",
        "/root/.bashrc",
        "/home",
        "/etc/shadow",
        "/etc/passwd",
        str(private / "secret.txt"),
        str(private),
        f"/proc/{os.getpid()}/environ",
        "/aula/runtime/sandbox/child.py",
        "/aula/runtime/datasets.py",
        "/aula/runtime/__pycache__",
    ]
    code = (
        PROBE.replace("__PATHS__", repr(paths))
        .replace("__HIDDEN__", repr(patterns(TEST_MARK)))
        .replace("__CONTROL__", repr(patterns(TRAIN_MARK)))
        .replace("__STATIC__", repr(["/usr", *command.python_paths()]))
        .replace("__SINCE__", repr(time.time() - 60))
    )
    with pytest.MonkeyPatch.context() as patch, leases_recorded(patch) as leased:
        patch.setenv("AULA_SANDBOX_SECRET", SECRET)
        result = run(code)
    assert_nothing_left(leased)
    line = next(line for line in result.output.splitlines() if line.startswith("PROBE "))
    return result, json.loads(line[len("PROBE ") :]), paths


def test_probe_runs_and_fails_as_its_code_says(probe):
    result, report, _ = probe
    assert (result.status, result.kind) == ("failed", "exception")
    assert result.message == (
        f"RuntimeError: probe finished (line {learner_line(PROBE, 'probe finished')} of your code)"
    )
    assert "bytes not kept" not in result.output  # the whole report came back
    assert report["uid"] != 0


def test_no_environment_holds_the_parents_secrets(probe):
    result, report, _ = probe
    seen = json.dumps(report["environ"])
    assert "OMP_NUM_THREADS" in report["environ"]["os.environ"]  # reading works
    # Having changed uid, the process is not dumpable: even its own environ is root's to read.
    own = report["environ"]["/proc/self/environ"]
    assert "OMP_NUM_THREADS" in own if os.geteuid() != 0 else own == "error EACCES"
    for secret in (
        SECRET,
        "AULA_SANDBOX_SECRET",
        os.environ["SECRET_KEY"],
        "DATABASE_URL",
        "REDIS_URL",
    ):
        assert secret not in seen
        assert secret not in result.output
        assert secret not in result.message
    # pid 1 is bubblewrap's reaper: root's (unreadable), or started with PATH alone.
    assert report["environ"]["/proc/1/environ"] in ("error EACCES", "PATH=/usr/bin:/bin\x00")


def test_the_parents_files_are_out_of_reach(probe):
    _, report, paths = probe
    seen = report["files"]
    for path in paths:
        if path == "/etc/passwd":
            assert seen[path].startswith("read learner:x:")  # the sandbox's own, one line
            assert "root:" not in seen[path]
        elif path == "/aula/runtime/sandbox/child.py":
            assert seen[path].startswith("read ")  # the runtime is there, read-only
        elif mount_points_below(path):  # a directory made to hold the Python installation
            assert seen[path] == "listed " + ",".join(mount_points_below(path)), path
        else:
            assert seen[path] in ("error ENOENT", "error EACCES"), path
    assert SECRET not in json.dumps(report)


def mount_points_below(path: str) -> list[str]:
    """What a directory on the way to the Python installation holds in the sandbox: only the
    next step towards it (e.g. the repository holds .venv and nothing else)."""
    below = set()
    for bound in command.python_paths():
        if bound.startswith(path.rstrip("/") + "/"):
            below.add(bound[len(path.rstrip("/")) + 1 :].split("/")[0])
    return sorted(below)


def test_the_test_labels_are_nowhere_in_the_sandbox(probe):
    _, report, _ = probe
    search = report["search"]
    assert search["hidden"] == []
    assert search["control"] == ["/job/data.pt"]  # the search finds labels that were sent
    assert search["names"] > 10_000  # it walked the whole tree
    assert search["files_read"] >= 4


def test_the_datasets_cannot_be_regenerated_or_looked_up(probe):
    _, report, _ = probe
    assert report["datasets"]["runtime.datasets"] == "ModuleNotFoundError"
    assert report["datasets"]["digits"] in ("error ENOENT", "ModuleNotFoundError")


def test_the_sandbox_sees_only_its_own_mounts(probe):
    _, report, _ = probe
    python = command.python_paths()
    runtime = {f"/aula/runtime/{name}" for name in command.RUNTIME_FILES}  # the allow-list
    hidden = command.hidden_paths(python)
    # The files the harness exports the model into, each bound on its own.
    out = {f"{command.ARTIFACTS_IN_SANDBOX}/{name}" for name in command.ARTIFACT_FILES}
    allowed = {"/", "/usr", "/job", "/proc", "/dev", "/tmp", "/dev/shm", *python, *hidden, *runtime}
    allowed |= out
    assert out <= set(report["mounts"])
    for mount in report["mounts"]:
        assert mount in allowed or mount.startswith(("/etc/", "/proc/", "/dev/")), mount
    assert "/aula/runtime/trainer.py" in report["mounts"]
    # Of the runtime, exactly its allow-list, file by file (no directory bound wholesale).
    assert {m for m in report["mounts"] if m.startswith("/aula/")} == runtime
    assert "/aula/runtime/datasets.py" not in report["mounts"]


def test_localhost_services_cannot_be_reached(probe):
    _, report, _ = probe
    for port in ("5432", "6379"):
        assert report["network"]["connect"][port] in ("error ENETUNREACH", "error ECONNREFUSED")
    # The parent does reach Redis (the suite's conftest uses it): only the sandbox cannot.
    socket.create_connection(("127.0.0.1", 6379), timeout=3).close()


def test_no_network_interface_is_up(probe):
    _, report, _ = probe
    network = report["network"]
    assert network["proc_net_dev"] == ["lo"]
    if os.geteuid() == 0:
        assert network["interfaces"] == {"lo": "DOWN"}
    else:  # bubblewrap's own network namespace brings loopback up, and nothing else
        assert list(network["interfaces"]) == ["lo"]


def test_no_namespace_can_be_made_and_no_capability_is_held(probe):
    _, report, _ = probe
    seen = report["namespaces"]
    assert {k: seen[k] for k in ("user", "net", "mount", "user+net")} == dict.fromkeys(
        ("user", "net", "mount", "user+net"), "error EPERM"
    )
    # Every capability set is empty: the bounding and inheritable ones too, not only those a
    # change of uid clears.
    sets = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
    assert {name: seen[name] for name in sets} == dict.fromkeys(sets, "0" * 16)
    assert seen["NoNewPrivs"] == "1"
    assert seen["Seccomp"] == ("2" if seccomp_program() is not None else "0")


# --- without bubblewrap -------------------------------------------------------------------------


def test_without_bubblewrap_code_is_refused(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    assert not bubblewrap_available()
    result = run(TINY_MODEL)
    assert (result.status, result.kind, result.isolation) == ("failed", "refused", None)
    assert result.message == BUBBLEWRAP_MISSING
    assert result.message.startswith(
        "Code submissions need bubblewrap (apt-get install bubblewrap)"
    )


def test_limits_only_mode_runs_when_allowed(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    refusal = command.limits_only_refusal() if os.geteuid() == 0 else None
    result = run(TINY_MODEL, allow_limits_only=True)
    if refusal is not None:  # root, with a Python the sandbox uid cannot read (e.g. in /root)
        assert (result.status, result.kind, result.message) == ("failed", "refused", refusal)
        assert refusal.startswith("Code submissions cannot run in limits-only mode here")
        return
    assert (result.status, result.isolation) == ("succeeded", "limits_only")
    assert result.predictions.shape == (32,)


def test_limits_are_validated():
    with pytest.raises(ValueError, match="memory_bytes must be at least 256 MiB"):
        SandboxLimits(memory_bytes=2**20)
    with pytest.raises(ValueError, match="max_processes must be at least 16"):
        SandboxLimits(max_processes=4)
    assert SandboxLimits(wall_seconds=10, threads=2).cpu_limit == 20


# --- the same search on a teacher's uploaded dataset ----------------------------------------------
# Uploaded data goes to the sandbox as the runtime's splits (runtime.ingest.stored): train and
# validation with labels, the test split (both hidden parts, drawn with the assignment's secret)
# as inputs alone. The probe above looks for the test labels as int64, int32, bytes and text.

UPLOADED_CLASSES = ("ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen", "ibis", "jay")


@pytest.fixture(scope="module")
def probe_uploaded(tmp_path_factory):
    """The probe, run on a CSV ingested and split with a secret as the worker does."""
    import io

    from runtime.ingest.stored import stored_read, stored_splits
    from runtime.ingest.tables import table_ingest

    if not bubblewrap_available():
        pytest.skip("bubblewrap is missing: run scripts/ensure-test-deps")
    folder = tmp_path_factory.mktemp("uploaded")
    rows = ["a,b,c,d,label"]
    generator = torch.Generator().manual_seed(3)
    for index in range(400):
        a, b, c, d = torch.rand(4, generator=generator).tolist()
        rows.append(f"{a:.4f},{b:.4f},{c:.4f},{d:.4f},{UPLOADED_CLASSES[index % 10]}")
    table_ingest(
        io.BytesIO("\n".join(rows).encode()),
        folder / "data.arrow",
        kind="tabular",
        label_column="label",
    )
    data = stored_splits(
        stored_read(folder / "data.arrow"), name="upload:x", title="X", secret=bytes(range(32))
    ).splits
    hidden = data.test.y.tolist()
    texts = [
        ",".join(UPLOADED_CLASSES[i] for i in hidden[:12]).encode().hex(),
        ", ".join(UPLOADED_CLASSES[i] for i in hidden[:12]).encode().hex(),
    ]
    code = (
        PROBE.replace("__PATHS__", repr([]))
        .replace("__HIDDEN__", repr(patterns(hidden) + texts))
        .replace("__CONTROL__", repr(patterns(data.train.y.tolist())))
        .replace("__STATIC__", repr(["/usr", *command.python_paths()]))
        .replace("__SINCE__", repr(time.time() - 60))
    )
    result = run(code, data=data)
    line = next(line for line in result.output.splitlines() if line.startswith("PROBE "))
    return result, json.loads(line[len("PROBE ") :]), data


def test_an_uploaded_datasets_hidden_labels_are_nowhere_in_the_sandbox(probe_uploaded):
    result, report, data = probe_uploaded
    assert (result.status, result.kind) == ("failed", "exception")
    assert data.test_part is not None and len(data.test.y) == 80  # both hidden parts, 40 each
    search = report["search"]
    assert search["hidden"] == []
    assert search["control"] == ["/job/data.pt"]  # the train labels that were sent are found
    assert search["names"] > 10_000
