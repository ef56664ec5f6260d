"""The pool's binary wire format, both ways: a little-endian uint32 header length, a small JSON
header, then the raw little-endian array bytes. No pickle, no .npy: only the dtypes named here
are read, with every size checked against the header before an array is made."""

import json
import struct
from dataclasses import dataclass

import numpy as np

DTYPES = {"float32": np.dtype("<f4"), "int64": np.dtype("<i8")}
MAX_HEADER_BYTES = 4096
MAX_RANK = 8
_LENGTH = struct.Struct("<I")


class WireError(ValueError):
    """A message that does not follow the format; the text says what is wrong."""


@dataclass(frozen=True)
class Message:
    header: dict
    array: np.ndarray


def encode(header: dict, array: np.ndarray) -> bytes:
    """`header` with the array's dtype and shape added, then the array's bytes."""
    name = next((k for k, v in DTYPES.items() if v == array.dtype.newbyteorder("<")), None)
    if name is None:
        raise WireError(f"dtype {array.dtype} is not one of {', '.join(DTYPES)}")
    head = json.dumps({**header, "dtype": name, "shape": list(array.shape)}).encode()
    if len(head) > MAX_HEADER_BYTES:
        raise WireError(f"the header is {len(head)} bytes; at most {MAX_HEADER_BYTES}")
    data = np.ascontiguousarray(array, dtype=DTYPES[name]).tobytes()
    return b"".join((_LENGTH.pack(len(head)), head, data))


def decode(body: bytes, *, max_elements: int) -> Message:
    """The header and the array of `body`; WireError when anything does not add up."""
    if len(body) < _LENGTH.size:
        raise WireError("the message is shorter than its length prefix")
    (length,) = _LENGTH.unpack_from(body)
    if length > MAX_HEADER_BYTES or _LENGTH.size + length > len(body):
        raise WireError(f"the header length {length} is out of bounds")
    try:
        header = json.loads(body[_LENGTH.size : _LENGTH.size + length])
    except (UnicodeDecodeError, ValueError) as exc:
        raise WireError(f"the header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise WireError("the header is not a JSON object")
    dtype = DTYPES.get(header.get("dtype"))
    if dtype is None:
        raise WireError(f"dtype {header.get('dtype')!r} is not one of {', '.join(DTYPES)}")
    shape = header.get("shape")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= MAX_RANK
        or not all(type(d) is int and d >= 1 for d in shape)
    ):
        raise WireError(f"shape {shape!r} is not 1 to {MAX_RANK} positive integers")
    elements = 1
    for dim in shape:
        elements *= dim
        if elements > max_elements:
            raise WireError(f"shape {shape} has more than {max_elements} elements")
    data = memoryview(body)[_LENGTH.size + length :]
    if len(data) != elements * dtype.itemsize:
        raise WireError(
            f"shape {shape} of {header['dtype']} needs {elements * dtype.itemsize} bytes; "
            f"{len(data)} came"
        )
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    return Message(header=header, array=array)
