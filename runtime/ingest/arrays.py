"""NumPy arrays as datasets: an NPZ holding `x` (samples first) and `y` (one label per sample),
or the two as separate NPY files. Never with pickles: each array's header is read first
(numpy.lib.format), and an object or structured dtype, Fortran order, a shape whose size passes
the limits, or a file shorter than its header says is refused before any data is read; then
the data is read in chunks of rows, checked (finite numbers) and written as it comes.

The file: columns `x` (fixed_size_binary: one sample's bytes, C order) and `label` (string);
the schema's metadata holds `dtype` ("uint8" stays uint8, every other number type is stored as
float32) and `shape` (one sample's, JSON).
"""

import contextlib
import json
import math
import os
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
from numpy.lib import format as npy_format

from runtime.ingest.common import (
    IngestLimits,
    IngestRefused,
    Problems,
    ProgressReader,
    classes_check,
)

CHUNK_BYTES = 8 * 1024 * 1024
MAX_ELEMENTS = 1 << 31  # one array, whatever its dtype
DEFAULT_LIMITS = IngestLimits()


@dataclass(frozen=True)
class ArraySummary:
    samples: int
    shape: tuple[int, ...]  # one sample's
    dtype: str  # as stored
    classes: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "samples": self.samples,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "classes": self.classes,
        }


@dataclass
class _Array:
    where: str
    handle: BinaryIO
    shape: tuple[int, ...]
    dtype: np.dtype


def arrays_ingest(
    x_source: BinaryIO,
    out_path: Path,
    *,
    y_source: BinaryIO | None = None,
    limits: IngestLimits = DEFAULT_LIMITS,
    on_progress=None,
) -> ArraySummary:
    """An NPZ (`x_source` alone, arrays named x and y) or two NPY files into the Arrow file
    `out_path`; IngestRefused, with nothing at `out_path`, when they cannot be a dataset.
    `on_progress`: called with the fraction of the samples' file read, rising."""
    if on_progress:
        x_source = ProgressReader(x_source, on_progress)
    try:
        with contextlib.ExitStack() as stack:
            if y_source is None:
                archive = stack.enter_context(_npz(x_source))
                x = _opened(stack, archive, "x", limits)
                y = _opened(stack, archive, "y", limits)
            else:
                x = _array("x.npy", x_source, limits)
                y = _array("y.npy", y_source, limits)
            summary = _ingest(x, y, out_path, limits)
        if on_progress:
            x_source.done()
        return summary
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(out_path)
        raise


@contextlib.contextmanager
def _npz(source: BinaryIO):
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError):
        raise IngestRefused.one("file", "not an NPZ (a zip of .npy arrays)") from None
    with archive:
        yield archive


def _opened(stack, archive: zipfile.ZipFile, name: str, limits: IngestLimits) -> _Array:
    names = archive.namelist()
    if f"{name}.npy" not in names:
        listed = ", ".join(n.removesuffix(".npy") for n in names) or "none"
        raise IngestRefused.one("file", f"no array named {name!r}; the arrays in it: {listed}")
    handle = stack.enter_context(archive.open(f"{name}.npy"))
    return _array(f"{name}.npy", handle, limits)


def _array(where, handle, limits) -> _Array:
    """The array's header, checked; the handle is left at its first data byte."""
    try:
        version = npy_format.read_magic(handle)
        reader = {
            (1, 0): npy_format.read_array_header_1_0,
            (2, 0): npy_format.read_array_header_2_0,
        }.get(version)
        if reader is None:
            raise ValueError(f"NPY format version {version[0]}.{version[1]}")
        shape, fortran, dtype = reader(handle, max_header_size=10_000)
    except ValueError as exc:
        raise IngestRefused.one(where, f"not a readable NPY array: {exc}") from None
    if dtype.hasobject or dtype.fields is not None:
        raise IngestRefused.one(
            where, f"an array of {dtype} (objects or records): only numbers and text, never pickles"
        )
    if dtype.kind not in "biufU":
        raise IngestRefused.one(where, f"an array of {dtype}: only numbers (and text for labels)")
    if fortran and len(shape) > 1:
        raise IngestRefused.one(where, "stored in Fortran order: save it in C order")
    if not shape:
        raise IngestRefused.one(where, "a single value, not an array of samples")
    elements = math.prod(shape)
    if elements > MAX_ELEMENTS or elements * dtype.itemsize > limits.max_unpacked_bytes:
        raise IngestRefused.one(
            where,
            f"its header declares shape {tuple(shape)} ({elements} elements of {dtype}); "
            f"at most {limits.max_unpacked_bytes} bytes",
        )
    return _Array(where, handle, tuple(shape), dtype)


