"""Reading the model the sandbox exported, from the trusted side, without trusting it: each file
of the job's out/ is opened without following a link, must be a regular file with one link, and
is read up to a cap (one byte more shows it is larger). The bytes are handed on unchecked:
the caller runs runtime.artifacts.check on them before it keeps them."""

import errno
import os
import stat
from pathlib import Path

from runtime.sandbox.limits import ONNX_FILENAME, WEIGHTS_FILENAME, format_bytes

_CHUNK = 1 << 20
_WHAT = {ONNX_FILENAME: "ONNX model", WEIGHTS_FILENAME: "weights file"}


class FileRefused(Exception):
    """A file the parent would not read; the message says why, for the learner."""


def read_capped(directory_fd: int, name: str, cap: int) -> bytes | None:
    """The content of `name` in the directory, at most `cap` bytes; None if it is missing or
    empty. Raises FileRefused for a link, anything but a regular file, a file with other names
    (hard links), or more than `cap` bytes. Never reads more than cap + 1 bytes."""
    what = _WHAT.get(name, name)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(name, flags, dir_fd=directory_fd)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:  # O_NOFOLLOW met a symbolic link
            raise FileRefused(
                f"The exported {what} was replaced by a symbolic link, so it was not kept."
            ) from error
        raise FileRefused(
            f"The exported {what} could not be opened, so it was not kept."
        ) from error
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(
                f"The exported {what} was replaced by something other than a regular file, so "
                "it was not kept."
            )
        if info.st_nlink != 1:
            raise FileRefused(
                f"The exported {what} has other names (hard links), so it was not kept."
            )
        too_large = FileRefused(
            f"The exported {what} is larger than {format_bytes(cap)}, the most kept, so it was "
            "not kept."
        )
        if info.st_size > cap:
            raise too_large
        content = bytearray()
        while len(content) <= cap:
            chunk = os.read(fd, min(_CHUNK, cap + 1 - len(content)))
            if not chunk:
                break
            content += chunk
        if len(content) > cap:
            raise too_large
        return bytes(content) or None
    finally:
        os.close(fd)


def read_exported(out: Path, cap: int) -> tuple[bytes | None, bytes | None, list[str]]:
    """(ONNX bytes, weights bytes, why a file was not read) from the job's out/ directory."""
    problems: list[str] = []
    found: dict[str, bytes | None] = {}
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    directory_fd = os.open(out, flags)
    try:
        for name in (ONNX_FILENAME, WEIGHTS_FILENAME):
            try:
                found[name] = read_capped(directory_fd, name, cap)
            except FileRefused as refused:
                found[name] = None
                problems.append(str(refused))
    finally:
        os.close(directory_fd)
    return found[ONNX_FILENAME], found[WEIGHTS_FILENAME], problems
