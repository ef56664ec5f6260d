"""What every ingester shares: the limits, the refusal (every problem with where it is), and
the text encodings a teacher's file may be in."""

import codecs
from collections import Counter
from dataclasses import dataclass

from runtime.errors import Problem

MAX_PROBLEMS = 20  # a refusal lists this many, then says how many more there were


@dataclass(frozen=True)
class IngestLimits:
    max_bytes: int = 512 * 1024 * 1024  # the uploaded file
    max_rows: int = 2_000_000
    max_columns: int = 1_000
    max_line_bytes: int = 1024 * 1024  # one physical line of a CSV
    max_field_chars: int = 64 * 1024  # one cell (a text sample)
    min_per_class: int = 2  # a class with fewer cannot be split into train and test
    max_classes: int = 1_000
    # Archives of images:
    max_files: int = 80_000  # entries of an archive (MNIST has 70,000 images)
    max_member_bytes: int = 16 * 1024 * 1024  # one file in it, unpacked
    max_unpacked_bytes: int = 4 * 1024 * 1024 * 1024  # all of them
    max_ratio: int = 100  # unpacked : packed, for a member over 1 MiB unpacked
    max_pixels: int = 4096 * 4096  # one image, checked from its header before it is decoded


class IngestRefused(Exception):
    """The file cannot become a dataset; `problems` lists each reason found, with where."""

    def __init__(self, problems: list[Problem], more: int = 0):
        self.problems = problems
        self.more = more
        text = "; ".join(f"{p.path}: {p.message}" for p in problems)
        super().__init__(text + (f"; and {more} more" if more else ""))

    def __reduce__(self):  # across processes (the image ingester's), problems and all
        return (type(self), (self.problems, self.more))

    @classmethod
    def one(cls, where: str, message: str) -> "IngestRefused":
        return cls([Problem(path=where, message=message)])


class Problems:
    """Collects problems up to MAX_PROBLEMS, counting the rest."""

    def __init__(self):
        self.found: list[Problem] = []
        self.more = 0

    def add(self, where: str, message: str) -> None:
        if len(self.found) < MAX_PROBLEMS:
            self.found.append(Problem(path=where, message=message))
        else:
            self.more += 1

    def __bool__(self) -> bool:
        return bool(self.found)

    def full(self) -> bool:
        return len(self.found) >= MAX_PROBLEMS

    def fatal(self, where: str, message: str) -> IngestRefused:
        """The refusal for a problem reading cannot go past: those found before it, then it
        (always listed, past MAX_PROBLEMS too)."""
        self.found.append(Problem(path=where, message=message))
        return IngestRefused(self.found, self.more)

    def refuse_if_any(self) -> None:
        if self.found:
            raise IngestRefused(self.found, self.more)


# Python codec, and the name reported to the teacher.
ENCODINGS = {"utf-8-sig": "UTF-8 with BOM", "utf-8": "UTF-8", "gb18030": "GB18030 (GBK)"}


def encoding_detect(head: bytes, *, complete: bool) -> str:
    """The codec of a file starting with `head` (all of it when `complete`): a UTF-8 BOM, else
    UTF-8 if it decodes, else GB18030 (a superset of GBK and GB2312) if it decodes; IngestRefused
    naming the first byte neither can read."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    offsets = {}
    for codec in ("utf-8", "gb18030"):
        decoder = codecs.getincrementaldecoder(codec)(errors="strict")
        try:
            decoder.decode(head, final=complete)  # an incomplete last character may follow
            return codec
        except UnicodeDecodeError as exc:
            offsets[codec] = exc.start
    offset = max(offsets.values())
    raise IngestRefused(
        [
            Problem(
                path=f"byte {offset}",
                message=(
                    f"the bytes {head[offset : offset + 4].hex(' ')} are neither UTF-8 nor "
                    "GB18030 (GBK); save the file as UTF-8"
                ),
            )
        ]
    )


def classes_check(classes: Counter, where: str, limits: IngestLimits, problems: Problems):
    """Adds what is wrong with the class counts, if nothing else is: none, one, or too few."""
    if problems or not classes:
        if not classes and not problems:
            problems.add("file", "no examples in it")
        return
    if len(classes) == 1:
        (only,) = classes
        problems.add(where, f"one class only ({only!r}): a classifier needs two or more")
        return
    few = sorted(name for name, count in classes.items() if count < limits.min_per_class)
    if few:
        listed = ", ".join(f"{name!r} ({classes[name]})" for name in few[:10])
        problems.add(
            where,
            f"classes with fewer than {limits.min_per_class} examples: {listed}"
            + (f" and {len(few) - 10} more" if len(few) > 10 else ""),
        )


def file_size(source) -> int:
    """The size of a seekable file, its position left where it was."""
    position = source.tell()
    source.seek(0, 2)
    size = source.tell()
    source.seek(position)
    return size


class ProgressReader:
    """A seekable binary file that reports how much of it has been read: `on_progress` gets
    the bytes read so far over the file's size (at most 1), rising, at most every `step` of it,
    and 1.0 from `done`. Counting bytes read, not the position, keeps a zip's first look at its
    directory (at the end) from reading as all of it. Everything but reading is the file's."""

    def __init__(self, source, on_progress, *, step: float = 0.01):
        self._source, self._on_progress, self._step = source, on_progress, step
        self._size = max(file_size(source), 1)
        self._read = 0
        self._reported = 0.0

    def add(self, count: int) -> None:
        """Counts `count` bytes as read: read here, or from a memory map of the file."""
        self._read += count
        fraction = min(self._read / self._size, 1.0)
        if fraction >= self._reported + self._step:
            self._reported = fraction
            self._on_progress(fraction)

    def read(self, size=-1):
        data = self._source.read(size)
        self.add(len(data))
        return data

    def readline(self, size=-1):
        data = self._source.readline(size)
        self.add(len(data))
        return data

    def done(self) -> None:
        if self._reported < 1.0:
            self._reported = 1.0
            self._on_progress(1.0)

    def __getattr__(self, name):
        return getattr(self._source, name)
