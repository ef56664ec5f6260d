"""Image archives as datasets: a zip or tar (plain, gzip, bzip2 or xz) with one folder per
class of PNG, JPEG or WebP images, written as one Arrow IPC file of uint8 pixels.

One sequential pass over the archive, holding one member at a time (at most
`max_member_bytes`) and one batch of pixels: every entry is checked (its path stays inside the
archive, it is a regular file, not an archive itself, not packed suspiciously tightly, an image
whose header gives a size within `max_pixels`) before its pixels are decoded, converted (grey
while every image so far is grey, else RGB: a colour image after grey ones starts the pass
again in RGB), resized when asked, and written. The first image decides the layout (class
folders at the root, or under one folder; its size, unless `resize_to` gives one) and every
other is checked against it. Nothing of the archive is ever extracted to disk; a refused
archive leaves no output behind.

The file: columns `image` (fixed_size_binary, height x width x channels bytes, row-major HWC)
and `label` (string); the schema's metadata holds `height`, `width` and `channels`.
"""

import contextlib
import io
import itertools
import multiprocessing
import os
import stat
import struct
import tarfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
import pyarrow as pa
from PIL import Image

from runtime.ingest.common import (
    IngestLimits,
    IngestRefused,
    Problems,
    ProgressReader,
    classes_check,
)

BATCH_IMAGES = 1024
FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP"}
EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
ARCHIVE_EXTENSIONS = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".npz")
ARCHIVE_MAGIC = (b"PK\x03\x04", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"7z\xbc\xaf", b"Rar!")
IGNORED = ("__MACOSX/",)  # what archivers add; skipped and counted
DEFAULT_LIMITS = IngestLimits()


@dataclass(frozen=True)
class ImageSummary:
    images: int
    height: int
    width: int
    channels: int
    classes: dict[str, int] = field(default_factory=dict)
    resized: int = 0  # images of another size, resized to height x width
    skipped: tuple[str, ...] = ()  # entries skipped: archivers' files, hidden files

    def as_dict(self) -> dict:
        return {
            "images": self.images,
            "height": self.height,
            "width": self.width,
            "channels": self.channels,
            "classes": self.classes,
            "resized": self.resized,
            "skipped": list(self.skipped),
        }


@dataclass
class _Member:
    name: str
    size: int  # declared, unpacked
    packed: int | None  # zip only
    kind: str  # "file", "dir", "link", "other"
    read: object  # () -> bytes, at most the limit + 1


def images_ingest(
    source: BinaryIO,
    out_path: Path,
    *,
    resize_to: tuple[int, int] | None = None,
    limits: IngestLimits = DEFAULT_LIMITS,
    processes: int | None = None,
    on_progress=None,
) -> ImageSummary:
    """Reads the archive `source` (a seekable binary file) into the Arrow file `out_path`;
    IngestRefused, with nothing at `out_path`, when it cannot be a dataset. `resize_to`:
    (height, width) for every image; without it, images of different sizes are refused.
    `processes`: for a zip file on disk of at least PARALLEL_ENTRIES entries, how many scan it
    at once (default: the CPUs, at most 4); 1 for one pass in this process. `on_progress`:
    called with the fraction of the archive read, rising (by slice, when in processes)."""
    report = on_progress or (lambda fraction: None)
    try:
        return _ingest(source, out_path, resize_to, limits, processes or _processes(), report)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(out_path)
        raise


GREY_MODES = ("L", "1", "LA", "I;16", "I")
PARALLEL_ENTRIES = 4000  # below this, starting processes costs more than it saves


def _processes() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


class _GreyThenColour(Exception):
    """A colour image after grey ones: the pass starts again, storing RGB."""


