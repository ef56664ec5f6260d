"""The trusted side of a code submission: prepare the job, start the sandbox, watch it, judge it.

Isolation (see docs in __init__.py for the summary):

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

import contextlib
import ctypes
import dataclasses
import fcntl
import json
import logging
import os
import resource
import secrets
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import ValidationError

from runtime.progress import ProgressInvalid, ProgressPoint
from runtime.sandbox import protocol
from runtime.sandbox.checks import SUBMISSION_FILENAME, check_code
from runtime.sandbox.limits import (
    BUBBLEWRAP_MISSING,
    KEPT_OUTPUT_BYTES,
    CodeRunResult,
    GiB,
    SandboxLimits,
    format_bytes,
    limit_message,
)
from runtime.sandbox.privileges import Dropper
from runtime.sandbox.seccomp import seccomp_program
from runtime.trainer import PROGRESS_INTERVAL_S

log = logging.getLogger(__name__)

# The pool of uids runs take when the worker is root: one per concurrent run, so that one run's
# processes never count against (or can signal) another's. Nothing on the host is owned by them.
UID_BASE = 1_600_000_000
UID_COUNT = 256
# RLIMIT_AS of bwrap and of the child until it locks its own, tighter limit (child.py).
STARTUP_ADDRESS_SPACE = 8 * GiB
# Progress points other than epoch ends that the parent passes on: at the trusted trainer's
# rate (PROGRESS_INTERVAL_S), with bursts of at most this many, and at most this many in a run.
PROGRESS_BURST = 4
MAX_PROGRESS_POINTS = 5000
# What a run needs besides training, kept out of the training budget: the sandbox's start
# (Python, torch, the data), torch's lazy imports, the predictions.
STARTUP_AND_PREDICT_SECONDS = 15.0
# How long, after the sandbox exits, the parent waits for its pipes to close.
DRAIN_SECONDS = 2.0
POLL_SECONDS = 0.2

RUNTIME_DIR = Path(__file__).resolve().parent.parent  # runtime
SOURCE_ROOT_IN_SANDBOX = "/aula"  # /aula/runtime inside the sandbox
JOB_IN_SANDBOX = "/job"
# Left out of the runtime the sandbox sees: datasets.py would regenerate every dataset, test
# labels included (the generated ones are deterministic), and __pycache__ holds its bytecode.
RUNTIME_LEFT_OUT = frozenset({"datasets.py", "__pycache__"})
PACKAGE_DATA_HIDDEN = ("sklearn/datasets/data",)

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)

# The first thing the sandboxed interpreter runs (python -I -B -u -c BOOTSTRAP uid gid src job fd).
# As root it first loads privileges.py by its path (nothing else of ours is imported as root) and
# drops to the leased uid with every capability set empty.
BOOTSTRAP = """\
import os, sys
uid, gid = int(sys.argv[1]), int(sys.argv[2])
if uid >= 0:
    import importlib.util
    path = sys.argv[3] + "/runtime/sandbox/privileges.py"
    spec = importlib.util.spec_from_file_location("aula_privileges", path)
    privileges = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(privileges)
    try:
        privileges.Dropper()(uid, gid)
    except OSError as error:
        print(f"Dropping privileges failed: {error}", file=sys.stderr)
        os._exit(71)
