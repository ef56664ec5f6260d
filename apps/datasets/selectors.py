"""Reads of datasets for the teachers' pages: the tenant's datasets and versions, and what a
ready version's preview shows (its first rows or texts, a few images of each class as small
PNGs, the class balance, its figures and the sizes of its parts under the default plan).

The preview reads the version's Arrow file memory-mapped (its local copy, checked against its
sha256), never the whole of it into memory: the first rows, and for images the label column
once per file to find each class's first images. Everything shown is capped: at most
SAMPLE_ROWS rows, SAMPLE_COLUMNS columns, GRID_CLASSES classes of GRID_IMAGES images each.
"""

import io
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from PIL import Image

from apps.datasets.models import Dataset, DatasetVersion, VersionState
from apps.datasets.source import version_file
from runtime.ingest.splits import PARTS, SECRET_BYTES, split_parts
from runtime.ingest.stored import DEFAULT_PLAN

SAMPLE_ROWS = 20  # rows of a table or texts shown
SAMPLE_COLUMNS = 12  # number columns shown, beside the label
TEXT_CHARS = 300  # of each sample text
GRID_CLASSES = 20  # classes of an image dataset shown in the grid
GRID_IMAGES = 8  # images of each of them
THUMBNAIL_SIDE = 96  # the largest side of a thumbnail, in pixels (smaller images kept as they are)
_GRIDS_KEPT = 8  # files whose grid rows are kept in memory (by sha256)


def dataset_list(*, tenant):
    """The tenant's datasets by title, each with its versions (newest first)."""
    return Dataset.objects.filter(tenant=tenant).prefetch_related("versions").order_by("title")


def dataset_get(*, tenant, slug: str) -> Dataset | None:
    return Dataset.objects.filter(tenant=tenant, slug=slug).first()


def version_get(*, tenant, dataset_slug: str, number: int) -> DatasetVersion | None:
    return (
        DatasetVersion.objects.filter(tenant=tenant, dataset__slug=dataset_slug, number=number)
        .select_related("dataset__tenant")
        .first()
    )


def version_rows(version: DatasetVersion) -> int | None:
    """Rows (tables), images or samples (arrays) of a ready version; None before."""
    summary = version.summary or {}
    for name in ("rows", "images", "samples"):
        if name in summary:
            return int(summary[name])
    return None


def version_kind(version: DatasetVersion) -> str:
    """What the learner's model reads: "image", "vector" or "tokens" ("" before it is ready)."""
    return (version.summary or {}).get("info", {}).get("kind", "")


@dataclass(frozen=True)
class ClassCount:
    name: str
    count: int
    share: float  # of all rows, 0 to 1
    percent: int  # of all rows, rounded


def version_classes(version: DatasetVersion) -> list[ClassCount]:
    """Each class and its rows, in the order of the class names (sorted), as the summary has
    them."""
    classes = (version.summary or {}).get("classes", {})
    total = sum(classes.values()) or 1
    return [
        ClassCount(name=name, count=count, share=count / total, percent=round(100 * count / total))
        for name, count in sorted(classes.items())
    ]


def version_parts(version: DatasetVersion) -> dict[str, int]:
    """The sizes of the four parts (train, validation, public, private) every assignment on
    this version gets: each class is split in the default plan's proportions, so the sizes
    follow from the class counts alone, whatever the assignment's secret (drawn here with a
    secret of zeros, which only counts)."""
    sizes = dict.fromkeys(PARTS, 0)
    for count in (version.summary or {}).get("classes", {}).values():
        parts = split_parts(
            np.zeros(count, dtype=np.int8), secret=bytes(SECRET_BYTES), plan=DEFAULT_PLAN
        )
        for index, part in enumerate(PARTS):
            sizes[part] += int((parts == index).sum())
    return sizes


def _reader(version: DatasetVersion) -> pa.ipc.RecordBatchFileReader:
    return pa.ipc.open_file(pa.memory_map(str(version_file(version))))


def _first_rows(reader: pa.ipc.RecordBatchFileReader, rows: int) -> pa.Table:
    batches, taken = [], 0
    for index in range(reader.num_record_batches):
        if taken >= rows:
            break
        batch = reader.get_batch(index).slice(0, rows - taken)
        batches.append(batch)
        taken += batch.num_rows
    return pa.Table.from_batches(batches, schema=reader.schema)


@dataclass(frozen=True)
class Sample:
    columns: list[str]  # the columns shown, the label last
    rows: list[list[str]]  # each row's cells as text
    more_columns: int  # number columns not shown