def _ingest(x: _Array, y: _Array, out_path, limits) -> ArraySummary:
    if len(y.shape) != 1:
        raise IngestRefused.one(y.where, f"shape {y.shape}: the labels are one value per sample")
    if x.shape[0] != y.shape[0]:
        raise IngestRefused.one(
            "file", f"x has {x.shape[0]} samples and y {y.shape[0]} labels: they must match"
        )
    if x.dtype.kind not in "biuf":
        raise IngestRefused.one(x.where, f"an array of {x.dtype}: samples are numbers")
    if x.shape[0] > limits.max_rows:
        raise IngestRefused.one(x.where, f"{x.shape[0]} samples; at most {limits.max_rows}")
    labels = _labels(y)
    classes = Counter(labels)
    problems = Problems()
    classes_check(classes, y.where, limits, problems)
    problems.refuse_if_any()
    stored = np.dtype(np.uint8) if x.dtype == np.uint8 else np.dtype(np.float32)
    sample_shape = x.shape[1:]
    row_bytes = math.prod(sample_shape) * stored.itemsize
    schema = pa.schema(
        [("x", pa.binary(row_bytes)), ("label", pa.string())],
        metadata={"dtype": stored.name, "shape": json.dumps(list(sample_shape))},
    )
    read_row = math.prod(sample_shape) * x.dtype.itemsize
    per_chunk = max(1, CHUNK_BYTES // max(read_row, 1))
    with pa.OSFile(str(out_path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for start in range(0, x.shape[0], per_chunk):
            count = min(per_chunk, x.shape[0] - start)
            data = x.handle.read(count * read_row)
            if len(data) != count * read_row:
                whole = start + len(data) // read_row
                raise IngestRefused.one(
                    x.where, f"shorter than its header says: {whole} of {x.shape[0]} samples"
                )
            rows = np.frombuffer(data, dtype=x.dtype).reshape(count, *sample_shape)
            if rows.dtype.kind == "f":
                bad = ~np.isfinite(rows.reshape(count, -1)).all(axis=1)
                if bad.any():
                    index = start + int(np.argmax(bad))
                    raise IngestRefused.one(x.where, f"sample {index} has NaN or infinite values")
                if np.abs(rows).max(initial=0) > np.finfo(np.float32).max:
                    raise IngestRefused.one(x.where, "values beyond float32's range")
            converted = np.ascontiguousarray(rows, dtype=stored)
            column = pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(row_bytes), count, [None, pa.py_buffer(converted.tobytes())]
            )
            writer.write_batch(
                pa.record_batch(
                    [column, pa.array(labels[start : start + count], pa.string())], schema=schema
                )
            )
    return ArraySummary(
        samples=x.shape[0],
        shape=tuple(sample_shape),
        dtype=stored.name,
        classes=dict(sorted(classes.items())),
    )


def _labels(y: _Array) -> list[str]:
    data = y.handle.read(y.shape[0] * y.dtype.itemsize)
    if len(data) != y.shape[0] * y.dtype.itemsize:
        raise IngestRefused.one(y.where, "shorter than its header says")
    values = np.frombuffer(data, dtype=y.dtype)
    if values.dtype.kind == "f":
        if not np.isfinite(values).all() or not (values == np.round(values)).all():
            raise IngestRefused.one(y.where, "labels that are not whole numbers")
        values = values.astype(np.int64)
    return [str(value) for value in values.tolist()]
