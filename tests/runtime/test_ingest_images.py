"""Image archives (runtime/ingest/images.py), built by the tests: the pixels read back are the
files' own, from zip and tar alike; each hostile archive is refused naming the entry and the
problem, with no output and nothing extracted anywhere."""

import io
import struct
import tarfile
import zipfile
import zlib

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from runtime.ingest.common import IngestLimits, IngestRefused
from runtime.ingest.images import PARALLEL_ENTRIES, images_ingest


def _png(array: np.ndarray, **save) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG", **save)
    return out.getvalue()


def _pixels(seed: int, shape=(8, 8, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _zip(entries: dict[str, bytes], *, compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def _tar(entries: dict[str, bytes], mode="w:gz", links: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return out.getvalue()


def _dataset(seeds=range(6), prefix="") -> tuple[dict[str, bytes], dict[str, np.ndarray]]:
    entries, arrays = {}, {}
    for seed in seeds:
        label = "cat" if seed % 2 else "dog"
        name = f"{prefix}{label}/{seed}.png"
        arrays[name] = _pixels(seed)
        entries[name] = _png(arrays[name])
    return entries, arrays


def _read(path) -> tuple[pa.Table, dict]:
    with pa.memory_map(str(path)) as source:
        reader = pa.ipc.open_file(source)
        table = reader.read_all()
    return table, {k.decode(): v.decode() for k, v in table.schema.metadata.items()}


def _refusal(data: bytes, tmp_path, **kwargs) -> list[tuple[str, str]]:
    before = sorted(p.name for p in tmp_path.iterdir())
    out = tmp_path / "out.arrow"
    with pytest.raises(IngestRefused) as refused:
        images_ingest(io.BytesIO(data), out, **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, nothing out
    return [(p.path, p.message) for p in refused.value.problems]


@pytest.mark.parametrize("pack", [_zip, _tar, lambda e: _tar(e, mode="w:xz")])
def test_an_archive_of_class_folders_is_read_back_pixel_for_pixel(tmp_path, pack):
    entries, arrays = _dataset(prefix="my-data/")
    entries["__MACOSX/._x"] = b"junk"
    out = tmp_path / "images.arrow"
    summary = images_ingest(io.BytesIO(pack(entries)), out)
    assert summary.as_dict() == {
        "images": 6,
        "height": 8,
        "width": 8,
        "channels": 3,
        "classes": {"cat": 3, "dog": 3},
        "resized": 0,
        "skipped": ["__MACOSX/._x"],
    }
    table, metadata = _read(out)
    assert metadata == {"height": "8", "width": "8", "channels": "3"}
    names = list(arrays)
    assert table["label"].to_pylist() == [name.split("/")[1] for name in names]
    for row, name in enumerate(names):
        got = np.frombuffer(table["image"][row].as_py(), np.uint8).reshape(8, 8, 3)
        np.testing.assert_array_equal(got, arrays[name])


def test_grey_images_keep_one_channel_and_other_sizes_are_resized_when_asked(tmp_path):
    entries = {f"{c}/{i}.png": _png(_pixels(i, (8, 8))) for c in "ab" for i in range(2)}
    entries["b/big.png"] = _png(_pixels(9, (16, 12)))
    assert _refusal(_zip(entries), tmp_path) == [
        (
            "archive",
            "images of different sizes: 8 x 8 (4 images, e.g. a/0.png), 12 x 16 (1 image, "
            "e.g. b/big.png); choose a size for all",
        )
    ]
    out = tmp_path / "grey.arrow"
    summary = images_ingest(io.BytesIO(_zip(entries)), out, resize_to=(8, 8))
    assert (summary.channels, summary.resized, summary.images) == (1, 1, 5)
    table, metadata = _read(out)
    assert metadata["channels"] == "1"
    assert table.schema.field("image").type == pa.binary(64)


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def _zip_with_symlink() -> bytes:
    entries, _ = _dataset()
    out = io.BytesIO(_zip(entries))
    with zipfile.ZipFile(out, "a") as archive:
        info = zipfile.ZipInfo("cat/link.png")
        info.external_attr = (0o120777 << 16) | 0x20  # a symbolic link, as Info-ZIP stores one
        archive.writestr(info, "/etc/passwd")
    return out.getvalue()


def _with(extra: dict[str, bytes]) -> dict[str, bytes]:
    entries, _ = _dataset()
    return {**entries, **extra}


@pytest.mark.parametrize(
    ("archive", "problems"),
    [
        (
            _zip(_with({"../evil.png": _png(_pixels(1))})),
            [("../evil.png", "a path that leaves the archive (..)")],
        ),
        (
            _tar(_with({"/etc/cron.d/x.png": _png(_pixels(1))})),
            [("/etc/cron.d/x.png", "an absolute path: entries must be relative to the archive")],
        ),
        (
            _zip_with_symlink(),
            [("cat/link.png", "a link: only regular files may be in the archive")],
        ),
        (
            _tar(_with({}), links={"dog/link.png": "../../etc/passwd"}),
            [("dog/link.png", "a link: only regular files may be in the archive")],
        ),
        (
            _zip(_with({"cat/more.zip": _zip({"x/1.png": _png(_pixels(1))})})),
            [("cat/more.zip", "an archive inside the archive: put its images in the folders")],
        ),
        (
            _zip(_with({"cat/sneaky.png": _zip({"x/1.png": _png(_pixels(1))})})),
            [("cat/sneaky.png", "an archive inside the archive: put its images in the folders")],
        ),
        (
            _zip(_with({"cat/bomb.png": _png_declaring(100_000, 100_000)})),
            [("cat/bomb.png", "its header declares more than 16777216 pixels per image")],
        ),
        (
            _zip(_with({"cat/tall.png": _png_declaring(8, 5_000_000)})),
            [("cat/tall.png", "8 x 5000000 pixels; at most 16777216 pixels per image")],
        ),
        (
            _zip(_with({"cat/notes.txt": b"hello"})),
            [("cat/notes.txt", "not a PNG, JPEG or WebP file")],
        ),
        (
            _zip(_with({"loose.png": _png(_pixels(1))})),
            [("loose.png", "not in a class folder: the archive has one folder per class")],
        ),
        (
            _zip(_with({"cat/broken.png": _png(_pixels(1))[:-40]})),
            [("cat/broken.png", "a corrupt image: image file is truncated")],
        ),
        (
            _zip({"only/1.png": _png(_pixels(1)), "only/2.png": _png(_pixels(2))}),
            [("archive", "one class only ('only'): a classifier needs two or more")],
        ),
        (b"just some bytes", [("archive", "not a zip or tar archive")]),
    ],
    ids=[
        "traversal",
        "absolute",
        "zip-symlink",
        "tar-symlink",
        "nested",
        "nested-disguised",
        "png-bomb",
        "too-many-pixels",
        "not-an-image",
        "no-class-folder",
        "truncated",
        "one-class",
        "not-an-archive",
    ],
)
def test_hostile_and_broken_archives_are_refused_naming_the_entry(tmp_path, archive, problems):
    assert _refusal(archive, tmp_path) == problems


def test_a_zip_bomb_is_refused_from_its_declared_sizes(tmp_path):
    bomb = _zip(_with({"cat/zeros.png": b"\x00" * (200 * 1024 * 1024)}))
    assert len(bomb) < 1024 * 1024  # 200 MB of zeros pack into a few hundred KB
    assert _refusal(bomb, tmp_path) == [
        ("cat/zeros.png", f"{200 * 1024 * 1024} bytes unpacked; at most {16 * 1024 * 1024}")
    ]
    limits = IngestLimits(max_member_bytes=512 * 1024 * 1024)
    assert _refusal(bomb, tmp_path, limits=limits)[0][1].startswith("packed ")


def test_an_archive_of_too_many_files_is_refused(tmp_path):
    """Read in one pass (from memory), it is refused at the entry past the limit; the default
    limit against 100,000 files, from a file on disk, is tests/runtime/test_ingest_memory.py's."""
    entries = {f"c{i % 2}/{i}.png": b"" for i in range(1_001)}
    limits = IngestLimits(max_files=1_000)
    problems = _refusal(_zip(entries, compression=zipfile.ZIP_STORED), tmp_path, limits=limits)
    assert problems[:2] == [
        ("c0/0.png", "not an image: PNG, JPEG or WebP cannot read it"),
        ("c1/1.png", "not an image: PNG, JPEG or WebP cannot read it"),
    ]
    assert len(problems) == 21  # the first twenty, then what ended the reading
    assert problems[-1] == ("archive", "more than 1000 entries")


def test_a_large_zip_is_scanned_by_several_processes_with_the_same_result(tmp_path):
    """Over PARALLEL_ENTRIES entries, from a file on disk: slices in two processes, their parts
    joined in order; the same file as one pass, and the same refusal naming a late entry."""
    entries = {
        f"data/c{i % 3}/{i}.png": _png(_pixels(i % 50, (4, 4, 3))) for i in range(PARALLEL_ENTRIES)
    }
    archive = tmp_path / "big.zip"
    archive.write_bytes(_zip(entries, compression=zipfile.ZIP_STORED))
    outs = {}
    for processes in (1, 2):
        outs[processes] = tmp_path / f"out{processes}.arrow"
        with open(archive, "rb") as source:
            summary = images_ingest(source, outs[processes], processes=processes)
        assert summary.images == PARALLEL_ENTRIES
    assert _read(outs[1])[0].equals(_read(outs[2])[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.zip", "out1.arrow", "out2.arrow"]

    entries[f"data/c1/{PARALLEL_ENTRIES - 3}.png"] = b"\x89PNG not really"
    archive.write_bytes(_zip(entries, compression=zipfile.ZIP_STORED))
    for processes in (1, 2):
        with open(archive, "rb") as source, pytest.raises(IngestRefused) as refused:
            images_ingest(source, tmp_path / "refused.arrow", processes=processes)
        assert [(p.path, p.message) for p in refused.value.problems] == [
            (
                f"data/c1/{PARALLEL_ENTRIES - 3}.png",
                "not an image: PNG, JPEG or WebP cannot read it",
            )
        ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.zip", "out1.arrow", "out2.arrow"]


def _kinds() -> dict[str, bytes]:
    """PNGs of every kind a camera, an editor or a script writes, 6 x 5 pixels each."""
    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (5, 6), dtype=np.uint8)
    rgba = rng.integers(0, 256, (5, 6, 4), dtype=np.uint8)
    palette = Image.fromarray(rgb).quantize(16)
    sixteen = Image.fromarray(rng.integers(0, 65536, (5, 6), dtype=np.uint16))
    buffers = {}
    for name, image in {"palette": palette, "sixteen": sixteen}.items():
        out = io.BytesIO()
        image.save(out, format="PNG")
        buffers[name] = out.getvalue()
    return {
        "rgb": _png(rgb),
        "rgb-tight": _png(rgb, compress_level=9),
        "rgb-transparent": _png(rgb, transparency=(1, 2, 3)),
        "grey": _png(grey),
        "grey-alpha": _png(np.stack([grey, grey], axis=-1)),
        "rgba": _png(rgba),
        **buffers,
    }


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_every_kind_of_png_reads_as_pillow_converts_it_from_a_zip_on_disk(tmp_path, compression):
    """Plain 8-bit grey and RGB PNGs are decoded by OpenCV, the rest by Pillow; every one reads
    back as Pillow's own conversion to RGB, from members sliced out of a memory map."""
    kinds = _kinds()
    entries = {f"{c}/{kind}.png": data for kind, data in kinds.items() for c in ("a", "b")}
    archive = tmp_path / "kinds.zip"
    archive.write_bytes(_zip(entries, compression=compression))
    with open(archive, "rb") as source:
        summary = images_ingest(source, tmp_path / "out.arrow", processes=1)
    assert (summary.images, summary.width, summary.height, summary.channels) == (16, 6, 5, 3)
    table, _ = _read(tmp_path / "out.arrow")
    for row, data in enumerate(entries.values()):
        expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        got = np.frombuffer(table["image"][row].as_py(), np.uint8).reshape(5, 6, 3)
        np.testing.assert_array_equal(got, expected)


def test_plain_grey_pngs_from_disk_keep_one_channel_and_resize_as_pillow_does(tmp_path):
    rng = np.random.default_rng(3)
    arrays = {f"{c}/{i}.png": rng.integers(0, 256, (6, 6), np.uint8) for c in "xy" for i in "12"}
    arrays["y/big.png"] = rng.integers(0, 256, (9, 7), np.uint8)
    archive = tmp_path / "grey.zip"
    archive.write_bytes(_zip({name: _png(array) for name, array in arrays.items()}))
    with open(archive, "rb") as source:
        summary = images_ingest(source, tmp_path / "out.arrow", resize_to=(6, 6), processes=1)
    assert (summary.images, summary.channels, summary.resized) == (5, 1, 1)
    table, _ = _read(tmp_path / "out.arrow")
    for row, array in enumerate(arrays.values()):
        expected = np.asarray(Image.fromarray(array).resize((6, 6), Image.Resampling.BILINEAR))
        got = np.frombuffer(table["image"][row].as_py(), np.uint8).reshape(6, 6)
        np.testing.assert_array_equal(got, expected)


def _damaged(tmp_path, change) -> list[tuple[str, str]]:
    """The refusal of a zip on disk, stored, whose bytes `change` alters in place."""
    entries, _ = _dataset()
    data = bytearray(_zip(entries, compression=zipfile.ZIP_STORED))
    change(data)
    archive = tmp_path / "damaged.zip"
    archive.write_bytes(bytes(data))
    with open(archive, "rb") as source, pytest.raises(IngestRefused) as refused:
        images_ingest(source, tmp_path / "out.arrow", processes=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.zip"]
    return [(p.path, p.message) for p in refused.value.problems]


def test_a_zip_member_whose_bytes_or_header_do_not_match_its_directory_is_refused(tmp_path):
    def flip_a_pixel_byte(data):
        at = data.index(b"IDAT", data.index(b"cat/1.png")) + 8
        data[at] ^= 0xFF

    def rename_in_the_header(data):
        at = data.index(b"cat/1.png")  # the first: the local header's copy
        data[at : at + 3] = b"dog"

    def mark_encrypted(data):  # the first entry's flags, in its header and the directory
        for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            data[data.index(signature) + flags_at] |= 0x1

    assert _damaged(tmp_path, flip_a_pixel_byte) == [
        ("cat/1.png", "cannot be unpacked: Bad CRC-32 for file 'cat/1.png'")
    ]
    assert _damaged(tmp_path, rename_in_the_header) == [
        ("cat/1.png", "cannot be unpacked: its name in the directory and in its header differ")
    ]
    assert _damaged(tmp_path, mark_encrypted) == [
        ("dog/0.png", "encrypted: save it without a password")
    ]
