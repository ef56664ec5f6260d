"""CSV and TSV files as datasets: tabular (number columns and a label column) or text
classification (a text column and a label column).

The file is read once, streaming: a line at a time through a strict decoder (UTF-8, UTF-8 with
a BOM, or GB18030/GBK, detected from its start), each row checked and written in batches to an
Arrow IPC file (memory-mappable: `pyarrow.ipc.open_file(pyarrow.memory_map(path))`), so memory
holds one batch and the class counts, whatever the file's size. Every problem is named with
where it is (row numbers count the header as row 1, as a spreadsheet shows them); a refused
file leaves no output behind. Cells are stored as they were written: a cell like
`=HYPERLINK(...)` stays text here and is neutralised wherever the platform exports CSV
(apps/core/csv_export.py).
"""

import codecs
import contextlib
import csv
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from runtime.ingest.common import (
    ENCODINGS,
    IngestLimits,
    IngestRefused,
    Problems,
    ProgressReader,
    classes_check,
    encoding_detect,
    file_size,
)

BATCH_ROWS = 8192
HEAD_BYTES = 64 * 1024
# A file up to this size is parsed whole, its blocks on every core at once (pyarrow.csv.read_csv,
# memory a few times the file's size); a larger one streams, a block at a time, in bounded memory.
WHOLE_FILE_BYTES = 128 * 1024 * 1024
KINDS = ("tabular", "text")
DEFAULT_LIMITS = IngestLimits()


@dataclass(frozen=True)
class TableSummary:
    kind: str  # "tabular" or "text"
    rows: int
    label_column: str
    feature_columns: tuple[str, ...]  # the number columns (tabular) or the text column (text)
    classes: dict[str, int] = field(default_factory=dict)  # label -> rows, by label
    encoding: str = ""  # as reported: "UTF-8", "UTF-8 with BOM", "GB18030 (GBK)"
    delimiter: str = ","

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "rows": self.rows,
            "label_column": self.label_column,
            "feature_columns": list(self.feature_columns),
            "classes": self.classes,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
        }