sys.path.insert(0, sys.argv[3])
from runtime.sandbox.child import main
main(sys.argv[4], int(sys.argv[5]))
"""


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
    with _sandbox_ids() as ids:
        if isolation == "limits_only" and ids is not None:
            refusal = _limits_only_refusal()
            if refusal:
                return CodeRunResult("failed", refusal, "refused")
        with _job_directory(ids, isolation) as job:
            order = _write_inputs(job, code=code, data=data, training=training, budget=budget,
                                  limits=limits)  # fmt: skip
            if isolation == "bubblewrap":
                launch = _bubblewrap_launch(bwrap, job, ids, limits)
            else:
                launch = _limits_only_launch(job, ids, limits)
            result = _supervise(
                launch,
                limits=limits,
                ids=ids,
                order=order,
                num_classes=int(data.info.num_classes),
                epochs=_epochs(training, budget),
                progress=progress,
                should_cancel=should_cancel,
            )
    result.isolation = isolation
    return result


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


# --- identities ---------------------------------------------------------------------------------


def _lock_directory() -> Path:
    base = Path("/run") if os.path.isdir("/run") and os.access("/run", os.W_OK) else None
    path = (base or Path(tempfile.gettempdir())) / f"aula-sandbox-uids-{os.geteuid()}"
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise RuntimeError(f"{path} is not a private directory of this user; remove it")
    return path


@contextlib.contextmanager
def _sandbox_ids() -> Iterator[tuple[int, int] | None]:
    """(uid, gid) leased for one run when running as root; None otherwise."""
    if os.geteuid() != 0:
        yield None
        return
    directory = _lock_directory()
    for uid in range(UID_BASE, UID_BASE + UID_COUNT):
        fd = os.open(directory / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            if not kill_processes_of(uid):  # a crashed run's leftovers that will not die
                continue
            try:
                yield uid, uid
            finally:
                if not kill_processes_of(uid):
                    log.error("processes of sandbox uid %s survive SIGKILL", uid)
            return
        finally:
            os.close(fd)
    raise RuntimeError(f"all {UID_COUNT} sandbox uids are in use")


def processes_of(uid: int) -> list[int]:
    """Pids whose real uid is `uid`."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", encoding="ascii", errors="replace") as status:
                for line in status:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            found.append(int(entry.name))
                        break
        except (OSError, ValueError):
            continue
    return found