def _ingest(source, out_path, resize_to, limits, processes, report) -> ImageSummary:
    path = getattr(source, "name", None)
    magic = source.read(4)
    source.seek(0)
    if processes > 1 and magic.startswith(b"PK") and isinstance(path, str) and os.path.isfile(path):
        return _parallel(path, out_path, resize_to, limits, processes, report)
    reader = ProgressReader(source, report)
    for colour in (None, True):
        try:
            scan = _scan(_members(reader, limits), out_path, _Layout(resize_to, colour), limits)
            summary = _finish([scan], limits)
            reader.done()
            return summary
        except _GreyThenColour:
            source.seek(0)
    raise AssertionError("unreachable: a colour pass never meets colour after grey")


@dataclass
class _Layout:
    """What the first image decides for all: the folder holding the class folders ("" for
    none), the size (w, h; unless resize_to gives it), grey or colour (unless a pass has shown
    colour)."""

    resize_to: tuple[int, int] | None
    colour: bool | None
    top: str | None = None
    size: tuple[int, int] | None = None

    def __post_init__(self):
        if self.resize_to is not None:
            self.size = (self.resize_to[1], self.resize_to[0])

    def label(self, parts: list[str]) -> str | None:
        if self.top is None:
            self.top = parts[0] if len(parts) == 3 else ""
        if self.top:
            return parts[1] if len(parts) == 3 and parts[0] == self.top else None
        return parts[0] if len(parts) == 2 else None


@dataclass
class _Scan:
    """What one pass over (a slice of) the archive found, and wrote if it found no problem."""

    layout: _Layout
    problems: Problems = field(default_factory=Problems)
    classes: Counter = field(default_factory=Counter)
    sizes: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    entries: int = 0
    unpacked: int = 0
    resized: int = 0
    written: int = 0


def _scan(members, out_path, layout: _Layout, limits) -> _Scan:
    """One pass: every entry checked, every image decoded and written as it comes; what the
    first image decides (the layout) is checked against every other."""
    scan = _Scan(layout)
    problems = scan.problems
    pixels: list[bytes] = []
    labels: list[str] = []
    writer = sink = schema = None
    try:
        for member in members:
            scan.entries += 1
            if scan.entries > limits.max_files:
                raise problems.fatal("archive", f"more than {limits.max_files} entries")
            image = _entry(member, limits, problems, scan.skipped)
            if image is None:
                continue
            scan.unpacked += member.size
            if scan.unpacked > limits.max_unpacked_bytes:
                limit = limits.max_unpacked_bytes
                raise problems.fatal(member.name, f"the images unpack to more than {limit} bytes")
            label = layout.label(member.name.split("/"))
            if label is None:
                problems.add(
                    member.name, "not in a class folder: the archive has one folder per class"
                )
                continue
            scan.classes[label] += 1
            scan.sizes[image.size] += 1
            scan.examples.setdefault(image.size, member.name)
            grey = image.grey
            if layout.colour is None:
                layout.colour = not grey
            elif not layout.colour and not grey:
                raise _GreyThenColour
            if layout.size is None:
                layout.size = image.size
            if problems or (image.size != layout.size and layout.resize_to is None):
                continue  # a refusal is coming: the rest is only checked
            if out_path is None:
                continue  # checking only (the layout of a parallel scan)
            try:
                data = image.pixels(layout.size, layout.colour)
            except (OSError, ValueError, SyntaxError) as exc:
                problems.add(member.name, f"a corrupt image: {exc}")
                continue
            scan.resized += image.size != layout.size
            if writer is None:
                schema = _schema(*layout.size, 3 if layout.colour else 1)
                sink = pa.OSFile(str(out_path), "wb")
                writer = pa.ipc.new_file(sink, schema)
            pixels.append(data)
            labels.append(label)
            scan.written += 1
            if len(labels) >= BATCH_IMAGES:
                writer.write_batch(_batch(pixels, labels, schema))
                pixels, labels = [], []
            if problems.full():
                break
        if labels and not problems:
            writer.write_batch(_batch(pixels, labels, schema))
    finally:
        if writer is not None:
            writer.close()
            sink.close()
    return scan


