"""Ingestion rate and peak memory: Aula's ingesters against reading everything, then converting.

Two files made here: a zip of 50,000 PNG images of 32 x 32 RGB (10 classes, one folder each;
stored, as PNGs are already compressed) and a CSV of 1,000,000 rows (8 number columns and a
label). Each is ingested four ways, each in a fresh process whose peak RSS is reported (imports
included): the larger of its own peak (VmHWM) and the sum over it and its worker processes,
sampled every 20 ms:

- **Aula, images**: `runtime.ingest.images.images_ingest` (streaming, checked, Arrow file), in
  one process as the platform runs it (`DATASET_INGEST_PROCESSES`, 1; `--processes N` for more);
- **baseline, images**: every member read and decoded with PIL into a list, then stacked with
  NumPy and written as the same Arrow columns;
- **Aula, CSV**: `runtime.ingest.tables.table_ingest(kind="tabular")`;
- **baseline, CSV**: `pandas.read_csv` of the whole file, then float32 columns written as Arrow.

Each way runs `--repeat` times (3), alternating with the other; the median time is kept, and
the largest peak. Targets (issue 15): Aula at least 2x the baseline's rate, and peak RSS under
500 MB, for both.
Run: `.venv/bin/python benchmarks/ingest.py` (`--images N --rows N` for smaller files).
"""

import argparse
import contextlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
CLASSES = 10


def _images_zip(path: Path, count: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:32]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for index in range(count):
            label = index % CLASSES
            base = (np.sin(xx * (label + 1) / 6) + np.cos(yy * (label + 2) / 7)) * 60 + 128
            pixels = base[..., None] + rng.normal(0, 12, size=(32, 32, 3))
            image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
            out = io.BytesIO()
            image.save(out, format="PNG")
            archive.writestr(f"class{label}/{index}.png", out.getvalue())