def kill_processes_of(uid: int, *, timeout: float = 5.0) -> bool:
    """SIGKILL every process of a leased uid (root only) until none is left; False if some
    survive `timeout` seconds (stuck in the kernel)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = processes_of(uid)
        if not pids:
            return True
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def _tasks_of_current_user() -> int:
    """Processes and threads of our real uid: what RLIMIT_NPROC counts for a non-root run."""
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/status", encoding="ascii", errors="replace") as f:
                    text = f.read()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
            if int(fields.get("Uid", "-1 0").split()[0]) == uid:
                count += int(fields.get("Threads", "1").strip() or 1)
    return count


def _limits_only_refusal() -> str | None:
    """As root, limits-only runs under a leased uid, which must be able to read Python."""
    paths = {sys.executable, os.path.realpath(sys.executable), sys.prefix, sys.base_prefix,
             str(RUNTIME_DIR)}  # fmt: skip
    unreadable = sorted(p for p in paths if not _readable_by_others(p))
    if not unreadable:
        return None
    return (
        "Code submissions cannot run in limits-only mode here: without bubblewrap they run "
        "under an unprivileged uid, which cannot read "
        f"{', '.join(unreadable)}. Install bubblewrap (apt-get install bubblewrap)."
    )


def _readable_by_others(path: str) -> bool:
    current = Path(path)
    for parent in reversed(current.parents):
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            return False
    mode = current.stat().st_mode
    needed = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
    return mode & needed == needed


# --- the job directory --------------------------------------------------------------------------


@contextlib.contextmanager
def _job_directory(ids, isolation: str) -> Iterator[Path]:
    """A private directory: in/ (what the sandbox may read) and, limits-only, src/ and tmp/."""
    root = Path(tempfile.mkdtemp(prefix="aula-sandbox-"))  # 0700, ours
    try:
        (root / "in").mkdir(mode=0o755)
        os.chmod(root / "in", 0o755)  # noqa: S103 (inside a 0700 directory)
        if isolation == "limits_only":
            (root / "src").mkdir(mode=0o755)
            os.chmod(root / "src", 0o755)  # noqa: S103 (inside a 0700 directory)
            (root / "src" / "runtime").symlink_to(RUNTIME_DIR, target_is_directory=True)
            scratch = root / "tmp"
            scratch.mkdir(mode=0o700)
            if ids is not None:
                os.chown(scratch, *ids)
                os.chmod(root, 0o711)  # noqa: S103 (traversable, not listable)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _write_inputs(job: Path, *, code, data, training, budget, limits: SandboxLimits):
    """Only inputs: the test split's labels are never written, and its inputs go in an order
    drawn for this run (returned), so that labels known by position (a public test set pasted
    into the code) are worthless."""
    import torch

    count = int(data.test.x.shape[0])
    order = torch.randperm(count, generator=torch.Generator().manual_seed(secrets.randbits(63)))

    def alone(tensor):  # a copy with its own storage: a view would save its whole base
        return tensor.detach().to("cpu").clone().contiguous()

    inputs = job / "in"
    tensors = {
        "train_x": alone(data.train.x),
        "train_y": alone(data.train.y),
        "val_x": alone(data.val.x),
        "val_y": alone(data.val.y),
        "test_x": alone(data.test.x.detach().to("cpu")[order]),
    }
    torch.save(tensors, inputs / "data.pt")
    document = {
        "threads": limits.thread_count,
        "memory_bytes": limits.memory_bytes,
        "info": _describe(data.info),
        "training": _describe(training),
        "budget": _describe(budget),
    }
    (inputs / "job.json").write_text(json.dumps(document), encoding="utf-8")
    (inputs / SUBMISSION_FILENAME).write_text(code, encoding="utf-8")
    for path in inputs.iterdir():
        os.chmod(path, 0o644)
    return order


def _describe(value):
    if value is None:
        return None
    kind = type(value)
    fields = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else vars(value)
    return {"type": f"{kind.__module__}.{kind.__qualname__}", "fields": _plain(fields)}


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value):
        return _plain(dataclasses.asdict(value))
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


# --- launching ----------------------------------------------------------------------------------


@dataclasses.dataclass
class _Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: str
    preexec: Callable[[], None]
    data_fds: list[int]  # read ends of --ro-bind-data pipes, closed after the start
    result_w: int
    result_r: int


def _child_env(home: str, limits: SandboxLimits) -> dict[str, str]:
    threads = str(limits.thread_count)
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "USER": "learner",
        "LOGNAME": "learner",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "MALLOC_ARENA_MAX": "2",  # each arena reserves 64 MiB of address space
        "CUDA_VISIBLE_DEVICES": "",  # the sandbox trains on the CPU
        "XDG_CACHE_HOME": f"{home}/.cache",
        "MPLCONFIGDIR": f"{home}/.matplotlib",
    }


def _rlimits(limits: SandboxLimits, processes: int) -> list[tuple[int, tuple[int, int]]]:
    cpu = limits.cpu_limit
    return [
        (resource.RLIMIT_CORE, (0, 0)),
        (resource.RLIMIT_CPU, (cpu, cpu + 5)),  # SIGXCPU at the soft limit, SIGKILL at the hard
        (resource.RLIMIT_FSIZE, (limits.max_file_bytes, limits.max_file_bytes)),
        (resource.RLIMIT_NPROC, (processes, processes)),
        # Last: nothing may allocate after it in a parent bigger than the limit.
        (resource.RLIMIT_AS, (limits.memory_bytes + STARTUP_ADDRESS_SPACE,) * 2),
    ]


def _make_preexec(rlimits, *, new_netns: bool, drop_to: tuple[int, int] | None):
    """Runs in the forked child before exec: namespace, identity, then limits (AS last)."""
    unshare = _libc.unshare
    drop = Dropper() if drop_to is not None else None  # loaded before the fork

    def preexec() -> None:
        if new_netns and unshare(CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed")
        if drop is not None:
            drop(*drop_to)
        for which, value in rlimits:
            resource.setrlimit(which, value)

    return preexec


def _data_pipe(content: bytes) -> int:
    read, write = os.pipe()
    try:
        os.write(write, content)  # small: fits the pipe's buffer
    finally:
        os.close(write)
    return read


def _process_limit(limits: SandboxLimits, ids) -> int:
    if ids is not None:
        return limits.max_processes  # a fresh uid: only this run counts
    return _tasks_of_current_user() + limits.max_processes


def _bubblewrap_launch(bwrap: str, job: Path, ids, limits: SandboxLimits) -> _Launch:
    as_root = ids is not None
    uid, gid = ids if as_root else (os.getuid(), os.getgid())
    args = [bwrap, "--die-with-parent", "--new-session"]
    if as_root:
        # Privileged bwrap: no user namespace; the network namespace comes from preexec (empty,
        # loopback down).
        # As root, bwrap keeps every capability unless told otherwise, and never empties the
        # bounding set: the bootstrap drops that (CAP_SETPCAP), then changes uid (SETUID, SETGID).
        args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                 "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                 "--cap-add", "CAP_SETPCAP"]  # fmt: skip
    else:
        args += ["--unshare-all", "--unshare-user", "--disable-userns"]
    args += ["--hostname", "sandbox", "--clearenv"]
    for name, value in _child_env("/tmp", limits).items():  # noqa: S108 (the sandbox's own)
        args += ["--setenv", name, value]

    data_fds: list[int] = []

    def data(content: bytes, dest: str) -> list[str]:
        fd = _data_pipe(content)
        data_fds.append(fd)
        return ["--perms", "0444", "--ro-bind-data", str(fd), dest]

    made: set[str] = {"/"}

    def parents(dest: str) -> list[str]:
        out = []
        for parent in reversed(Path(dest).parents):
            if str(parent) not in made:
                made.add(str(parent))
                out += ["--dir", str(parent)]
        return out

    args += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = f"/{name}"
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    args += ["--dir", "/etc"]
    made.add("/etc")
    for path in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime"):
        args += ["--ro-bind-try", path, path]
    args += data(f"learner:x:{uid}:{gid}:learner:/tmp:/usr/sbin/nologin\n".encode(), "/etc/passwd")
    args += data(f"learner:x:{gid}:\n".encode(), "/etc/group")
    args += data(b"127.0.0.1 localhost sandbox\n::1 localhost\n", "/etc/hosts")

    # The private /tmp comes before the binds: a checkout (and so its virtualenv) may live under
    # /tmp, and a tmpfs mounted after the binds would hide them.
    args += ["--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp"]  # noqa: S108
    made.add("/tmp")  # noqa: S108
    bound = _python_paths()
    for path in bound:
        args += [*parents(path), "--ro-bind", path, path]
    for path in _hidden_paths(bound):  # an empty, read-only directory in its place
        args += ["--perms", "0555", "--size", "4096", "--tmpfs", path, "--remount-ro", path]
    runtime = f"{SOURCE_ROOT_IN_SANDBOX}/runtime"
    args += [*parents(runtime), "--dir", runtime]
    for entry in sorted(os.listdir(RUNTIME_DIR)):
        if entry not in RUNTIME_LEFT_OUT:
            args += ["--ro-bind", str(RUNTIME_DIR / entry), f"{runtime}/{entry}"]
    args += ["--ro-bind", str(job / "in"), JOB_IN_SANDBOX]
    args += ["--proc", "/proc", "--dev", "/dev"]
    # A private /dev/shm in memory too, of the same fixed size; then the root turns read-only.
    args += ["--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", "/dev/shm"]  # noqa: S108
    args += ["--remount-ro", "/", "--chdir", "/tmp"]  # noqa: S108
    program = seccomp_program()
    if program is not None:
        fd = _data_pipe(program)
        data_fds.append(fd)
        args += ["--seccomp", str(fd)]

    result_r, result_w = os.pipe()
    drop = (str(uid), str(gid)) if as_root else ("-1", "-1")
    args += ["--", sys.executable, "-I", "-B", "-u", "-c", BOOTSTRAP, *drop,
             SOURCE_ROOT_IN_SANDBOX, JOB_IN_SANDBOX, str(result_w)]  # fmt: skip
    preexec = _make_preexec(
        _rlimits(limits, _process_limit(limits, ids)), new_netns=as_root, drop_to=None
    )
    return _Launch(args, {"PATH": "/usr/bin:/bin"}, "/", preexec, data_fds, result_w, result_r)


def _hidden_paths(bound: list[str]) -> list[str]:
    """Directories under the bound Python trees that the sandbox sees empty: site-packages the
    interpreter does not use (the base installation's, under a virtualenv) and datasets that
    packages ship (scikit-learn's digits are an exercise dataset: test inputs could be looked up
    in them)."""
    on_path = {os.path.realpath(p) for p in sys.path if p}
    hidden = []
    for root in bound:
        for lib in ("lib", "lib64"):
            for site in sorted(Path(root, lib).glob("python3*/*-packages")):
                if os.path.realpath(site) not in on_path:
                    hidden.append(str(site))
    for entry in sys.path:
        if entry.endswith("-packages"):
            hidden += [os.path.join(entry, d) for d in PACKAGE_DATA_HIDDEN
                       if os.path.isdir(os.path.join(entry, d))]  # fmt: skip
    return list(dict.fromkeys(hidden))


def _python_paths() -> list[str]:
    """The interpreter's installation and the virtualenv, outside /usr; nothing else."""
    candidates = [sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))]
    paths: list[str] = []
    for candidate in sorted({os.path.realpath(c) for c in candidates} | {sys.prefix}, key=len):
        if candidate == "/usr" or candidate.startswith("/usr/"):
            continue
        if any(candidate == p or candidate.startswith(p + "/") for p in paths):
            continue
        paths.append(candidate)
    return paths


