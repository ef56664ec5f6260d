"""Ingesters report how far they have read (the upload task shows it to the teacher): fractions
that rise and end at 1.0, through each reader."""

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from runtime.ingest.arrays import arrays_ingest
from runtime.ingest.images import PARALLEL_ENTRIES, images_ingest
from runtime.ingest.tables import table_ingest
from tests.runtime.test_ingest_tables import READERS, use_reader


def _rising_to_one(seen: list[float]) -> bool:
    return len(seen) >= 2 and seen == sorted(seen) and seen[-1] == 1.0 and 0 < seen[0] < 1


@pytest.mark.parametrize("reader", READERS)
def test_a_csv_reports_its_progress(tmp_path, monkeypatch, reader):
    use_reader(monkeypatch, reader)
    # pyarrow reads 4 MiB blocks: 13 MB make several; the exact reader reads a line at a time.
    rows = 150_000 if reader == "exact" else 1_500_000
    data = "x,label\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(rows))
    seen: list[float] = []
    table_ingest(
        io.BytesIO(data.encode()),
        tmp_path / "t.arrow",
        kind="tabular",
        label_column="label",
        on_progress=seen.append,
    )
    assert _rising_to_one(seen), seen[:5]


def _png(seed: int) -> bytes:
    out = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("processes", [1, 2])
def test_an_image_archive_reports_its_progress(tmp_path, processes):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for i in range(PARALLEL_ENTRIES):
            out.writestr(f"c{i % 2}/{i}.png", _png(i % 20))
    seen: list[float] = []
    with open(archive, "rb") as source:
        images_ingest(source, tmp_path / "i.arrow", processes=processes, on_progress=seen.append)
    assert _rising_to_one(seen), seen[:5]


def test_arrays_report_their_progress(tmp_path):
    x, y = io.BytesIO(), io.BytesIO()
    np.save(x, np.zeros((400_000, 8), np.float32))  # two chunks of rows
    np.save(y, np.arange(400_000) % 2)
    seen: list[float] = []
    arrays_ingest(
        io.BytesIO(x.getvalue()),
        tmp_path / "a.arrow",
        y_source=io.BytesIO(y.getvalue()),
        on_progress=seen.append,
    )
    assert _rising_to_one(seen), seen[:5]
