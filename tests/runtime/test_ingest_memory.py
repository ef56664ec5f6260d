"""Hostile uploads are refused in bounded memory: each is made on disk by a fresh process, which
then ingests it and reports how much its peak resident memory grew during the ingest. VmHWM,
not ru_maxrss: a child's ru_maxrss starts at its parent's peak (it survives exec), so growth
below the test process's own size would not show."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

MAKERS = {
    "a-64-mb-line": """
        with open(PATH, "wb") as f:
            f.write(b"x,label\\n")
            for _ in range(64):
                f.write(b"1" * (1024 * 1024))
            f.write(b",a\\n")
        INGEST = "tables"
    """,
    "zip-bomb": """
        import zipfile
        with zipfile.ZipFile(PATH, "w", zipfile.ZIP_DEFLATED) as archive:
            with archive.open("cat/zeros.png", "w", force_zip64=True) as member:
                for _ in range(1024):  # 1 GiB of zeros, packed to about 1 MB
                    member.write(b"\\x00" * (1024 * 1024))
        INGEST = "images"
    """,
    "100000-tiny-files": """
        import zipfile
        with zipfile.ZipFile(PATH, "w", zipfile.ZIP_STORED) as archive:
            for i in range(100_000):
                archive.writestr(f"c{i % 2}/{i}.png", b"x")
        INGEST = "images"
    """,
    "png-bomb": """
        import struct, zipfile, zlib
        def chunk(kind, data):
            crc = struct.pack(">I", zlib.crc32(kind + data))
            return struct.pack(">I", len(data)) + kind + data + crc
        header = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
        png = b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", header)
        png += chunk(b"IDAT", zlib.compress(b"\\x00" * (1 << 24))) + chunk(b"IEND", b"")
        with zipfile.ZipFile(PATH, "w") as archive:
            archive.writestr("a/bomb.png", png)
            archive.writestr("b/bomb.png", png)
        INGEST = "images"
    """,
    "npy-header-10-to-the-12": """
        import io, zipfile
        import numpy as np
        from numpy.lib import format as npy_format
        x = io.BytesIO()
        header = {"descr": "<f4", "fortran_order": False, "shape": (10**12,)}
        npy_format.write_array_header_2_0(x, header)
        y = io.BytesIO()
        np.save(y, np.array([0, 1]))
        with zipfile.ZipFile(PATH, "w") as archive:
            archive.writestr("x.npy", x.getvalue())
            archive.writestr("y.npy", y.getvalue())
        INGEST = "arrays"
    """,
}

SCRIPT = """
import json, sys
sys.path.insert(0, {root!r})
from runtime.ingest.arrays import arrays_ingest
from runtime.ingest.common import IngestRefused
from runtime.ingest.images import images_ingest
from runtime.ingest.tables import table_ingest
PATH, OUT = {path!r}, {out!r}
{maker}
def peak_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
before = peak_kib()
try:
    with open(PATH, "rb") as source:
        if INGEST == "tables":
            table_ingest(source, OUT, kind="tabular", label_column="label")
        else:
            (images_ingest if INGEST == "images" else arrays_ingest)(source, OUT)
    refusal = None
except IngestRefused as exc:
    refusal = [exc.problems[-1].path, exc.problems[-1].message]  # what ended the reading
print(json.dumps({{"refusal": refusal, "added_kib": peak_kib() - before}}))
"""

EXPECTED = {
    "a-64-mb-line": ["line 2", "longer than 1048576 bytes (one line of a CSV)"],
    "zip-bomb": ["cat/zeros.png", f"{1 << 30} bytes unpacked; at most {16 * 1024 * 1024}"],
    "100000-tiny-files": ["archive", "more than 80000 entries"],
    "png-bomb": ["b/bomb.png", "its header declares more than 16777216 pixels per image"],
    "npy-header-10-to-the-12": [
        "x.npy",
        "its header declares shape (1000000000000,) (1000000000000 elements of float32); "
        "at most 4294967296 bytes",
    ],
}


@pytest.mark.parametrize("hostile", list(MAKERS))
def test_a_hostile_upload_is_refused_in_bounded_memory(tmp_path, hostile):
    script = SCRIPT.format(
        root=str(ROOT),
        path=str(tmp_path / "upload"),
        out=str(tmp_path / "out.arrow"),
        maker=textwrap.dedent(MAKERS[hostile]),
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["refusal"] == EXPECTED[hostile]
    # 100,000 entries' names and headers are what the zip's directory itself holds.
    assert result["added_kib"] < 96 * 1024, result
    assert not (tmp_path / "out.arrow").exists()
