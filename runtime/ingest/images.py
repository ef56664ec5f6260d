"""Image archives as datasets: a zip or tar (plain, gzip, bzip2 or xz) with one folder per
class of PNG, JPEG or WebP images, written as one Arrow IPC file of uint8 pixels.

Two sequential passes over the archive, each holding one member at a time (at most
`max_member_bytes`): the first checks every entry (its path stays inside the archive, it is a
regular file, not an archive itself, not packed suspiciously tightly, an image whose header
gives a size within `max_pixels`) and counts the classes, sizes and colour modes without
decoding any pixels; the second decodes each image, converts it (grey if every image is grey,
else RGB), resizes it when asked, and writes it in batches. Nothing of the archive is ever
extracted to disk; a refused archive leaves no output behind.

The file: columns `image` (fixed_size_binary, height x width x channels bytes, row-major HWC)
and `label` (string); the schema's metadata holds `height`, `width` and `channels`.
"""

import contextlib
import io
import os
import stat
import tarfile
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np
import pyarrow as pa
from PIL import Image

from runtime.ingest.common import IngestLimits, IngestRefused, Problems, classes_check

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
) -> ImageSummary:
    """Reads the archive `source` (a seekable binary file) into the Arrow file `out_path`;
    IngestRefused, with nothing at `out_path`, when it cannot be a dataset. `resize_to`:
    (height, width) for every image; without it, images of different sizes are refused."""
    try:
        return _ingest(source, out_path, resize_to, limits)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(out_path)
        raise


