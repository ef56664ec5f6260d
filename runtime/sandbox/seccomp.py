"""A small seccomp filter for the sandbox, as the raw BPF program `bwrap --seccomp FD` loads.

It denies what training a model never needs and what widens the kernel's attack surface: new
namespaces (above all nested user namespaces: bubblewrap's --disable-userns needs a user
namespace of its own, which a root worker's sandbox does not have), mounts, ptrace and reading
other processes' memory, bpf, perf events, userfaultfd, io_uring, keyrings, modules, kexec,
swap, reboot, quotas, the kernel log, handles to files by inode. Denied calls fail with EPERM;
clone3 fails with ENOSYS (its flags sit in memory a filter cannot read), which makes glibc fall
back to clone, whose flags are checked. Other architectures than the host's are killed (the
x32 ABI and 32-bit calls on x86_64). Architectures without a table here get no filter.

Syscall numbers are from the kernel's uapi headers (asm/unistd_64.h, asm-generic/unistd.h).
"""

import errno
import platform
import struct

# BPF opcodes and seccomp return values (linux/filter.h, linux/seccomp.h).
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_RET_KILL_PROCESS = 0x80000000
# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6].
_NR, _ARCH, _ARG0_LOW = 0, 4, 16  # little-endian: the low half of args[0] comes first

# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET (not NEWTIME: clone() keeps the
# exit signal in the low byte, and NEWTIME is unshare/clone3 only).
CLONE_NAMESPACES = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000
CLONE_NAMESPACES |= 0x40000000

_DENIED = (
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "acct",
    "swapon",
    "swapoff",
    "reboot",
    "syslog",
    "open_by_handle_at",
    "quotactl",
)

_TABLES = {
    "x86_64": (
        0xC000003E,
        {  # AUDIT_ARCH_X86_64
            "unshare": 272,
            "setns": 308,
            "clone": 56,
            "clone3": 435,
            "mount": 165,
            "umount2": 166,
            "pivot_root": 155,
            "chroot": 161,
            "move_mount": 429,
            "open_tree": 428,
            "fsopen": 430,
            "fsconfig": 431,
            "fsmount": 432,
            "fspick": 433,
            "mount_setattr": 442,
            "ptrace": 101,
            "process_vm_readv": 310,
            "process_vm_writev": 311,
            "bpf": 321,
            "perf_event_open": 298,
            "userfaultfd": 323,
            "keyctl": 250,
            "add_key": 248,
            "request_key": 249,
            "kexec_load": 246,
            "kexec_file_load": 320,
            "init_module": 175,
            "finit_module": 313,
            "delete_module": 176,
            "io_uring_setup": 425,
            "io_uring_enter": 426,
            "io_uring_register": 427,
            "acct": 163,
            "swapon": 167,
            "swapoff": 168,
            "reboot": 169,
            "syslog": 103,
            "open_by_handle_at": 304,
            "quotactl": 179,
        },
    ),
    "aarch64": (
        0xC00000B7,
        {  # AUDIT_ARCH_AARCH64
            "unshare": 97,
            "setns": 268,
            "clone": 220,
            "clone3": 435,
            "mount": 40,
            "umount2": 39,
            "pivot_root": 41,
            "chroot": 51,
            "move_mount": 429,
            "open_tree": 428,
            "fsopen": 430,
            "fsconfig": 431,
            "fsmount": 432,
            "fspick": 433,
            "mount_setattr": 442,
            "ptrace": 117,
            "process_vm_readv": 270,
            "process_vm_writev": 271,
            "bpf": 280,
            "perf_event_open": 241,
            "userfaultfd": 282,
            "keyctl": 219,
            "add_key": 217,
            "request_key": 218,
            "kexec_load": 104,
            "kexec_file_load": 294,
            "init_module": 105,
            "finit_module": 273,
            "delete_module": 106,
            "io_uring_setup": 425,
            "io_uring_enter": 426,
            "io_uring_register": 427,
            "acct": 89,
            "swapon": 224,
            "swapoff": 225,
            "reboot": 142,
            "syslog": 116,
            "open_by_handle_at": 265,
            "quotactl": 60,
        },
    ),
}


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def seccomp_program(machine: str | None = None) -> bytes | None:
    """The filter for this machine's architecture, or None where there is no table."""
    table = _TABLES.get(machine or platform.machine())
    if table is None:
        return None
    arch, numbers = table
    program = [
        _op(_LD_W_ABS, _ARCH),
        _op(_JEQ_K, arch, jt=1),
        _op(_RET_K, _RET_KILL_PROCESS),
        _op(_LD_W_ABS, _NR),
    ]
    if arch == 0xC000003E:  # the x32 ABI: the same arch, numbers with bit 30 set
        program += [_op(_JGE_K, 0x40000000, jf=1), _op(_RET_K, _RET_KILL_PROCESS)]
    for name in _DENIED:
        program += [_op(_JEQ_K, numbers[name], jf=1), _op(_RET_K, _RET_ERRNO | errno.EPERM)]
    program += [
        _op(_JEQ_K, numbers["clone3"], jf=1),
        _op(_RET_K, _RET_ERRNO | errno.ENOSYS),
        _op(_JEQ_K, numbers["clone"], jf=3),
        _op(_LD_W_ABS, _ARG0_LOW),
        _op(_JSET_K, CLONE_NAMESPACES, jf=1),
        _op(_RET_K, _RET_ERRNO | errno.EPERM),
        _op(_RET_K, _RET_ALLOW),
    ]
    return b"".join(program)
