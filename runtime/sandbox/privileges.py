"""Giving up root for good before learner code runs: a uid of the run's own, no groups, and every
capability set empty (inheritable, permitted, effective, bounding and ambient).

Standard library only: the sandbox's bootstrap loads this file by its path while it is still
root, before torch or any package of ours is imported (command.BOOTSTRAP), and a limits-only
launch calls it in the forked child before exec (command._make_preexec).

setuid() from root clears the permitted, effective and ambient sets, but not the inheritable
set nor the bounding set, which bubblewrap leaves full when it runs as root. With no_new_privs
neither can give a capability back, but an empty bounding set makes sure of it whatever runs
later; dropping it needs CAP_SETPCAP, so it comes first.
"""

import ctypes
import os

PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
# The capability lines of /proc/<pid>/status, all of which must read zero afterwards.
CAPABILITY_SETS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


class Dropper:
    """Made before a fork (it loads libc and reads the last capability's number), called after
    it: `dropper(uid, gid)` raises OSError unless every step held."""

    def __init__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.prctl.argtypes = [ctypes.c_int, *[ctypes.c_ulong] * 4]
        self.libc.capset.argtypes = [ctypes.POINTER(_Header), ctypes.POINTER(_Data)]
        with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as last:
            self.last_cap = int(last.read())

    def _check(self, result: int, what: str) -> None:
        if result != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"{what} failed: {os.strerror(errno)}")

    def __call__(self, uid: int, gid: int) -> None:
        for cap in range(self.last_cap + 1):
            self._check(self.libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "PR_CAPBSET_DROP")
        self._check(
            self.libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "PR_CAP_AMBIENT"
        )
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        header, data = _Header(_LINUX_CAPABILITY_VERSION_3, 0), (_Data * 2)()
        self._check(self.libc.capset(ctypes.byref(header), data), "capset")
        if os.getresuid() != (uid,) * 3 or os.getresgid() != (gid,) * 3 or os.getgroups():
            raise OSError(0, f"the identity is not {uid}:{gid} with no groups")
        held = {name: value for name, value in capability_sets().items() if value}
        if held:
            raise OSError(0, f"capabilities are still held: {held}")


def capability_sets(pid: str = "self") -> dict[str, int]:
    """The capability sets of a process, from /proc/<pid>/status, as numbers."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        fields = dict(line.split(":", 1) for line in status if ":" in line)
    return {name: int(fields[name], 16) for name in CAPABILITY_SETS}