def _limits_only_launch(job: Path, ids, limits: SandboxLimits) -> _Launch:
    scratch = str(job / "tmp")
    result_r, result_w = os.pipe()
    argv = [sys.executable, "-I", "-B", "-u", "-c", BOOTSTRAP, "-1", "-1",
            str(job / "src"), str(job / "in"), str(result_w)]  # fmt: skip
    preexec = _make_preexec(
        _rlimits(limits, _process_limit(limits, ids)), new_netns=ids is not None, drop_to=ids
    )
    return _Launch(argv, _child_env(scratch, limits), scratch, preexec, [], result_w, result_r)


# --- supervising --------------------------------------------------------------------------------


class _Output:
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


class _Channel:
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
        point = None if self.finished else _progress_point(message.point)
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


def _progress_point(point) -> dict | None:
    """The child's progress point, checked as every point is (runtime.progress), or
    None when it does not hold together (it is then dropped)."""
    try:
        return ProgressPoint.from_untrusted(point).as_payload()
    except ProgressInvalid:
        return None


def _supervise(launch: _Launch, *, limits, ids, order, num_classes, epochs, progress,
               should_cancel):  # fmt: skip
    started = time.monotonic()
    output = _Output()
    channel = _Channel(progress=progress, test_count=len(order), num_classes=num_classes,
                       epochs=epochs)  # fmt: skip
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
    result = _judge(process, stopped, output, channel, limits, order)
    result.seconds = seconds
    result.output = output.text()
    result.progress_forwarded, result.progress_dropped = channel.forwarded, channel.dropped
    return result