def table_ingest(
    source: BinaryIO,
    out_path: Path,
    *,
    kind: str,
    label_column: str,
    text_column: str | None = None,
    delimiter: str | None = None,
    limits: IngestLimits = DEFAULT_LIMITS,
    on_progress=None,
) -> TableSummary:
    """Reads the CSV/TSV `source` (a seekable binary file) into the Arrow file `out_path`;
    IngestRefused, with nothing at `out_path`, when it cannot be a dataset. `on_progress`:
    called with the fraction of the file read, rising (an exact reread starts again at 0)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    size = file_size(source)
    if size > limits.max_bytes:
        raise IngestRefused.one("file", f"{size} bytes; at most {limits.max_bytes}")
    head = source.read(HEAD_BYTES)
    source.seek(0)
    if not head.strip():
        raise IngestRefused.one("file", "it is empty")
    codec = encoding_detect(head, complete=size <= HEAD_BYTES)
    delimiter = delimiter or _delimiter(head)
    try:
        reader = ProgressReader(source, on_progress) if on_progress else source
        fast = _fast(
            reader, size, out_path, kind, label_column, text_column, delimiter, codec, limits
        )
        if fast is None:  # something is irregular: the exact reader finds and names it
            source.seek(0)
            reader = ProgressReader(source, on_progress) if on_progress else source
            fast = _ingest(
                reader, out_path, kind, label_column, text_column, delimiter, codec, limits
            )
        if on_progress:
            reader.done()
        return fast
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(out_path)
        raise


def _delimiter(head: bytes) -> str:
    first = head.split(b"\n", 1)[0]
    return "\t" if first.count(b"\t") > first.count(b",") else ","


@contextlib.contextmanager
def _field_limit(chars: int):
    previous = csv.field_size_limit(chars)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


class _Lines:
    """The file's physical lines, decoded one at a time (so a decoding error names its line),
    each within the limit and free of NUL; `number` is the last one's (csv.reader asks for more
    lines for a quoted cell that spans them). Splitting the bytes at b"\n" is safe in all three
    encodings: no multi-byte character of UTF-8 or GB18030 contains that byte."""

    def __init__(self, source: BinaryIO, limits: IngestLimits, codec: str):
        self.source, self.limits, self.codec = source, limits, codec
        self.decoder = codecs.getincrementaldecoder(codec)(errors="strict")
        self.number = 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        limit = self.limits.max_line_bytes
        raw = self.source.readline(limit + 1)
        if not raw:
            raise StopIteration
        self.number += 1
        if len(raw) > limit and not raw.endswith(b"\n"):
            raise IngestRefused.one(
                f"line {self.number}", f"longer than {limit} bytes (one line of a CSV)"
            )
        if b"\x00" in raw:
            raise IngestRefused.one(
                f"line {self.number}", "a NUL byte: this is not a text file (CSV or TSV)"
            )
        try:
            return self.decoder.decode(raw, final=not raw.endswith(b"\n"))
        except UnicodeDecodeError as exc:
            raise IngestRefused.one(
                f"line {self.number}",
                f"bytes that are not {ENCODINGS[self.codec]} "
                f"({raw[exc.start : exc.start + 4].hex(' ')}); "
                "the file mixes encodings: save it as UTF-8",
            ) from None


def _fast(source, size, out_path, kind, label_column, text_column, delimiter, codec, limits):
    """The whole file through pyarrow's CSV reader (C++, in blocks, on every core), every check
    made on each block with pyarrow.compute; None at the first thing that is not plainly right
    (a ragged row, a cell that is not a number, an empty label, NUL, an over-long cell or line,
    bytes of another encoding, too many rows or classes), for `_ingest` to name it exactly. A
    file that is right is read once, here."""
    lines = _Lines(source, limits, codec)
    with _field_limit(limits.max_field_chars):
        try:
            header = [name.strip() for name in next(csv.reader(lines, delimiter=delimiter))]
        except (StopIteration, csv.Error):
            return None
    _label_at, feature_at = _header(header, kind, label_column, text_column, limits)
    source.seek(0)
    features = [header[i] for i in feature_at]
    feature_type = pa.string() if kind == "text" else pa.float32()
    reader_options = (
        pacsv.ReadOptions(
            column_names=header,
            skip_rows=lines.number,
            block_size=max(4 * limits.max_line_bytes, 1 << 22),
            encoding="utf8" if codec.startswith("utf-8") else codec,
        ),
        # A quoted cell across lines comes out ragged here, and the exact reader takes it.
        pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=False),
        pacsv.ConvertOptions(
            column_types={**{name: feature_type for name in features}, label_column: pa.string()},
            include_columns=[*features, label_column],
            null_values=[],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    schema = _schema(kind, features)
    classes: Counter = Counter()
    rows = 0
    try:
        # Closed on the way out, however it ends: its read-ahead must not go on reading the
        # file (the exact reader may read it next) or call into Python at the process's exit.
        with (
            _batches(source, size, reader_options) as batches,
            pa.OSFile(str(out_path), "wb") as sink,
            pa.ipc.new_file(sink, schema) as writer,
        ):
            for batch in batches:
                rows += batch.num_rows
                columns = _fast_columns(batch, kind, features, label_column, limits)
                if columns is None or rows > limits.max_rows:
                    return None
                labels = columns[-1]
                for counted in pc.value_counts(labels).to_pylist():
                    classes[counted["values"]] += counted["counts"]
                if len(classes) > limits.max_classes:
                    return None
                writer.write_batch(pa.record_batch(columns, schema=schema))
    except (pa.ArrowException, UnicodeError, ValueError, csv.Error):
        return None
    problems = Problems()
    classes_check(classes, f"column {label_column!r}", limits, problems)
    problems.refuse_if_any()
    return TableSummary(
        kind=kind,
        rows=rows,
        label_column=label_column,
        feature_columns=tuple(features),
        classes=dict(sorted(classes.items())),
        encoding=ENCODINGS[codec],
        delimiter=delimiter,
    )


@contextlib.contextmanager
def _batches(source, size: int, reader_options):
    """The file's record batches: parsed whole when it is at most WHOLE_FILE_BYTES, else
    streamed (the stream closed on the way out)."""
    if size <= WHOLE_FILE_BYTES:
        yield pacsv.read_csv(source, *reader_options).to_batches()
        return
    with pacsv.open_csv(source, *reader_options) as stream:
        yield stream


def _fast_columns(batch, kind, features, label_column, limits) -> list | None:
    """The batch's columns as the Arrow file stores them, or None if anything needs naming."""
    labels = pc.utf8_trim_whitespace(batch.column(label_column))
    strings = [labels]
    if kind == "text":
        text = batch.column(features[0])
        if pc.any(pc.equal(pc.utf8_trim_whitespace(text), "")).as_py():
            return None
        strings.append(text)
        columns = [text, labels]
    else:
        columns = [batch.column(name) for name in features]
        for column in columns:
            if not pc.all(pc.is_finite(column)).as_py():
                return None
        columns.append(labels)
    if pc.any(pc.equal(labels, "")).as_py():
        return None
    for column in strings:
        if pc.any(pc.match_substring(column, "\x00")).as_py():
            return None
        if pc.max(pc.utf8_length(column)).as_py() > limits.max_field_chars:
            return None
    return columns


