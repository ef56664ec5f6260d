"""CSV and TSV ingestion (runtime/ingest/tables.py): what is read back from the Arrow file is
exactly what the file held, in each encoding; every problem is named with its row and column;
hostile files are refused within bounded memory, and a refused file leaves nothing behind."""

import csv
import io
from pathlib import Path

import pyarrow as pa
import pytest

from apps.core.csv_export import csv_cell
from runtime.ingest import tables
from runtime.ingest.common import IngestLimits, IngestRefused
from runtime.ingest.tables import table_ingest

ROOT = Path(__file__).resolve().parents[2]


def _read(path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


def _refusal(data: bytes, tmp_path, **kwargs) -> list[tuple[str, str]]:
    out = tmp_path / "out.arrow"
    kwargs.setdefault("kind", "tabular")
    kwargs.setdefault("label_column", "label")
    with pytest.raises(IngestRefused) as refused:
        table_ingest(io.BytesIO(data), out, **kwargs)
    assert not out.exists()
    return [(p.path, p.message) for p in refused.value.problems]


SENTENCES = [
    ("我喜欢这部电影", "positive"),
    ("This film was wonderful", "positive"),
    ("太无聊了，浪费时间", "negative"),  # noqa: RUF001 (a Chinese comma, on purpose)
    ("Boring, a waste of time", "negative"),
    ('She said "fine, just fine"', "neutral"),
    ("还行吧,\n一般般", "neutral"),
]


def _text_csv() -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["sentence", "label"])
    writer.writerows(SENTENCES)
    return out.getvalue()


@pytest.mark.parametrize(
    ("encoded", "reported"),
    [
        (lambda text: text.encode("utf-8"), "UTF-8"),
        (lambda text: text.encode("utf-8-sig"), "UTF-8 with BOM"),
        (lambda text: text.encode("gb18030"), "GB18030 (GBK)"),
    ],
)
def test_a_text_csv_is_read_back_exactly_in_each_encoding(tmp_path, encoded, reported):
    out = tmp_path / "text.arrow"
    summary = table_ingest(
        io.BytesIO(encoded(_text_csv())),
        out,
        kind="text",
        label_column="label",
        text_column="sentence",
    )
    assert summary.as_dict() == {
        "kind": "text",
        "rows": 6,
        "label_column": "label",
        "feature_columns": ["sentence"],
        "classes": {"negative": 2, "neutral": 2, "positive": 2},
        "encoding": reported,
        "delimiter": ",",
    }
    table = _read(out)
    assert table.column_names == ["text", "label"]
    assert (
        list(zip(table["text"].to_pylist(), table["label"].to_pylist(), strict=True)) == SENTENCES
    )


def test_a_tsv_of_numbers_is_read_back_as_float32(tmp_path):
    rows = [(0.5, -1.25, "a"), (3.0, 1e-3, "b"), (-2.0, 7.0, "a"), (1.0, 0.0, "b")]
    data = "x\ty\tlabel\n" + "".join(f"{x}\t{y}\t{label}\n" for x, y, label in rows)
    out = tmp_path / "t.arrow"
    summary = table_ingest(io.BytesIO(data.encode()), out, kind="tabular", label_column="label")
    assert (summary.delimiter, summary.feature_columns, summary.rows) == ("\t", ("x", "y"), 4)
    table = _read(out)
    assert table.schema.field("x").type == pa.float32()
    assert table["x"].to_pylist() == [0.5, 3.0, -2.0, 1.0]
    assert table["y"].to_pylist() == pytest.approx([-1.25, 1e-3, 7.0, 0.0], rel=1e-7)
    assert table["label"].to_pylist() == ["a", "b", "a", "b"]


READERS = ["whole", "streamed", "exact"]


def use_reader(monkeypatch, reader: str) -> None:
    """A regular file goes through pyarrow's reader, parsed whole ("whole", a file of at most
    WHOLE_FILE_BYTES) or in a stream ("streamed", a larger one); "exact": through the reader
    that names problems, which an irregular file gets."""
    if reader == "streamed":
        monkeypatch.setattr(tables, "WHOLE_FILE_BYTES", 0)
    elif reader == "exact":
        monkeypatch.setattr(tables, "_fast", lambda *args: None)


@pytest.mark.parametrize("reader", READERS)
def test_many_rows_are_read_back_in_order_by_each_reader(tmp_path, monkeypatch, reader):
    """The same file written, whichever reader reads it."""
    use_reader(monkeypatch, reader)
    lines = ["a,b,label"] + [f"{i},{-i / 4},{'odd' if i % 2 else 'even'}" for i in range(20_000)]
    out = tmp_path / "big.arrow"
    summary = table_ingest(
        io.BytesIO("\n".join(lines).encode()), out, kind="tabular", label_column="label"
    )
    assert summary.classes == {"even": 10_000, "odd": 10_000}
    table = _read(out)
    assert table.schema == pa.schema(
        [("a", pa.float32()), ("b", pa.float32()), ("label", pa.string())]
    )
    assert table["a"].to_pylist() == [float(i) for i in range(20_000)]
    assert table["b"].to_pylist() == [-i / 4 for i in range(20_000)]
    assert table["label"].to_pylist() == ["odd" if i % 2 else "even" for i in range(20_000)]