def _watch(process, result_r, output: _Output, channel: _Channel, limits, should_cancel):
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


def _signal_of(returncode: int) -> int | None:
    if returncode < 0:
        return -returncode  # limits-only: the interpreter itself
    if returncode > 128:
        return returncode - 128  # bwrap passes on 128 + the signal
    return None


def _judge(process, stopped, output, channel: _Channel, limits, order):
    if stopped == "wall_time":
        return CodeRunResult("timed_out", limit_message("wall_time", limits), "wall_time")
    if stopped == "cancelled":
        return CodeRunResult("cancelled", "The run was cancelled.", "cancelled")
    if stopped == "output":
        return CodeRunResult("failed", limit_message("output", limits), "output")
    if channel.failure is not None:
        return _protocol_failure(channel.failure)
    returncode = process.returncode
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
            "failed", "Your code was killed by the system (it used too much CPU time or memory).",
            "crash",
        )  # fmt: skip
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


def _from_error(error: protocol.Error, limits: SandboxLimits, output: _Output) -> CodeRunResult:
    kind, message = error.kind, error.message.replace("\x00", "\ufffd")
    if kind in ("memory", "processes", "file_size", "disk", "cpu_time"):
        return CodeRunResult("failed", limit_message(kind, limits), kind)
    if kind == "sandbox":
        detail = message[:300] or output.last_line()
        return CodeRunResult("failed", f"The code sandbox failed: {detail}", "sandbox")
    return CodeRunResult("failed", message[:600], kind)


def _success(message: protocol.Result, channel: _Channel, order) -> CodeRunResult:
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
    return CodeRunResult("succeeded", predictions=in_test_order, outcome=outcome)