def _finish(scans: list[_Scan], limits) -> ImageSummary:
    """The summary of the scans (of consecutive slices, in order), or their refusal."""
    problems = Problems()
    classes, sizes, examples = Counter(), Counter(), {}
    for scan in scans:
        for problem in scan.problems.found:
            problems.add(problem.path, problem.message)
        problems.more += scan.problems.more
        classes.update(scan.classes)
        sizes.update(scan.sizes)
        for size, name in scan.examples.items():
            examples.setdefault(size, name)
    if sum(scan.unpacked for scan in scans) > limits.max_unpacked_bytes:
        raise IngestRefused.one(
            "archive", f"the images unpack to more than {limits.max_unpacked_bytes} bytes"
        )
    layout = scans[0].layout
    if len(sizes) > 1 and layout.resize_to is None:
        listed = ", ".join(
            f"{w} x {h} ({n} {'image' if n == 1 else 'images'}, e.g. {examples[(w, h)]})"
            for (w, h), n in sizes.most_common(5)
        )
        problems.add("archive", f"images of different sizes: {listed}; choose a size for all")
    classes_check(classes, "archive", limits, problems)
    problems.refuse_if_any()
    width, height = layout.size
    return ImageSummary(
        images=sum(classes.values()),
        height=height,
        width=width,
        channels=3 if layout.colour else 1,
        classes=dict(sorted(classes.items())),
        resized=sum(scan.resized for scan in scans),
        skipped=tuple(name for scan in scans for name in scan.skipped),
    )


# --- several processes, for a zip on disk --------------------------------------------------------