def version_sample(version: DatasetVersion) -> Sample | None:
    """The first rows of a ready table or text version, as text; None for other versions."""
    if version.state != VersionState.READY or version_kind(version) not in ("vector", "tokens"):
        return None
    reader = _reader(version)
    names = reader.schema.names
    if "x" in names:  # arrays of numbers: no column names to show
        return None
    features = [name for name in names if name != "label"]
    shown = features[:SAMPLE_COLUMNS]
    table = _first_rows(reader, SAMPLE_ROWS)
    columns = {name: table.column(name).to_pylist() for name in [*shown, "label"]}

    def cell(name, value) -> str:
        if name == "text":
            return value if len(value) <= TEXT_CHARS else value[: TEXT_CHARS - 1] + "…"
        if name == "label":
            return value
        return f"{value:.6g}"

    rows = [
        [cell(name, columns[name][row]) for name in [*shown, "label"]]
        for row in range(table.num_rows)
    ]
    return Sample(columns=[*shown, "label"], rows=rows, more_columns=len(features) - len(shown))


_grids: OrderedDict[str, dict[str, list[int]]] = OrderedDict()
_grids_lock = threading.Lock()


def _grid_rows(version: DatasetVersion) -> dict[str, list[int]]:
    """The rows of each shown class's first GRID_IMAGES images, by class name (the first
    GRID_CLASSES classes by name), from the label column read once per file (StoredCorrupt
    when the file is lost, even with its rows kept)."""
    version_file(version)
    with _grids_lock:
        if version.data_sha256 in _grids:
            _grids.move_to_end(version.data_sha256)
            return _grids[version.data_sha256]
    labels = _reader(version).read_all().column("label").combine_chunks().dictionary_encode()
    names = labels.dictionary.to_pylist()
    codes = labels.indices.to_numpy(zero_copy_only=False)
    order = np.argsort(codes, kind="stable")  # each class's rows, in file order
    starts = np.searchsorted(codes[order], np.arange(len(names)))
    ends = np.append(starts[1:], len(order))
    by_name = {name: (starts[code], ends[code]) for code, name in enumerate(names)}
    rows = {}
    for name in sorted(names)[:GRID_CLASSES]:
        start, end = by_name[name]
        rows[name] = [int(row) for row in order[start : min(end, start + GRID_IMAGES)]]
    with _grids_lock:
        _grids[version.data_sha256] = rows
        while len(_grids) > _GRIDS_KEPT:
            _grids.popitem(last=False)
    return rows


def version_grid(version: DatasetVersion) -> list[tuple[int, str, int]]:
    """For a ready image version, the grid's classes: (index, name, images shown) in the
    order of the class names; [] for other versions."""
    if version.state != VersionState.READY or version_kind(version) != "image":
        return []
    return [
        (index, name, len(rows)) for index, (name, rows) in enumerate(_grid_rows(version).items())
    ]


def _pixels(reader: pa.ipc.RecordBatchFileReader, row: int) -> np.ndarray | None:
    """One image of the file as uint8 [H, W] or [H, W, C] (C 3 or 4), as the ingester stored
    it (images: HWC; arrays of uint8: HW, HWC or CHW); None if it is not an image."""
    meta = {k.decode(): v.decode() for k, v in (reader.schema.metadata or {}).items()}
    table = reader.read_all()
    if "image" in table.schema.names:
        shape = tuple(int(meta[key]) for key in ("height", "width", "channels"))
        values = np.frombuffer(table.column("image")[row].as_py(), dtype=np.uint8).reshape(shape)
    elif "x" in table.schema.names and meta.get("dtype") == "uint8":
        shape = tuple(json.loads(meta["shape"]))
        values = np.frombuffer(table.column("x")[row].as_py(), dtype=np.uint8).reshape(shape)
        if values.ndim == 3 and values.shape[0] in (1, 3, 4) and values.shape[-1] not in (1, 3, 4):
            values = values.transpose(1, 2, 0)  # channels first, as stored_read reads it
    else:
        return None
    if values.ndim == 3 and values.shape[-1] == 1:
        values = values[..., 0]
    if values.ndim == 2 or (values.ndim == 3 and values.shape[-1] in (3, 4)):
        return values
    return None


def version_thumbnail(version: DatasetVersion, *, class_index: int, position: int) -> bytes | None:
    """A small PNG of image `position` of class `class_index` in the grid of a ready image
    version; None when there is no such image (a class or position past the grid, or a
    version that is not a ready image dataset)."""
    grid = version_grid(version)
    if not 0 <= class_index < len(grid) or not 0 <= position < grid[class_index][2]:
        return None
    row = _grid_rows(version)[grid[class_index][1]][position]
    pixels = _pixels(_reader(version), row)
    if pixels is None:
        return None
    image = Image.fromarray(np.ascontiguousarray(pixels))
    if max(image.size) > THUMBNAIL_SIDE:
        image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