def test_every_problem_is_named_with_its_row_and_column(tmp_path):
    data = (
        b"x,y,label\n"
        b"1,2,a\n"
        b"1,2\n"  # row 3: ragged
        b"1,oops,b\n"  # row 4: not a number
        b"1,2,\n"  # row 5: no label
        b"nan,2,b\n"  # row 6: not finite
        b"1,,a\n"  # row 7: empty number
    )
    assert _refusal(data, tmp_path) == [
        ("row 3", "2 values; the header has 3"),
        ("row 4, column 'y'", "'oops' is not a number"),
        ("row 5, column 'label'", "empty: every row needs a label"),
        ("row 6, column 'x'", "'nan' is not a finite number"),
        ("row 7, column 'y'", "empty: a number is needed"),
    ]


@pytest.mark.parametrize(
    ("data", "kwargs", "problems"),
    [
        (
            b"x,x,label\n1,2,a\n",
            {},
            [("row 1, column 2", "the name 'x' again (column 1 has it too); names must differ")],
        ),
        (b"x,,label\n1,2,a\n", {}, [("row 1, column 2", "a column without a name")]),
        (
            b"x,y,class\n1,2,a\n",
            {},
            [("row 1", "no label column 'label'; the columns: 'x', 'y', 'class'")],
        ),
        (
            b"text,label\nhello,a\n",
            {"kind": "text", "text_column": "sentence"},
            [("row 1", "no text column 'sentence'; the columns: 'text', 'label'")],
        ),
        (
            b"x,label\n1,a\n2,a\n3,a\n",
            {},
            [("column 'label'", "one class only ('a'): a classifier needs two or more")],
        ),
        (
            b"x,label\n1,a\n2,a\n3,b\n4,c\n",
            {},
            [("column 'label'", "classes with fewer than 2 examples: 'b' (1), 'c' (1)")],
        ),
        (b"x,label\n", {}, [("file", "no examples in it")]),
        (b"", {}, [("file", "it is empty")]),
        (b"label\na\nb\n", {}, [("row 1", "no columns besides the label: nothing to learn from")]),
    ],
)
def test_files_that_cannot_be_a_dataset_say_why(tmp_path, data, kwargs, problems):
    assert _refusal(data, tmp_path, **kwargs) == problems


def test_bytes_in_no_known_encoding_are_named(tmp_path):
    assert _refusal(b"x,label\n1,\xff\xfe\xfa\n", tmp_path) == [
        (
            "byte 10",
            "the bytes ff fe fa 0a are neither UTF-8 nor GB18030 (GBK); save the file as UTF-8",
        )
    ]
    # UTF-8 for the first 64 KiB, then bytes that are not: the line is named.
    head = "x,label\n" + "".join(f"{i},{'a' if i % 2 else 'b'}\n" for i in range(10_000))
    data = head.encode() + b"1,\xc3\x28\n"
    line = head.count("\n") + 1
    assert _refusal(data, tmp_path) == [
        (
            f"line {line}",
            "bytes that are not UTF-8 (c3 28 0a); the file mixes encodings: save it as UTF-8",
        )
    ]


def test_a_nul_byte_and_over_long_lines_and_cells_are_refused(tmp_path):
    assert _refusal(b"x,label\n1,a\x00\n", tmp_path) == [
        ("line 2", "a NUL byte: this is not a text file (CSV or TSV)")
    ]
    limits = IngestLimits(max_line_bytes=100, max_field_chars=50)
    assert _refusal(b"x,label\n" + b"1" * 500 + b",a\n", tmp_path, limits=limits) == [
        ("line 2", "longer than 100 bytes (one line of a CSV)")
    ]
    cell = b'"' + b"word\n" * 20 + b'"'  # short lines, one long quoted cell
    assert _refusal(
        b"text,label\n" + cell + b",a\n", tmp_path, kind="text", text_column="text", limits=limits
    ) == [("row 2", "a cell longer than 50 characters")]
    assert _refusal(
        b"x,label\n1,a\n2,b\n3,a\n4,b\n", tmp_path, limits=IngestLimits(max_rows=3)
    ) == [("row 5", "more than 3 rows")]


def test_formula_cells_are_kept_as_text_and_neutralised_on_export(tmp_path):
    cells = ['=HYPERLINK("http://evil.example","click")', "+1 is fine", "plain", "-x"]
    written = io.StringIO()
    csv.writer(written).writerows(
        [["text", "label"], *zip(cells, ["a", "b", "a", "b"], strict=True)]
    )
    out = tmp_path / "f.arrow"
    table_ingest(
        io.BytesIO(written.getvalue().encode()),
        out,
        kind="text",
        label_column="label",
        text_column="text",
    )
    texts = _read(out)["text"].to_pylist()
    assert texts == cells
    assert [csv_cell(t) for t in texts] == [
        '\'=HYPERLINK("http://evil.example","click")',
        "'+1 is fine",
        "plain",
        "'-x",
    ]


def test_a_problem_the_reader_cannot_go_past_keeps_those_found_before_it(tmp_path):
    data = b"x,label\n1,a\n2,\n3,b\n4,a\n5,b\n"
    assert _refusal(data, tmp_path, limits=IngestLimits(max_rows=4)) == [
        ("row 3, column 'label'", "empty: every row needs a label"),
        ("row 6", "more than 4 rows"),
    ]
    assert _refusal(b"x,label\n1,\n2,b\x00\n", tmp_path) == [
        ("row 2, column 'label'", "empty: every row needs a label"),
        ("line 3", "a NUL byte: this is not a text file (CSV or TSV)"),
    ]


def test_a_long_cell_is_quoted_short_in_its_error(tmp_path):
    assert _refusal(b"x,label\n" + b"9" * 500 + b",a\n1,b\n" + b"y" * 300 + b",a\n", tmp_path) == [
        ("row 2, column 'x'", "'" + "9" * 40 + "…' is not a finite number"),
        ("row 4, column 'x'", "'" + "y" * 40 + "…' is not a number"),
    ]