def _parallel(path: str, out_path, resize_to, limits, processes: int, report) -> ImageSummary:
    """Consecutive slices of the zip's entries scanned by `processes` processes at once (each
    opens the zip itself), each into a part file, with the layout the first image decides;
    then the parts copied, in order, into `out_path`. The same answers as one pass."""
    with zipfile.ZipFile(path) as archive:
        count = len(archive.infolist())
        if count > limits.max_files:
            raise IngestRefused.one("archive", f"more than {limits.max_files} entries")
    if count < PARALLEL_ENTRIES:
        with open(path, "rb") as source:
            return _ingest(source, out_path, resize_to, limits, 1, report)
    layout = _Layout(resize_to, None)
    with open(path, "rb") as source:
        first = _scan(_first_image(source, limits), None, layout, limits)
    if first.problems or layout.size is None:  # no images, or the first is refused: one pass
        with open(path, "rb") as source:
            return _ingest(source, out_path, resize_to, limits, 1, report)
    bounds = [count * i // processes for i in range(processes + 1)]
    parts = [f"{out_path}.part{i}" for i in range(processes)]
    context = multiprocessing.get_context("spawn")
    try:
        for colour in (layout.colour, True):
            try:
                with ProcessPoolExecutor(processes, mp_context=context) as pool:
                    jobs = [
                        pool.submit(
                            _slice_scan,
                            path,
                            part,
                            _Layout(resize_to, colour, layout.top, layout.size),
                            limits,
                            start,
                            stop,
                        )
                        for part, start, stop in zip(parts, bounds, bounds[1:], strict=False)
                    ]
                    scans = []
                    for job in jobs:  # in order: the parts are joined in order
                        scans.append(job.result())
                        report(len(scans) / (processes + 1))
                break
            except _GreyThenColour:
                continue
        summary = _finish(scans, limits)
        schema = _schema(summary.width, summary.height, summary.channels)
        with pa.OSFile(str(out_path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            for part, scan in zip(parts, scans, strict=True):
                if scan.written:
                    with pa.memory_map(part) as mapped:
                        reader = pa.ipc.open_file(mapped)
                        for index in range(reader.num_record_batches):
                            writer.write_batch(reader.get_batch(index))
        report(1.0)
        return summary
    finally:
        for part in parts:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)


def _first_image(source, limits):
    """The archive's entries up to its first image (for the layout)."""
    for member in _members(source, limits):
        yield member
        if member.kind == "file" and member.name.lower().endswith(EXTENSIONS):
            return


def _slice_scan(path, part, layout, limits, start, stop) -> _Scan:
    with open(path, "rb") as source:
        members = itertools.islice(_members(source, limits), start, stop)
        return _scan(members, part, layout, limits)


def _schema(width: int, height: int, channels: int) -> pa.Schema:
    return pa.schema(
        [("image", pa.binary(height * width * channels)), ("label", pa.string())],
        metadata={"height": str(height), "width": str(width), "channels": str(channels)},
    )


def _batch(pixels, labels, schema) -> pa.RecordBatch:
    images = pa.FixedSizeBinaryArray.from_buffers(
        schema.field("image").type, len(pixels), [None, pa.py_buffer(b"".join(pixels))]
    )
    return pa.record_batch([images, pa.array(labels, pa.string())], schema=schema)


def _entry(member, limits, problems, skipped) -> "_Opened | None":
    """The entry's image, opened (its header read, no pixels decoded) when it passes every
    check; None, with its problem added (or it skipped), otherwise."""
    name = member.name
    problem = _path_problem(name)
    if problem:
        problems.add(name, problem)
        return None
    if member.kind == "dir":
        return None
    if member.kind == "link":
        problems.add(name, "a link: only regular files may be in the archive")
        return None
    if member.kind != "file":
        problems.add(name, "not a regular file (a device, a pipe?)")
        return None
    base = name.rsplit("/", 1)[-1]
    if name.startswith(IGNORED) or base.startswith("."):
        skipped.append(name)
        return None
    lowered = name.lower()
    if lowered.endswith(ARCHIVE_EXTENSIONS):
        problems.add(name, "an archive inside the archive: put its images in the folders")
        return None
    if member.size > limits.max_member_bytes:
        problems.add(name, f"{member.size} bytes unpacked; at most {limits.max_member_bytes}")
        return None
    if (
        member.packed is not None
        and member.size > 1024 * 1024
        and member.size > limits.max_ratio * max(member.packed, 1)
    ):
        ratio = member.size // max(member.packed, 1)
        problems.add(name, f"packed {ratio}:1, more than {limits.max_ratio}:1 (a zip bomb?)")
        return None
    if not lowered.endswith(EXTENSIONS):
        problems.add(name, "not a PNG, JPEG or WebP file")
        return None
    data = member.read()
    if len(data) > limits.max_member_bytes:
        problems.add(name, f"more than {limits.max_member_bytes} bytes unpacked")
        return None
    if data.startswith(ARCHIVE_MAGIC):
        problems.add(name, "an archive inside the archive: put its images in the folders")
        return None
    image = _header(data, limits)
    if isinstance(image, str):
        problems.add(name, image)
        return None
    return image


class _Opened:
    """An image whose header has been read and checked: its size (width, height), whether it
    is grey, and its pixels, decoded on demand."""

    size: tuple[int, int]
    grey: bool

    def pixels(self, size: tuple[int, int], colour: bool) -> bytes:
        """The pixels at `size` (resized when it is another), RGB or grey, row-major HWC.
        OSError, ValueError or SyntaxError when they cannot be decoded."""
        raise NotImplementedError


class _Pillow(_Opened):
    """Any image Pillow opens: PNG of every kind, JPEG, WebP."""

    def __init__(self, image: Image.Image):
        self.image, self.size, self.grey = image, image.size, image.mode in GREY_MODES

    def pixels(self, size, colour) -> bytes:
        image = self.image
        if image.size != size:
            image = image.resize(size, Image.Resampling.BILINEAR)
        mode = "RGB" if colour else "L"
        return (image if image.mode == mode else image.convert(mode)).tobytes()


class _PlainPng(_Opened):
    """A PNG of 8-bit grey or RGB without transparency, the usual kind in datasets: decoded by
    OpenCV (libpng, about a third of Pillow's time for a small image, most of Pillow's being
    its Python), the same pixels as Pillow's since PNG is lossless. Anything OpenCV does not
    decode to exactly that shape goes to Pillow, which decodes it or names what is wrong."""

    def __init__(self, data: bytes, width: int, height: int, grey: bool):
        self.data, self.size, self.grey = data, (width, height), grey

    def pixels(self, size, colour) -> bytes:
        width, height = self.size
        if size == self.size:
            flag = cv2.IMREAD_GRAYSCALE if self.grey else cv2.IMREAD_COLOR_RGB
            decoded = cv2.imdecode(np.frombuffer(self.data, np.uint8), flag)
            shape = (height, width) if self.grey else (height, width, 3)
            if decoded is not None and decoded.dtype == np.uint8 and decoded.shape == shape:
                if self.grey and colour:
                    decoded = cv2.cvtColor(decoded, cv2.COLOR_GRAY2RGB)
                return decoded.data
        return _Pillow(Image.open(io.BytesIO(self.data))).pixels(size, colour)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _plain_png(data: bytes, limits) -> _PlainPng | None:
    """The PNG when its header (IHDR) says 8-bit grey or RGB, within the pixel limit, with no
    transparency chunk before its pixels; None for any other file."""
    if len(data) < 33 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour_type = struct.unpack_from(">IIBB", data, 16)
    if depth != 8 or colour_type not in (0, 2) or not 0 < width * height <= limits.max_pixels:
        return None
    pixels_at = data.find(b"IDAT", 33)
    if pixels_at < 0 or data.find(b"tRNS", 33, pixels_at) >= 0:
        return None
    return _PlainPng(data, width, height, grey=colour_type == 0)


def _header(data: bytes, limits) -> _Opened | str:
    """The image, opened (its header read, no pixels decoded), or what is wrong with it."""
    plain = _plain_png(data, limits)
    if plain is not None:
        return plain
    try:
        image = Image.open(io.BytesIO(data))  # Pillow's own bomb check may refuse it first
    except (OSError, ValueError, SyntaxError):
        return "not an image: PNG, JPEG or WebP cannot read it"
    except Image.DecompressionBombError:
        return f"its header declares more than {limits.max_pixels} pixels per image"
    if image.format not in FORMATS:
        return f"a {image.format} image; PNG, JPEG or WebP only"
    width, height = image.size
    if width * height > limits.max_pixels:
        return f"{width} x {height} pixels; at most {limits.max_pixels} pixels per image"
    return _Pillow(image)


def _path_problem(name: str) -> str | None:
    if "\\" in name:
        return "a backslash in the path: use / between folders"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "an absolute path: entries must be relative to the archive"
    if ".." in name.split("/"):
        return "a path that leaves the archive (..)"
    if "\x00" in name:
        return "a NUL in the path"
    return None


def _members(source: BinaryIO, limits) -> Iterator[_Member]:
    """The archive's entries, in order, each readable (capped) while it is the current one."""
    magic = source.read(4)
    source.seek(0)
    if magic.startswith(b"PK"):
        yield from _zip_members(source, limits)
        return
    try:
        archive = tarfile.open(fileobj=source, mode="r|*")  # noqa: SIM115 (closed below)
    except tarfile.TarError:
        raise IngestRefused.one("archive", "not a zip or tar archive") from None
    try:
        with archive:
            for info in archive:
                kind = (
                    "file"
                    if info.isreg()
                    else "dir"
                    if info.isdir()
                    else "link"
                    if info.issym() or info.islnk()
                    else "other"
                )
                if info.issparse():
                    kind = "other"

                def read(info=info) -> bytes:
                    handle = archive.extractfile(info)
                    return handle.read(limits.max_member_bytes + 1) if handle else b""

                yield _Member(info.name, info.size, None, kind, read)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise IngestRefused.one("archive", f"the archive is damaged: {exc}") from None


def _zip_members(source, limits) -> Iterator[_Member]:
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise IngestRefused.one("archive", f"not a readable zip: {exc}") from None
    with archive:
        descriptor = _descriptor(source)
        counted = getattr(source, "add", None)  # a ProgressReader's, for what pread reads
        for info in archive.infolist():
            file_type = stat.S_IFMT(info.external_attr >> 16)  # 0: the archiver kept no type
            kind = (
                "dir"
                if info.is_dir()
                else "link"
                if file_type == stat.S_IFLNK
                else "file"
                if file_type in (0, stat.S_IFREG)
                else "other"
            )

            def read(info=info) -> bytes:
                if info.flag_bits & 0x1:
                    raise IngestRefused.one(info.filename, "encrypted: save it without a password")
                if descriptor is not None and info.compress_type in DIRECT_METHODS:
                    return _direct_read(descriptor, info, limits, counted)
                try:
                    with archive.open(info) as handle:
                        return handle.read(limits.max_member_bytes + 1)
                except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
                    raise IngestRefused.one(info.filename, f"cannot be unpacked: {exc}") from None

            yield _Member(info.filename, info.file_size, info.compress_size, kind, read)


DIRECT_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


def _descriptor(source) -> int | None:
    """The file descriptor of `source` when it is a file on disk, for its members to be read
    with os.pread (zipfile's ZipExtFile costs more, for a small member, than decoding it; a
    memory map would count every page of the archive read in the process's memory)."""
    try:
        descriptor = source.fileno()
        os.pread(descriptor, 0, 0)
    except (AttributeError, OSError, ValueError):  # not a file (io.BytesIO: UnsupportedOperation)
        return None
    return descriptor


def _direct_read(descriptor: int, info: zipfile.ZipInfo, limits, counted) -> bytes:
    """A stored or deflated member, read as zipfile would read it: its local header checked
    against the archive's directory, at most the limit + 1 bytes unpacked, and, when it is read
    whole, its size and CRC-32 checked."""

    def damaged(reason: str) -> IngestRefused:
        return IngestRefused.one(info.filename, f"cannot be unpacked: {reason}")

    # Deflate never packs data into more than a little over its own size: a member declaring
    # more is refused before anything is read.
    most = limits.max_member_bytes + limits.max_member_bytes // 1000 + 1024
    if info.compress_size > most:
        raise IngestRefused.one(
            info.filename, f"{info.compress_size} bytes packed; at most {limits.max_member_bytes}"
        )
    header = os.pread(descriptor, 30, info.header_offset)
    if len(header) < 30 or not header.startswith(b"PK\x03\x04"):
        raise damaged("no entry where the archive's directory says it is")
    name_length, extra_length = struct.unpack_from("<HH", header, 26)
    encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
    name = info.orig_filename.encode(encoding)
    rest = os.pread(
        descriptor, name_length + extra_length + info.compress_size, info.header_offset + 30
    )
    if rest[:name_length] != name:
        raise damaged("its name in the directory and in its header differ")
    packed = memoryview(rest)[name_length + extra_length :]
    if counted is not None:
        counted(30 + len(rest))
    if len(packed) < info.compress_size:
        raise damaged("the archive ends inside it")
    cap = limits.max_member_bytes + 1
    if info.compress_type == zipfile.ZIP_STORED:
        data = bytes(packed[:cap])
    else:
        try:
            data = zlib.decompressobj(-15).decompress(packed, cap)
        except zlib.error as exc:
            raise damaged(f"its compressed bytes are corrupt ({exc})") from None
    if len(data) < cap and (len(data) != info.file_size or zlib.crc32(data) != info.CRC):
        raise damaged(f"Bad CRC-32 for file {info.filename!r}")
    return data
