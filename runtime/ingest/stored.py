"""An ingested dataset version read back, and split with an assignment's secret.

`stored_read` memory-maps the Arrow file an ingester wrote (tables.py, images.py, arrays.py) and
gives its inputs as one array (images uint8 [N, C, H, W], numbers float32 [N, F], texts as a
list) with each example's label. `stored_splits` draws the four parts with the secret
(splits.py: train and validation for the learner's code, the public and private test parts for
the trusted grader only) and gives them as the runtime's `DatasetSplits`, the test split holding
both hidden parts in an order drawn from the secret, `test_part` saying which is which. A text
dataset gets a tokeniser trained on its train part alone (no hidden text shapes the
vocabulary), which encodes every part the same way and goes with the trained model.
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
from runtime.text import TextTokenizer

__all__ = [
    "TEXT_MAX_LENGTH",
    "TEXT_VOCABULARY",
    "Stored",
    "StoredSplits",
    "stored_info",
    "stored_read",
    "stored_splits",
]

TEXT_VOCABULARY = 8000
TEXT_MAX_LENGTH = 64
DEFAULT_PLAN = SplitPlan()


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
    if stored.kind == "text":  # ids below the vocabulary's cap, whatever the texts learnt
        kind, input_shape, vocab = "tokens", (TEXT_MAX_LENGTH,), TEXT_VOCABULARY
    else:
        kind, input_shape, vocab = stored.kind, tuple(stored.x.shape[1:]), None
    return DatasetInfo(
        name=name,
        title=title,
        kind=kind,
        task="binary" if num_classes == 2 else "multiclass",
        input_shape=input_shape,
        num_classes=num_classes,
        class_names=stored.class_names,
        vocab_size=vocab,
        sizes=sizes,
        requires_download=False,
    )


def stored_splits(
    stored: Stored,
    *,
    name: str,
    title: str,
    secret: bytes,
    plan: SplitPlan = DEFAULT_PLAN,
) -> StoredSplits:
    """The four parts of `stored` drawn with `secret`, as DatasetSplits on the CPU."""
    index = {label: i for i, label in enumerate(stored.class_names)}
    y = np.fromiter((index[label] for label in stored.labels), dtype=np.int64, count=stored.rows)
    parts = split_parts(y, secret=secret, plan=plan)
    chosen = {part: np.flatnonzero(parts == part) for part in (TRAIN, VALIDATION)}
    hidden = np.flatnonzero((parts == PUBLIC) | (parts == PRIVATE))
    # The hidden parts in an order drawn from the secret, so position says nothing of the part.
    order = secret_rng(secret, "test-order").permutation(len(hidden))
    chosen["test"] = hidden[order]
    tokenizer = None
    if stored.kind == "text":
        texts = stored.x
        tokenizer = TextTokenizer.train(
            [texts[i] for i in chosen[TRAIN]],
            kind="word",
            vocabulary=TEXT_VOCABULARY,
            max_length=TEXT_MAX_LENGTH,
        )
        x_all, _lengths = tokenizer.encode(texts)
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
    return StoredSplits(splits=splits, tokenizer=tokenizer)
