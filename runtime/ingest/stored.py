"""An ingested dataset version read back, and split with an assignment's secret.

`stored_read` memory-maps the Arrow file an ingester wrote (tables.py, images.py, arrays.py) and
gives its inputs as one array (images uint8 [N, C, H, W], numbers float32 [N, F], texts as a
list) with each example's label. `stored_splits` draws the four parts with the secret
(splits.py: train and validation for the learner's code, the public and private test parts for
the trusted grader only) and gives them as the runtime's `DatasetSplits`, the test split holding
both hidden parts in an order drawn from the secret, `test_part` saying which is which. A text
dataset gets a tokeniser trained on its train part alone (no hidden text shapes the
vocabulary), which encodes every part the same way and goes with the trained model: its
token ids padded with PAD_ID (0) to TEXT_MAX_LENGTH, described by a `TextDatasetInfo` (a
DatasetInfo that says `pad_id`, so that a spec's recurrent layers read packed sequences).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from runtime.datasets import PRIVATE_PART, PUBLIC_PART, DatasetInfo, DatasetSplits, Split
from runtime.ingest.splits import (
    PRIVATE,
    PUBLIC,
    SECRET_BYTES,
    TRAIN,
    VALIDATION,
    SplitPlan,
    secret_rng,
    split_parts,
)
from runtime.text import KINDS, PAD_ID, TextTokenizer

__all__ = [
    "TEXT_MAX_LENGTH",
    "TEXT_VOCABULARY",
    "Stored",
    "StoredSplits",
    "TextDatasetInfo",
    "info_from_fields",
    "stored_info",
    "stored_read",
    "stored_splits",
    "stored_tokenizer",
]

TEXT_VOCABULARY = 8000
TEXT_MAX_LENGTH = 64
DEFAULT_PLAN = SplitPlan()


@dataclass(frozen=True)
class TextDatasetInfo(DatasetInfo):
    """A text dataset: token ids of its tokeniser, each text padded with `pad_id` to
    input_shape's steps (runtime/text.py). runtime.spec reads `pad_id` (build_model: recurrent
    layers read packed sequences, the embedding keeps the padding's vector at zero)."""

    pad_id: int = PAD_ID


def info_from_fields(fields: dict) -> DatasetInfo:
    """The DatasetInfo stored as JSON (`vars(info)`, lists for tuples): a TextDatasetInfo for a
    text dataset, also one stored before `pad_id` was (an uploaded text is always padded)."""
    values = {
        **fields,
        "input_shape": tuple(fields["input_shape"]),
        "class_names": tuple(fields["class_names"]),
        "sizes": tuple(fields["sizes"]),
    }
    if values["kind"] == "tokens":
        return TextDatasetInfo(**values)
    values.pop("pad_id", None)
    return DatasetInfo(**values)