def _ingest(source, out_path, kind, label_column, text_column, delimiter, codec, limits):
    lines = _Lines(source, limits, codec)
    problems = Problems()
    with _field_limit(limits.max_field_chars):
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        try:
            header = [name.strip() for name in next(reader)]
        except StopIteration:
            raise IngestRefused.one("file", "it is empty") from None
        except csv.Error as exc:
            raise IngestRefused.one("row 1", f"not readable as CSV: {exc}") from None
        label_at, feature_at = _header(header, kind, label_column, text_column, limits)
        schema = _schema(kind, [header[i] for i in feature_at])
        classes: Counter = Counter()
        rows = 0
        with pa.OSFile(str(out_path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            batch = _Batch(kind, len(feature_at))
            row_number = 1
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    message = str(exc)
                    if "field larger than field limit" in message:
                        message = f"a cell longer than {limits.max_field_chars} characters"
                    raise problems.fatal(f"row {row_number + 1}", message) from None
                except IngestRefused as exc:  # a line the reader cannot go past
                    raise problems.fatal(exc.problems[0].path, exc.problems[0].message) from None
                row_number += 1
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # a blank line
                rows += 1
                if rows > limits.max_rows:
                    raise problems.fatal(f"row {row_number}", f"more than {limits.max_rows} rows")
                values = _row(row, row_number, header, label_at, feature_at, kind, problems)
                if values is None:
                    if problems.full():
                        break
                    continue
                label, features = values
                if label not in classes and len(classes) >= limits.max_classes:
                    problems.add(
                        f"row {row_number}, column {header[label_at]!r}",
                        f"more than {limits.max_classes} classes",
                    )
                    break
                classes[label] += 1
                if not problems:
                    batch.add(label, features)
                    if batch.rows >= BATCH_ROWS:
                        writer.write_batch(batch.take(schema))
            if not problems and batch.rows:
                writer.write_batch(batch.take(schema))
    classes_check(classes, f"column {header[label_at]!r}", limits, problems)
    problems.refuse_if_any()
    return TableSummary(
        kind=kind,
        rows=rows,
        label_column=header[label_at],
        feature_columns=tuple(header[i] for i in feature_at),
        classes=dict(sorted(classes.items())),
        encoding=ENCODINGS[codec],
        delimiter=delimiter,
    )


def _header(header, kind, label_column, text_column, limits):
    problems = Problems()
    if len(header) > limits.max_columns:
        raise IngestRefused.one("row 1", f"{len(header)} columns; at most {limits.max_columns}")
    seen: dict[str, int] = {}
    for index, name in enumerate(header, start=1):
        if not name:
            problems.add(f"row 1, column {index}", "a column without a name")
        elif name in seen:
            problems.add(
                f"row 1, column {index}",
                f"the name {name!r} again (column {seen[name]} has it too); names must differ",
            )
        else:
            seen[name] = index
    problems.refuse_if_any()
    named = ", ".join(repr(name) for name in header)
    if label_column not in seen:
        raise IngestRefused.one("row 1", f"no label column {label_column!r}; the columns: {named}")
    label_at = seen[label_column] - 1
    if kind == "text":
        if text_column is None or text_column not in seen:
            raise IngestRefused.one(
                "row 1", f"no text column {text_column!r}; the columns: {named}"
            )
        if text_column == label_column:
            raise IngestRefused.one("row 1", "the text column and the label column are the same")
        return label_at, [seen[text_column] - 1]
    features = [i for i in range(len(header)) if i != label_at]
    if not features:
        raise IngestRefused.one("row 1", "no columns besides the label: nothing to learn from")
    return label_at, features


def _schema(kind: str, names: list[str]) -> pa.Schema:
    if kind == "text":
        return pa.schema([("text", pa.string()), ("label", pa.string())])
    return pa.schema([*((name, pa.float32()) for name in names), ("label", pa.string())])


def _row(row, number, header, label_at, feature_at, kind, problems):
    """(label, features) of a data row, or None with its problems added."""
    if len(row) != len(header):
        problems.add(f"row {number}", f"{len(row)} values; the header has {len(header)}")
        return None
    label = row[label_at].strip()
    ok = True
    if not label:
        problems.add(f"row {number}, column {header[label_at]!r}", "empty: every row needs a label")
        ok = False
    if kind == "text":
        sample = row[feature_at[0]]
        if not sample.strip():
            problems.add(f"row {number}, column {header[feature_at[0]]!r}", "empty text")
            return None
        return (label, [sample]) if ok else None
    numbers = []
    for index in feature_at:
        cell = row[index].strip()
        try:
            value = float(cell)
        except ValueError:
            problems.add(
                f"row {number}, column {header[index]!r}",
                f"{_shown(cell)} is not a number" if cell else "empty: a number is needed",
            )
            ok = False
            continue
        if not math.isfinite(value) or abs(value) > 3.4e38:
            problems.add(
                f"row {number}, column {header[index]!r}", f"{_shown(cell)} is not a finite number"
            )
            ok = False
            continue
        numbers.append(value)
    return (label, numbers) if ok else None


def _shown(cell: str) -> str:
    """A cell as an error message quotes it: its first 40 characters."""
    return repr(cell) if len(cell) <= 40 else repr(cell[:40])[:-1] + "…'"


class _Batch:
    def __init__(self, kind: str, features: int):
        self.kind = kind
        self.columns: list[list] = [[] for _ in range(features)]
        self.labels: list[str] = []

    @property
    def rows(self) -> int:
        return len(self.labels)

    def add(self, label: str, features: list) -> None:
        for column, value in zip(self.columns, features, strict=True):
            column.append(value)
        self.labels.append(label)

    def take(self, schema: pa.Schema) -> pa.RecordBatch:
        arrays = [
            pa.array(values, type=schema.field(i).type) for i, values in enumerate(self.columns)
        ]
        batch = pa.record_batch([*arrays, pa.array(self.labels, pa.string())], schema=schema)
        self.columns = [[] for _ in self.columns]
        self.labels = []
        return batch
