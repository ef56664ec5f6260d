"""The uids runs take when the worker is root, and the processes of a uid.

One uid per concurrent run, leased from a pool under a file lock: one run's processes never count
against (RLIMIT_NPROC) or can signal another's, and nothing on the host is owned by them. A lease
starts and ends by killing whatever still runs under its uid (a crashed run's leftovers).
"""

import contextlib
import fcntl
import logging
import os
import signal
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

UID_BASE = 1_600_000_000
UID_COUNT = 256


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
def sandbox_ids() -> Iterator[tuple[int, int] | None]:
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


def _processes(*attrs: str) -> Iterator[dict]:
    """`attrs` of every process (and its pid); those that vanish or hide are skipped."""
    for process in psutil.process_iter(["pid", "uids", *attrs]):
        if process.info["uids"] is not None:  # None: access denied (psutil's ad_value)
            yield process.info


def processes_of(uid: int) -> list[int]:
    """Pids whose real uid is `uid`."""
    return [info["pid"] for info in _processes() if info["uids"].real == uid]


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


def tasks_of_current_user() -> int:
    """Processes and threads of our real uid: what RLIMIT_NPROC counts for a non-root run."""
    uid = os.getuid()
    return sum(
        info["num_threads"] or 1 for info in _processes("num_threads") if info["uids"].real == uid
    )