@dataclass(frozen=True)
class Stored:
    kind: str  # "image" | "vector" | "text"
    x: object  # np.ndarray (image uint8 [N, C, H, W], vector float32 [N, F]) or list[str]
    labels: np.ndarray  # str [N]
    class_names: tuple[str, ...]  # sorted

    @property
    def rows(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class StoredSplits:
    splits: DatasetSplits
    tokenizer: TextTokenizer | None  # text datasets: trained on the train part


def _fixed_rows(column: pa.ChunkedArray, width: int) -> np.ndarray:
    """A fixed-size binary column as uint8 [N, width], without copying when it is one chunk."""
    array = column.combine_chunks()
    data = array.buffers()[1]
    return np.frombuffer(
        data, dtype=np.uint8, count=len(array) * width, offset=array.offset * width
    )


def stored_read(path: str | Path) -> Stored:
    """The dataset in the Arrow file at `path` (one an ingester wrote)."""
    with pa.memory_map(str(path)) as source:
        table = pa.ipc.open_file(source).read_all()
    meta = {key.decode(): value.decode() for key, value in (table.schema.metadata or {}).items()}
    names = table.schema.names
    labels = np.asarray(table.column("label").to_pylist(), dtype=object)
    rows = len(labels)
    if "image" in names:
        height, width, channels = (int(meta[key]) for key in ("height", "width", "channels"))
        pixels = _fixed_rows(table.column("image"), height * width * channels)
        x = pixels.reshape(rows, height, width, channels).transpose(0, 3, 1, 2)
        kind = "image"
    elif "x" in names:
        import json

        dtype, shape = np.dtype(meta["dtype"]), tuple(json.loads(meta["shape"]))
        width = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        raw = _fixed_rows(table.column("x"), width)
        values = raw.view(dtype).reshape(rows, *shape)
        if dtype == np.uint8 and len(shape) in (2, 3):
            x = _channels_first(values)
            kind = "image"
        else:
            x = values.reshape(rows, -1).astype(np.float32)
            kind = "vector"
    elif "text" in names:
        x = table.column("text").to_pylist()
        kind = "text"
    else:
        features = [name for name in names if name != "label"]
        x = np.stack(
            [table.column(name).to_numpy().astype(np.float32) for name in features], axis=1
        )
        kind = "vector"
    return Stored(kind=kind, x=x, labels=labels, class_names=tuple(sorted(set(labels))))


def _channels_first(values: np.ndarray) -> np.ndarray:
    if values.ndim == 3:  # [N, H, W]: one channel
        return values[:, None]
    if values.shape[-1] in (1, 3, 4) and values.shape[1] not in (1, 3, 4):
        return values.transpose(0, 3, 1, 2)
    return values


def stored_info(
    stored: Stored, *, name: str, title: str, plan: SplitPlan = DEFAULT_PLAN
) -> DatasetInfo:
    """What `stored_splits` will give under `plan`, whatever the secret: the sizes of the parts
    follow from the plan and the class counts alone."""
    index = {label: i for i, label in enumerate(stored.class_names)}
    y = np.fromiter((index[label] for label in stored.labels), dtype=np.int64, count=stored.rows)
    parts = split_parts(y, secret=bytes(SECRET_BYTES), plan=plan)  # any secret counts the same
    train, val = int((parts == TRAIN).sum()), int((parts == VALIDATION).sum())
    return _info(stored, name, title, sizes=(train, val, stored.rows - train - val))


def _info(stored: Stored, name: str, title: str, *, sizes: tuple[int, int, int]) -> DatasetInfo:
    num_classes = len(stored.class_names)
    fields = {
        "name": name,
        "title": title,
        "task": "binary" if num_classes == 2 else "multiclass",
        "num_classes": num_classes,
        "class_names": stored.class_names,
        "sizes": sizes,
        "requires_download": False,
    }
    if stored.kind == "text":  # ids below the vocabulary's cap, whatever the texts learnt
        return TextDatasetInfo(
            kind="tokens",
            input_shape=(TEXT_MAX_LENGTH,),
            vocab_size=TEXT_VOCABULARY,
            pad_id=PAD_ID,
            **fields,
        )
    return DatasetInfo(
        kind=stored.kind, input_shape=tuple(stored.x.shape[1:]), vocab_size=None, **fields
    )


def _labels_and_parts(stored: Stored, secret: bytes, plan: SplitPlan):
    index = {label: i for i, label in enumerate(stored.class_names)}
    y = np.fromiter((index[label] for label in stored.labels), dtype=np.int64, count=stored.rows)
    return y, split_parts(y, secret=secret, plan=plan)


def _trained_tokenizer(stored: Stored, train: np.ndarray, kind: str) -> TextTokenizer:
    if kind not in KINDS:
        raise ValueError(f"tokenizer must be one of {', '.join(KINDS)}, not {kind!r}")
    return TextTokenizer.train(
        [stored.x[i] for i in train],
        kind=kind,
        vocabulary=TEXT_VOCABULARY,
        max_length=TEXT_MAX_LENGTH,
    )


def stored_tokenizer(
    stored: Stored, *, secret: bytes, plan: SplitPlan = DEFAULT_PLAN, tokenizer: str = "word"
) -> TextTokenizer:
    """The tokeniser `stored_splits` trains for this text dataset and secret, without encoding
    anything: the same train part, the same training, so the same tokeniser (tested)."""
    if stored.kind != "text":
        raise ValueError(f"a {stored.kind} dataset has no tokeniser")
    _y, parts = _labels_and_parts(stored, secret, plan)
    return _trained_tokenizer(stored, np.flatnonzero(parts == TRAIN), tokenizer)


def stored_splits(
    stored: Stored,
    *,
    name: str,
    title: str,
    secret: bytes,
    plan: SplitPlan = DEFAULT_PLAN,
    tokenizer: str = "word",
) -> StoredSplits:
    """The four parts of `stored` drawn with `secret`, as DatasetSplits on the CPU. A text
    dataset's tokeniser is of the kind `tokenizer` names ("word", "bpe" or "char")."""
    y, parts = _labels_and_parts(stored, secret, plan)
    chosen = {part: np.flatnonzero(parts == part) for part in (TRAIN, VALIDATION)}
    hidden = np.flatnonzero((parts == PUBLIC) | (parts == PRIVATE))
    # The hidden parts in an order drawn from the secret, so position says nothing of the part.
    order = secret_rng(secret, "test-order").permutation(len(hidden))
    chosen["test"] = hidden[order]
    trained = None
    if stored.kind == "text":
        trained = _trained_tokenizer(stored, chosen[TRAIN], tokenizer)
        x_all, _lengths = trained.encode(stored.x)
    else:
        x_all = stored.x

    def split(indices: np.ndarray) -> Split:
        x = np.ascontiguousarray(x_all[indices])
        return Split(torch.from_numpy(x), torch.from_numpy(y[indices]))

    train, val, test = split(chosen[TRAIN]), split(chosen[VALIDATION]), split(chosen["test"])
    test_part = np.where(parts[chosen["test"]] == PUBLIC, PUBLIC_PART, PRIVATE_PART)
    info = _info(stored, name, title, sizes=(len(train.y), len(val.y), len(test.y)))
    splits = DatasetSplits(
        info, train, val, test, test_part=torch.from_numpy(test_part.astype(np.int8))
    )
    return StoredSplits(splits=splits, tokenizer=trained)