def _ingest(source, out_path, resize_to, limits) -> ImageSummary:
    problems = Problems()
    files, skipped = _check_pass(source, limits, problems)
    classes = Counter(label for label, _size, _mode in files.values())
    classes_check(classes, "archive", limits, problems)
    sizes = Counter(size for _label, size, _mode in files.values())
    if resize_to is None and len(sizes) > 1:
        listed = ", ".join(
            f"{w} x {h} ({count} {'image' if count == 1 else 'images'}, e.g. "
            f"{next(n for n, (_l, s, _m) in files.items() if s == (w, h))})"
            for (w, h), count in sizes.most_common(5)
        )
        problems.add("archive", f"images of different sizes: {listed}; choose a size for all")
    problems.refuse_if_any()
    if resize_to is not None:
        height, width = resize_to
    else:
        ((width, height),) = sizes
    grey = all(mode in ("L", "1", "LA", "I;16", "I") for _l, _s, mode in files.values())
    channels = 1 if grey else 3
    schema = pa.schema(
        [("image", pa.binary(height * width * channels)), ("label", pa.string())],
        metadata={"height": str(height), "width": str(width), "channels": str(channels)},
    )
    resized = 0
    source.seek(0)
    with pa.OSFile(str(out_path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        pixels: list[bytes] = []
        labels: list[str] = []
        for member in _members(source, limits):
            if member.name not in files:
                continue
            label, size, _mode = files[member.name]
            try:
                image = _decoded(member.read(), limits)
            except (OSError, ValueError, SyntaxError) as exc:
                problems.add(member.name, f"a corrupt image: {exc}")
                continue
            if size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
                resized += 1
            array = np.asarray(image.convert("L" if grey else "RGB"), dtype=np.uint8)
            pixels.append(array.tobytes())
            labels.append(label)
            if len(labels) >= BATCH_IMAGES and not problems:
                writer.write_batch(_batch(pixels, labels, schema))
                pixels, labels = [], []
        if labels and not problems:
            writer.write_batch(_batch(pixels, labels, schema))
    problems.refuse_if_any()
    return ImageSummary(
        images=sum(classes.values()),
        height=height,
        width=width,
        channels=channels,
        classes=dict(sorted(classes.items())),
        resized=resized,
        skipped=tuple(skipped),
    )


def _batch(pixels, labels, schema) -> pa.RecordBatch:
    images = pa.array(pixels, type=schema.field("image").type)
    return pa.record_batch([images, pa.array(labels, pa.string())], schema=schema)


def _check_pass(source, limits, problems) -> tuple[dict, list[str]]:
    """{name: (label, (width, height), mode)} of the images, and the entries skipped; every
    problem added, the fatal ones (the archive as a whole) raised."""
    images: dict[str, tuple[tuple[str, ...], tuple[int, int], str]] = {}
    skipped: list[str] = []
    unpacked = 0
    for count, member in enumerate(_members(source, limits), start=1):
        if count > limits.max_files:
            raise IngestRefused.one("archive", f"more than {limits.max_files} entries")
        name = member.name
        problem = _path_problem(name)
        if problem:
            problems.add(name, problem)
            continue
        if member.kind == "dir":
            continue
        if member.kind == "link":
            problems.add(name, "a link: only regular files may be in the archive")
            continue
        if member.kind != "file":
            problems.add(name, "not a regular file (a device, a pipe?)")
            continue
        base = PurePosixPath(name).name
        if name.startswith(IGNORED) or base.startswith("."):
            skipped.append(name)
            continue
        if name.lower().endswith(ARCHIVE_EXTENSIONS):
            problems.add(name, "an archive inside the archive: put its images in the folders")
            continue
        unpacked += member.size
        if unpacked > limits.max_unpacked_bytes:
            raise IngestRefused.one(
                name, f"the images unpack to more than {limits.max_unpacked_bytes} bytes"
            )
        if member.size > limits.max_member_bytes:
            problems.add(name, f"{member.size} bytes unpacked; at most {limits.max_member_bytes}")
            continue
        if (
            member.packed is not None
            and member.size > 1024 * 1024
            and member.size > limits.max_ratio * max(member.packed, 1)
        ):
            ratio = member.size // max(member.packed, 1)
            problems.add(name, f"packed {ratio}:1, more than {limits.max_ratio}:1 (a zip bomb?)")
            continue
        if not base.lower().endswith(EXTENSIONS):
            problems.add(name, "not a PNG, JPEG or WebP file")
            continue
        data = member.read()
        if len(data) > limits.max_member_bytes:
            problems.add(name, f"more than {limits.max_member_bytes} bytes unpacked")
            continue
        if data.startswith(ARCHIVE_MAGIC):
            problems.add(name, "an archive inside the archive: put its images in the folders")
            continue
        header = _header(data, limits)
        if isinstance(header, str):
            problems.add(name, header)
            continue
        images[name] = (PurePosixPath(name).parts, *header)
        if problems.full():
            break
    # An archive of one folder holding the class folders, or of the class folders themselves.
    tops = {parts[0] for parts, _size, _mode in images.values()}
    top = 1 if len(tops) == 1 and all(len(p) == 3 for p, _s, _m in images.values()) else 0
    files: dict[str, tuple[str, tuple[int, int], str]] = {}
    for name, (parts, size, mode) in images.items():
        if len(parts) - top != 2:
            problems.add(name, "not in a class folder: the archive has one folder per class")
            continue
        files[name] = (parts[top], size, mode)
    return files, skipped


def _header(data: bytes, limits) -> tuple[tuple[int, int], str] | str:
    """(size, mode) from the image's header, no pixels decoded; or what is wrong."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning):
        return "not an image: PNG, JPEG or WebP cannot read it"
    except Image.DecompressionBombError:
        return f"its header declares more than {limits.max_pixels} pixels per image"
    if image.format not in FORMATS:
        return f"a {image.format} image; PNG, JPEG or WebP only"
    width, height = image.size
    if width * height > limits.max_pixels:
        return f"{width} x {height} pixels; at most {limits.max_pixels} pixels per image"
    return (width, height), image.mode


def _decoded(data: bytes, limits) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    width, height = image.size
    if width * height > limits.max_pixels:  # checked in the first pass; the bytes are the same
        raise ValueError(f"{width} x {height} pixels")
    image.load()
    return image


def _path_problem(name: str) -> str | None:
    if "\\" in name:
        return "a backslash in the path: use / between folders"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "an absolute path: entries must be relative to the archive"
    if ".." in PurePosixPath(name).parts:
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
                try:
                    with archive.open(info) as handle:
                        return handle.read(limits.max_member_bytes + 1)
                except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
                    raise IngestRefused.one(info.filename, f"cannot be unpacked: {exc}") from None

            yield _Member(info.filename, info.file_size, info.compress_size, kind, read)
