"""The launch of a sandboxed run: the bwrap arguments, what is bound into the sandbox, the
environment, the rlimits, and the limits-only launch without bubblewrap.

The sandbox's root is built from explicit binds: /usr, the Python installation and the virtualenv
(less the site-packages the interpreter does not use and the datasets packages ship), the job's
inputs at /job, the two files the harness exports the model into at /out, and of the runtime
only the files in RUNTIME_FILES, each bound on its own at /aula/runtime (the directories on the
way are made, never bound). See docs/runtime.md.
"""

import ctypes
import dataclasses
import os
import resource
import stat
import sys
from collections.abc import Callable
from pathlib import Path

from runtime.sandbox.limits import ONNX_FILENAME, WEIGHTS_FILENAME, GiB, SandboxLimits
from runtime.sandbox.privileges import Dropper
from runtime.sandbox.seccomp import seccomp_program
from runtime.sandbox.uids import tasks_of_current_user

# RLIMIT_AS of bwrap and of the child until it locks its own, tighter limit (child.py).
STARTUP_ADDRESS_SPACE = 8 * GiB

RUNTIME_DIR = Path(__file__).resolve().parent.parent  # runtime
SOURCE_ROOT_IN_SANDBOX = "/aula"  # /aula/runtime inside the sandbox
JOB_IN_SANDBOX = "/job"
# Where the harness writes the exported model: the two files of the job's out/, each bound on
# its own (read-write), so that the sandbox can write into them, within RLIMIT_FSIZE, and make
# nothing else on the host's disk (a bound file cannot be renamed, removed or replaced).
ARTIFACTS_IN_SANDBOX = "/out"
ARTIFACT_FILES = (ONNX_FILENAME, WEIGHTS_FILENAME)
# The runtime the sandbox sees, an allow-list (paths relative to runtime/): what the bootstrap
# and child.py import, directly or transitively, and the packages' __init__.py on the way, and
# nothing else. child.py's _resolve also imports the modules of the dataclasses the parent
# describes in job.json: runtime.trainer (ComputeBudget) and runtime.spec.document (TrainingSpec);
# runtime.datasets.DatasetInfo comes as a plain namespace. Never datasets.py (it regenerates
# every dataset, test labels included: the generated ones are deterministic) nor anything else
# that generates or reads data; tests/runtime/test_sandbox_binds.py checks both.
RUNTIME_FILES = (
    "__init__.py",
    "artifacts/__init__.py",
    "artifacts/export.py",  # the harness exports the trained model (child._export)
    "artifacts/session.py",
    "augment.py",
    "errors.py",
    "progress.py",
    "trainer.py",
    "sandbox/__init__.py",
    "sandbox/checks.py",
    "sandbox/child.py",
    "sandbox/limits.py",
    "sandbox/privileges.py",  # loaded by its path, as root, by the bootstrap
    "sandbox/protocol.py",
    "spec/__init__.py",
    "spec/check.py",
    "spec/document.py",
    "spec/fields.py",
    "spec/layers.py",
    "spec/limits.py",
    "spec/modules.py",
    "spec/parse.py",
    "spec/report.py",
    "spec/schema.py",
    "spec/training.py",
    "spec/words.py",
)
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


@dataclasses.dataclass
class Launch:
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
    return tasks_of_current_user() + limits.max_processes


def bubblewrap_launch(bwrap: str, job: Path, ids, limits: SandboxLimits) -> Launch:
    as_root = ids is not None
    uid, gid = ids if as_root else (os.getuid(), os.getgid())
    args = [bwrap, "--die-with-parent", "--new-session"]
    if as_root:
        # Privileged bwrap: no user namespace; the network namespace comes from preexec (empty,
        # loopback down).
        # As root, bwrap keeps every capability unless told otherwise, and never empties the
        # bounding set: the bootstrap drops that (CAP_SETPCAP), then changes uid (SETUID, SETGID).
        args += [
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--cap-drop",
            "ALL",
            "--cap-add",
            "CAP_SETUID",
            "--cap-add",
            "CAP_SETGID",
            "--cap-add",
            "CAP_SETPCAP",
        ]
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
    bound = python_paths()
    for path in bound:
        args += [*parents(path), "--ro-bind", path, path]
    for path in hidden_paths(bound):  # an empty, read-only directory in its place
        args += ["--perms", "0555", "--size", "4096", "--tmpfs", path, "--remount-ro", path]
    for name in RUNTIME_FILES:  # each file on its own: the directories are made, not bound
        dest = f"{SOURCE_ROOT_IN_SANDBOX}/runtime/{name}"
        args += [*parents(dest), "--ro-bind", str(RUNTIME_DIR / name), dest]
    args += ["--ro-bind", str(job / "in"), JOB_IN_SANDBOX]
    for name in ARTIFACT_FILES:
        dest = f"{ARTIFACTS_IN_SANDBOX}/{name}"
        args += [*parents(dest), "--bind", str(job / "out" / name), dest]
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
    args += [
        "--",
        sys.executable,
        "-I",
        "-B",
        "-u",
        "-c",
        BOOTSTRAP,
        *drop,
        SOURCE_ROOT_IN_SANDBOX,
        JOB_IN_SANDBOX,
        str(result_w),
    ]
    preexec = _make_preexec(
        _rlimits(limits, _process_limit(limits, ids)), new_netns=as_root, drop_to=None
    )
    return Launch(args, {"PATH": "/usr/bin:/bin"}, "/", preexec, data_fds, result_w, result_r)


def hidden_paths(bound: list[str]) -> list[str]:
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
            hidden += [
                os.path.join(entry, d)
                for d in PACKAGE_DATA_HIDDEN
                if os.path.isdir(os.path.join(entry, d))
            ]
    return list(dict.fromkeys(hidden))


def python_paths() -> list[str]:
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


def limits_only_launch(job: Path, ids, limits: SandboxLimits) -> Launch:
    scratch = str(job / "tmp")
    result_r, result_w = os.pipe()
    argv = [
        sys.executable,
        "-I",
        "-B",
        "-u",
        "-c",
        BOOTSTRAP,
        "-1",
        "-1",
        str(job / "src"),
        str(job / "in"),
        str(result_w),
    ]
    preexec = _make_preexec(
        _rlimits(limits, _process_limit(limits, ids)), new_netns=ids is not None, drop_to=ids
    )
    return Launch(argv, _child_env(scratch, limits), scratch, preexec, [], result_w, result_r)


def limits_only_refusal() -> str | None:
    """As root, limits-only runs under a leased uid, which must be able to read Python."""
    paths = {
        sys.executable,
        os.path.realpath(sys.executable),
        sys.prefix,
        sys.base_prefix,
        str(RUNTIME_DIR),
    }
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