def _csv(path: Path, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.csv

    rng = np.random.default_rng(1)
    columns = {f"f{i}": rng.normal(size=rows).round(5) for i in range(8)}
    columns["label"] = np.array([f"class{i % CLASSES}" for i in range(rows)])
    pyarrow.csv.write_csv(pa.table(columns), str(path))


# Each child: its imports (not timed), "#---", then the work that is timed. pyarrow imports
# pandas, when it is installed (the baseline's), at its first pa.array(): an import too, done
# before the clock starts (a worker pays it once; production has no pandas).
CHILD = {
    "aula-images": """
import pyarrow
from runtime.ingest.images import images_ingest
pyarrow.array([0])
#---
with open(SOURCE, "rb") as f:
    summary = images_ingest(f, OUT, processes=PROCESSES)
ITEMS = summary.images
""",
    "baseline-images": """
import io, zipfile
import numpy as np, pyarrow as pa
from PIL import Image
#---
images, labels = [], []
with zipfile.ZipFile(SOURCE) as archive:
    for info in archive.infolist():
        if info.is_dir():
            continue
        images.append(np.asarray(Image.open(io.BytesIO(archive.read(info))).convert("RGB")))
        labels.append(info.filename.split("/")[0])
stacked = np.stack(images)
row = stacked[0].size
buffers = [None, pa.py_buffer(stacked.tobytes())]
column = pa.FixedSizeBinaryArray.from_buffers(pa.binary(row), len(images), buffers)
table = pa.table({"image": column, "label": pa.array(labels, pa.string())})
with pa.OSFile(OUT, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
    writer.write_table(table)
ITEMS = len(images)
""",
    "aula-csv": """
import pyarrow
from runtime.ingest.tables import table_ingest
pyarrow.array([0])
#---
with open(SOURCE, "rb") as f:
    summary = table_ingest(f, OUT, kind="tabular", label_column="label")
ITEMS = summary.rows
""",
    "baseline-csv": """
import pandas as pd, pyarrow as pa
#---
frame = pd.read_csv(SOURCE)
features = frame.drop(columns=["label"]).astype("float32")
features["label"] = frame["label"].astype(str)
table = pa.Table.from_pandas(features, preserve_index=False)
with pa.OSFile(OUT, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
    writer.write_table(table)
ITEMS = len(frame)
""",
}

WRAPPER = """
import json, sys, time
sys.path.insert(0, {root!r})
SOURCE, OUT, PROCESSES = {source!r}, {out!r}, {processes!r}
{imports}
started = time.perf_counter()
{body}
seconds = time.perf_counter() - started
# VmHWM: this process's peak resident memory since its exec (ru_maxrss would carry the
# benchmark's own from before the exec).
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
print(json.dumps({{"items": ITEMS, "seconds": seconds, "peak_mb": peak}}))
"""


def _tree_rss(process: psutil.Process) -> int:
    """The resident bytes of `process` and every process under it, now."""
    total = 0
    for each in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += each.memory_info().rss
    return total


def _run(name: str, source: Path, out: Path, processes: int) -> dict:
    imports, body = CHILD[name].split("#---")
    script = WRAPPER.format(
        root=str(ROOT),
        source=str(source),
        out=str(out),
        processes=processes,
        imports=imports,
        body=body,
    )
    child = subprocess.Popen(  # noqa: S603 (this file's own scripts)
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    watched, peak_tree = psutil.Process(child.pid), 0
    while child.poll() is None:  # every 20 ms: the child and its workers together
        peak_tree = max(peak_tree, _tree_rss(watched))
        time.sleep(0.02)
    stdout, stderr = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"{name} failed:\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_mb"] = max(result["peak_mb"], peak_tree / 2**20)
    result["bytes_out"] = out.stat().st_size
    out.unlink()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each way (alternating): the median is kept"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="processes for Aula's image ingester (1: as the platform runs it)",
    )
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} at start; Python {platform.python_version()}; "
        f"Aula's image ingester in {args.processes} process(es)"
    )
    with tempfile.TemporaryDirectory(prefix="aula-ingest-") as folder:
        folder = Path(folder)
        images, table = folder / "images.zip", folder / "table.csv"
        started = time.perf_counter()
        _images_zip(images, args.images)
        _csv(table, args.rows)
        print(
            f"made: {images.stat().st_size / 1e6:.1f} MB zip of {args.images} PNGs, "
            f"{table.stat().st_size / 1e6:.1f} MB CSV of {args.rows} rows "
            f"({time.perf_counter() - started:.1f} s)"
        )
        results = {}
        for what, source, unit in (("images", images, "images"), ("csv", table, "rows")):
            runs = {"baseline": [], "aula": []}
            for _ in range(args.repeat):  # alternating, so that both see the same machine
                for who in runs:
                    out = folder / "out.arrow"
                    runs[who].append(_run(f"{who}-{what}", source, out, args.processes))
            for who, done in runs.items():
                result = sorted(done, key=lambda run: run["seconds"])[len(done) // 2]
                result["peak_mb"] = max(run["peak_mb"] for run in done)
                results[(who, what)] = result
                rate = result["items"] / result["seconds"]
                print(
                    f"{who:8} {what:6}  {result['items']:8d} {unit:6}  {result['seconds']:7.2f} s  "
                    f"{rate:10.0f} {unit}/s  peak RSS {result['peak_mb']:6.0f} MB  "
                    f"out {result['bytes_out'] / 1e6:6.1f} MB",
                    flush=True,
                )
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    for what in ("images", "csv"):
        aula, base = results[("aula", what)], results[("baseline", what)]
        ratio = (aula["items"] / aula["seconds"]) / (base["items"] / base["seconds"])
        rate_ok = "met" if ratio >= 2 else "NOT met"
        rss_ok = "met" if aula["peak_mb"] < 500 else "NOT met"
        print(
            f"target: {what}: rate {ratio:.2f}x the baseline (>= 2x: {rate_ok}); "
            f"peak RSS {aula['peak_mb']:.0f} MB (< 500 MB: {rss_ok})"
        )


if __name__ == "__main__":
    main()
