"""The datasets registry: fixed train/validation/test splits, loaded once per process and device.

Generated datasets (`xor`, `moons`, `spirals`, `sequences`, `shapes`) are made in memory from a
fixed seed with local random generators (NumPy's `RandomState`, whose streams NumPy keeps stable),
always on the CPU and then moved, so every call, process and worker gets the same tensors and the
global random state is neither used nor changed. Nothing is written to disk, so the test labels
exist only in the trusted process that holds them. `digits` is scikit-learn's bundled 8x8 digits
with a fixed stratified split. `cifar10`, `mnist` and `fashion_mnist` are read from a data
directory (DATA_DIR) that `python manage.py download_datasets` fills; their validation split is
the last 5000 images of the official training set and their test split the official test set.

`load_dataset` caches per (name, data directory, device): a worker keeps its datasets in memory
(on the GPU when it has one) across jobs. The cached tensors are shared, so callers must treat
them as read-only; each call returns fresh `DatasetSplits`/`Split` objects around them.
"""

from __future__ import annotations

import math
import os
import tarfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "PRIVATE_PART",
    "PUBLIC_PART",
    "DatasetDownloadFailed",
    "DatasetInfo",
    "DatasetMissing",
    "DatasetSource",
    "DatasetSplits",
    "Split",
    "UnknownDataset",
    "clear_dataset_cache",
    "dataset_info",
    "dataset_names",
    "default_data_dir",
    "download_dataset",
    "load_dataset",
    "register_source",
    "source_catalogue",
]

DOWNLOAD_COMMAND = "python manage.py download_datasets"


# --- Contracts (docs/runtime.md) ------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    kind: str  # "image" | "vector" | "tokens"
    task: str  # "multiclass" | "binary"
    input_shape: tuple[int, ...]  # one sample: (C, H, W) image, (F,) vector, (T,) tokens
    num_classes: int  # 2 for binary tasks
    class_names: tuple[str, ...]
    vocab_size: int | None  # tokens only
    sizes: tuple[int, int, int]  # train, validation, test
    requires_download: bool


@dataclass
class Split:
    x: torch.Tensor  # image: uint8 [N, C, H, W]; vector: float32 [N, F]; tokens: int64 [N, T]
    y: torch.Tensor  # int64 [N], class index (0/1 for binary)


@dataclass
class DatasetSplits:
    info: DatasetInfo
    train: Split
    val: Split
    test: Split  # test.y is for the trusted grader only; never sent to learner code
    # Which hidden test part each test sample is in (int8 [N]: PUBLIC_PART or PRIVATE_PART),
    # when the test split was drawn with an assignment's secret; None: one part.
    test_part: torch.Tensor | None = None


PUBLIC_PART, PRIVATE_PART = 0, 1


class UnknownDataset(KeyError):
    """No dataset has this name; the message lists the names there are."""

    def __init__(self, name: str):
        self.name = name
        self.message = f"Unknown dataset {name!r}. Known datasets: {', '.join(dataset_names())}."
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return self.message


class DatasetMissing(Exception):
    """A downloaded dataset is not (or not completely) in the data directory."""

    def __init__(self, name: str, data_dir: Path, detail: str | None = None):
        self.name = name
        self.data_dir = Path(data_dir)
        self.command = f"{DOWNLOAD_COMMAND} {name}"
        if detail is None:
            message = (
                f"The {name} dataset is not in DATA_DIR ({self.data_dir}). "
                f"Download it with: {self.command}"
            )
        else:
            message = (
                f"The {name} dataset in DATA_DIR ({self.data_dir}) is incomplete or corrupted "
                f"({detail}). Delete its folder there and download it again with: {self.command}"
            )
        super().__init__(message)


class DatasetDownloadFailed(Exception):
    """Downloading a dataset failed (no internet, server error, bad checksum)."""

    def __init__(self, name: str, urls: tuple[str, ...], reason: str):
        self.name = name
        self.urls = urls
        self.reason = reason
        super().__init__(f"Could not download the {name} dataset from {', '.join(urls)}: {reason}")


# --- Registry -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    info: DatasetInfo
    # Generated/bundled: () -> (x_train, y_train, x_val, y_val, x_test, y_test).
    # Downloaded: (data_dir) -> the same. Always CPU tensors.
    load: Callable[..., tuple[torch.Tensor, ...]]
    # Generated: (secret) -> (x_test, y_test), a test split of the same size and task drawn
    # from the secret. None: the test inputs are published, and are perturbed with the secret.
    generate_test: Callable[[bytes], tuple[torch.Tensor, torch.Tensor]] | None = None


_REGISTRY: dict[str, _Entry] = {}


def _register(info: DatasetInfo, generate_test=None):
    def decorator(load):
        _REGISTRY[info.name] = _Entry(info, load, generate_test)
        return load

    return decorator


@dataclass(frozen=True)
class DatasetSource:
    """Datasets the platform holds rather than the runtime (a teacher's uploaded versions), named
    `<prefix>:<key>`. `info(name)` describes one (raising `UnknownDataset`); `load(name, secret)`
    gives its splits on the CPU, the test split's parts drawn with `secret` (an assignment's)."""

    prefix: str
    info: Callable[[str], DatasetInfo]
    load: Callable[[str, bytes | None], DatasetSplits]
    # (name, title) of each dataset the caller may use now (the tenant's ready versions).
    catalogue: Callable[[], list[tuple[str, str]]] = list


_SOURCES: dict[str, DatasetSource] = {}


def register_source(source: DatasetSource) -> None:
    """Let `dataset_info` and `load_dataset` find the datasets named `<source.prefix>:...`."""
    if not source.prefix.isidentifier():
        raise ValueError(f"a source prefix is a plain word, not {source.prefix!r}")
    _SOURCES[source.prefix] = source


def _source_of(name) -> DatasetSource | None:
    if not isinstance(name, str) or ":" not in name:
        return None
    return _SOURCES.get(name.split(":", 1)[0])


def source_catalogue() -> list[tuple[str, str]]:
    """(name, title) of every registered source's datasets the caller may use now."""
    return [entry for source in _SOURCES.values() for entry in source.catalogue()]


def dataset_names() -> list[str]:
    """Every dataset's name, in the order the catalogue shows them."""
    return list(_REGISTRY)


def dataset_info(name: str) -> DatasetInfo:
    """The description of `name` (sizes as shipped); raises `UnknownDataset`."""
    source = _source_of(name)
    if source is not None:
        return source.info(name)
    return _entry(name).info


def _entry(name: str) -> _Entry:
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownDataset(name) from None


def default_data_dir() -> Path:
    """Where downloaded datasets live when no `data_dir` is given.

    The same rule as the Django setting DATA_DIR: $DATA_DIR, else $VAR_DIR/datasets, else
    var/datasets in the repository. Workers should pass settings.DATA_DIR explicitly.
    """
    if os.environ.get("DATA_DIR"):
        return Path(os.environ["DATA_DIR"])
    if os.environ.get("VAR_DIR"):
        return Path(os.environ["VAR_DIR"]) / "datasets"
    return Path(__file__).resolve().parents[2] / "var" / "datasets"


# --- Loading and the per-process cache ------------------------------------------------------------

_cache: dict[tuple[str, str | None, str], tuple[torch.Tensor, ...]] = {}
_cache_lock = threading.Lock()


def _device_key(device: str | torch.device) -> torch.device:
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    secret: bytes | None = None,
) -> DatasetSplits:
    """The fixed splits of `name` as tensors on `device`, loaded once per process and device.

    Raises `UnknownDataset` for an unknown name and `DatasetMissing` (naming the command that
    downloads it) when a downloaded dataset is not in `data_dir` (default: `default_data_dir()`).
    The tensors are shared between calls: treat them as read-only. A dataset of a registered
    source is split with `secret` (its test split in a public and a private part).
    """
    device = _device_key(device)
    source = _source_of(name)
    if source is not None:
        return _on_device(source.load(name, secret), device)
    entry = _entry(name)
    folder = None
    if entry.info.requires_download:
        folder = Path(data_dir) if data_dir is not None else default_data_dir()
        folder = folder.expanduser().resolve()
    key = (name, None if folder is None else str(folder), str(device))
    with _cache_lock:
        tensors = _cache.get(key)
        if tensors is None:
            cpu_key = (key[0], key[1], "cpu")
            tensors = _cache.get(cpu_key)
            if tensors is None:
                tensors = entry.load(folder) if folder is not None else entry.load()
                _check_tensors(entry.info, tensors)
                if device.type == "cpu":
                    _cache[key] = tensors
            if device.type != "cpu":
                tensors = tuple(t.to(device) for t in tensors)
                _cache[key] = tensors
    xtr, ytr, xva, yva, xte, yte = tensors
    info = replace(entry.info, sizes=(len(ytr), len(yva), len(yte)))
    splits = DatasetSplits(info, Split(xtr, ytr), Split(xva, yva), Split(xte, yte))
    if secret is None:
        return splits
    return _hidden_test(entry, splits, key, secret, device)


# --- The hidden test split of a built-in dataset, drawn with an assignment's secret -------------
# Generated datasets draw a new test split from the secret (the same task and size), so that the
# public code that makes the data cannot rebuild its labels; datasets whose test inputs are
# published (digits, MNIST, Fashion-MNIST, CIFAR-10) get those inputs perturbed with the secret
# (splits.hidden_inputs), so that a table of the published inputs finds none of them. Either way
# the test split is then halved per class, with the secret, into the public and private parts.

HIDDEN_TESTS_KEPT = 4  # per process: the assignments a worker is running now, or just ran
_hidden_tests: dict[tuple, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
# digits' values are sixteenths: its perturbed inputs must not round back to the published ones
_GRID_STEP = {"digits": 1 / 16}


def _hidden_test(entry: _Entry, splits: DatasetSplits, key, secret: bytes, device):
    import hashlib

    from runtime.ingest.splits import PUBLIC, hidden_inputs, test_halves

    cache_key = (*key, hashlib.sha256(secret).hexdigest())
    with _cache_lock:
        held = _hidden_tests.pop(cache_key, None)
        if held is None:
            info = entry.info
            if entry.generate_test is not None:
                x, y = entry.generate_test(secret)
            else:
                x_published = splits.test.x.cpu().numpy()
                y = splits.test.y.cpu()
                if info.kind == "image":
                    x = hidden_inputs(x_published, secret=secret, kind="image")
                else:  # digits: 8 x 8 images as 64 numbers
                    images = x_published.reshape(len(x_published), 8, 8)
                    x = hidden_inputs(
                        images, secret=secret, kind="image", step=_GRID_STEP.get(info.name)
                    ).reshape(x_published.shape)
                x = torch.from_numpy(np.ascontiguousarray(x))
            _check_tensors(info, (x, y))
            halves = test_halves(y.numpy(), secret=secret)
            part = torch.from_numpy(np.where(halves == PUBLIC, PUBLIC_PART, PRIVATE_PART))
            held = (x.to(device), y.to(device), part.to(torch.int8))
        _hidden_tests[cache_key] = held  # the newest last
        while len(_hidden_tests) > HIDDEN_TESTS_KEPT:
            del _hidden_tests[next(iter(_hidden_tests))]
    x, y, part = held
    return replace(splits, test=Split(x, y), test_part=part)


def _on_device(splits: DatasetSplits, device: torch.device) -> DatasetSplits:
    if device.type == "cpu":
        return splits
    train, val, test = (
        Split(s.x.to(device), s.y.to(device)) for s in (splits.train, splits.val, splits.test)
    )
    return replace(splits, train=train, val=val, test=test)


def clear_dataset_cache() -> None:
    """Forget every loaded dataset (frees the memory once no one else holds the tensors)."""
    with _cache_lock:
        _cache.clear()
        _hidden_tests.clear()


def _check_tensors(info: DatasetInfo, tensors: tuple[torch.Tensor, ...]) -> None:
    dtype = {"image": torch.uint8, "vector": torch.float32, "tokens": torch.int64}[info.kind]
    for x, y in zip(tensors[0::2], tensors[1::2], strict=True):
        if x.dtype != dtype or tuple(x.shape[1:]) != info.input_shape:
            raise RuntimeError(f"{info.name}: x is {x.dtype} {tuple(x.shape)}, not as described")
        if y.dtype != torch.int64 or y.shape != (x.shape[0],):
            raise RuntimeError(f"{info.name}: y is {y.dtype} {tuple(y.shape)}, not as described")


# --- Generated and bundled datasets ---------------------------------------------------------------


def _balanced_labels(rs: np.random.RandomState, size: int, num_classes: int) -> np.ndarray:
    """`size` labels, the same number of each class, in a random order."""
    if size % num_classes:
        raise ValueError(f"{size} samples do not split evenly into {num_classes} classes")
    return rs.permutation(np.repeat(np.arange(num_classes), size // num_classes))


def _generated(info: DatasetInfo, seed: int, make: Callable):
    """Register a generated dataset: `make(rs, y) -> x` for each split, from its own stream.

    Split i draws from RandomState([seed, i]), so each split is fixed on its own.
    """

    def load():
        out = []
        for index, size in enumerate(info.sizes):
            rs = np.random.RandomState([seed, index])
            y = _balanced_labels(rs, size, info.num_classes)
            x = make(rs, y)
            out += [x, torch.from_numpy(y).long()]
        return tuple(out)

    def generate_test(secret: bytes):
        from runtime.ingest.splits import secret_rng

        words = secret_rng(secret, f"generated-test:{info.name}").integers(
            0, 2**32, size=8, dtype=np.uint64
        )
        rs = np.random.RandomState(words.astype(np.uint32))
        y = _balanced_labels(rs, info.sizes[2], info.num_classes)
        return make(rs, y), torch.from_numpy(y).long()

    _register(info, generate_test)(load)


# digits: scikit-learn's bundled 8x8 digits (1797 images, values 0..16) as 64 features scaled
# to [0, 1]. A fixed stratified split: 30 of each class for validation, 30 for test, the rest
# (1197) for training.
_DIGITS_SEED = 1006


@_register(
    DatasetInfo(
        name="digits",
        title="Handwritten digits (8x8)",
        kind="vector",
        task="multiclass",
        input_shape=(64,),
        num_classes=10,
        class_names=tuple(str(d) for d in range(10)),
        vocab_size=None,
        sizes=(1197, 300, 300),
        requires_download=False,
    )
)
def _load_digits() -> tuple[torch.Tensor, ...]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - a dependency
        raise RuntimeError("The digits dataset needs scikit-learn installed") from exc
    bunch = load_digits()
    x = torch.from_numpy((bunch.data / 16.0).astype(np.float32))
    y = np.asarray(bunch.target, dtype=np.int64)
    rs = np.random.RandomState(_DIGITS_SEED)
    parts: list[list[np.ndarray]] = [[], [], []]
    for digit in range(10):
        idx = rs.permutation(np.flatnonzero(y == digit))
        parts[0].append(idx[60:])
        parts[1].append(idx[:30])
        parts[2].append(idx[30:60])
    out = []
    for part in parts:
        idx = torch.from_numpy(rs.permutation(np.concatenate(part)))
        out += [x[idx].contiguous(), torch.from_numpy(y)[idx].contiguous()]
    return tuple(out)


# xor: noisy points around the four corners (+-1, +-1); 1 where the signs differ. The noise is
# Gaussian (sd 0.15) cut off at 0.45 from the corner, so x1 + x2 is >= 1.36 in magnitude for
# class 0 and <= 0.64 for class 1: the band |x1 + x2| < 1 that a 2-unit ReLU layer can carve
# separates every point, while no straight line gets past 75%.
def _make_xor(rs: np.random.RandomState, y: np.ndarray) -> torch.Tensor:
    n = len(y)
    # Within each class the two corners are equally common: class 0 (same signs) at (1,1) and
    # (-1,-1), class 1 at (1,-1) and (-1,1).
    first = np.empty(n)
    for label in (0, 1):
        idx = np.flatnonzero(y == label)
        first[idx] = np.where(np.arange(len(idx)) % 2 == 0, 1.0, -1.0)[rs.permutation(len(idx))]
    second = np.where(y == 0, first, -first)
    noise = rs.normal(0.0, 0.15, size=(n, 2))
    norm = np.linalg.norm(noise, axis=1, keepdims=True)
    noise *= np.minimum(1.0, 0.45 / np.maximum(norm, 1e-12))
    x = np.stack([first, second], axis=1) + noise
    return torch.from_numpy(x.astype(np.float32))


_generated(
    DatasetInfo(
        name="xor",
        title="XOR: four noisy clusters",
        kind="vector",
        task="binary",
        input_shape=(2,),
        num_classes=2,
        class_names=("same sign", "opposite signs"),
        vocab_size=None,
        sizes=(800, 200, 200),
        requires_download=False,
    ),
    seed=1001,
    make=_make_xor,
)


# moons: two interleaving half circles (as scikit-learn's make_moons), centred on the origin,
# Gaussian noise sd 0.15: a curved boundary; a linear model stays near 86%.
def _make_moons(rs: np.random.RandomState, y: np.ndarray) -> torch.Tensor:
    t = rs.uniform(0.0, math.pi, size=len(y))
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)
    lower = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    x = np.where((y == 0)[:, None], upper, lower)
    x += rs.normal(0.0, 0.15, size=x.shape)
    x -= np.array([0.5, 0.25])
    return torch.from_numpy(x.astype(np.float32))


_generated(
    DatasetInfo(
        name="moons",
        title="Two moons",
        kind="vector",
        task="binary",
        input_shape=(2,),
        num_classes=2,
        class_names=("upper moon", "lower moon"),
        vocab_size=None,
        sizes=(1000, 250, 250),
        requires_download=False,
    ),
    seed=1002,
    make=_make_moons,
)


# spirals: three arms winding 1.75 turns out from the centre (radius 0..1), angular noise sd
# 0.2 rad: a linear model stays near chance, a small MLP gets past 95%.
def _make_spirals(rs: np.random.RandomState, y: np.ndarray) -> torch.Tensor:
    r = rs.uniform(0.05, 1.0, size=len(y))
    theta = y * (2 * math.pi / 3) + r * 3.5 * math.pi + rs.normal(0.0, 0.2, size=len(y))
    x = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    return torch.from_numpy(x.astype(np.float32))


_generated(
    DatasetInfo(
        name="spirals",
        title="Three spirals",
        kind="vector",
        task="multiclass",
        input_shape=(2,),
        num_classes=3,
        class_names=("arm 1", "arm 2", "arm 3"),
        vocab_size=None,
        sizes=(2100, 450, 450),
        requires_download=False,
    ),
    seed=1003,
    make=_make_spirals,
)


# sequences: 20 tokens from a vocabulary of 16. Tokens 0, 1, 2 ("A", "B", "C") each appear
# exactly once, at random positions; the other 17 are filler (3..15). The class is the order in
# which A, B and C appear (6 classes). Every sequence holds the same signal tokens, so a
# bag-of-words model is at chance (1/6); a recurrent model has to remember what came first.
_SEQ_LENGTH = 20
_SEQ_VOCAB = 16
_SEQ_ORDERS = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))


def _make_sequences(rs: np.random.RandomState, y: np.ndarray) -> torch.Tensor:
    n = len(y)
    x = rs.randint(3, _SEQ_VOCAB, size=(n, _SEQ_LENGTH))
    positions = np.sort(np.argsort(rs.random_sample((n, _SEQ_LENGTH)), axis=1)[:, :3], axis=1)
    signals = np.array(_SEQ_ORDERS)[y]
    np.put_along_axis(x, positions, signals, axis=1)
    return torch.from_numpy(x.astype(np.int64))


_generated(
    DatasetInfo(
        name="sequences",
        title="Token order: which of A, B, C comes first",
        kind="tokens",
        task="multiclass",
        input_shape=(_SEQ_LENGTH,),
        num_classes=6,
        class_names=tuple(" ".join("ABC"[i] for i in order) for order in _SEQ_ORDERS),
        vocab_size=_SEQ_VOCAB,
        sizes=(12000, 3000, 3000),
        requires_download=False,
    ),
    seed=1004,
    make=_make_sequences,
)


# shapes: 32x32 RGB images of 10 shape classes, drawn anti-aliased from signed distance
# functions with a random size (half-extent 6..12 px), position (fully inside), rotation
# (+-12 degrees, so square/diamond and plus/x stay distinct), colours and pixel noise (sd 0.05).
# The shape is always lighter than its background (background RGB in 0..0.45, shape in 0.55..1,
# luma at least 0.35 apart), as objects in photos differ from their surroundings on average: with
# colours of either polarity the class means are all equal and the LeNet template (plain SGD,
# lr 0.001, batch 100, inputs x/255) sits on a plateau for many epochs; this way it passes 90%
# test accuracy after about 20-30 epochs, while a linear model on the pixels stays near 50%.
SHAPE_NAMES = (
    "circle",
    "ring",
    "square",
    "frame",
    "diamond",
    "triangle",
    "plus",
    "x",
    "horizontal bar",
    "vertical bar",
)


_LUMA = np.array([0.299, 0.587, 0.114])


def _box(u: np.ndarray, v: np.ndarray, a, b) -> np.ndarray:
    return np.maximum(np.abs(u) - a, np.abs(v) - b)


def _shape_sdf(shape: int, u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Signed distance in pixels (negative inside) of shape `shape` with half-extent r."""
    name = SHAPE_NAMES[shape]
    if name == "circle":
        return np.hypot(u, v) - r
    if name == "ring":
        return np.abs(np.hypot(u, v) - 0.7 * r) - 0.3 * r
    if name == "square":
        return _box(u, v, 0.8 * r, 0.8 * r)
    if name == "frame":
        m = np.maximum(np.abs(u), np.abs(v))
        return np.maximum(m - 0.85 * r, 0.45 * r - m)
    if name == "diamond":
        return (np.abs(u) + np.abs(v) - 1.1 * r) * np.float32(1 / math.sqrt(2))
    if name == "triangle":  # apex up (v grows downwards); base at v = 0.6 r, half-width 0.95 r
        norm = math.hypot(1.6, 0.95)
        side = (np.float32(1.6 / norm) * np.abs(u)) - np.float32(0.95 / norm) * (v + r)
        return np.maximum(v - 0.6 * r, side)
    if name in ("plus", "x"):
        if name == "x":
            k = np.float32(1 / math.sqrt(2))
            u, v = (u + v) * k, (u - v) * k
        w = 0.28 * r
        return np.minimum(_box(u, v, r, w), _box(u, v, w, r))
    if name == "horizontal bar":
        return _box(u, v, r, 0.3 * r)
    if name == "vertical bar":
        return _box(u, v, 0.3 * r, r)
    raise ValueError(name)


def _make_shapes(rs: np.random.RandomState, y: np.ndarray) -> torch.Tensor:
    # NumPy, not torch: single-threaded, so a worker whose cores are busy is not slowed down by
    # many small OpenMP regions, and nothing touches torch's global thread settings.
    n, size, f32 = len(y), 32, np.float32
    r = rs.uniform(6.0, 12.0, size=n)
    cx = rs.uniform(r + 1, size - r - 1)
    cy = rs.uniform(r + 1, size - r - 1)
    angle = np.deg2rad(rs.uniform(-12.0, 12.0, size=n))
    background = rs.uniform(0.0, 0.45, size=(n, 3))
    foreground = rs.uniform(0.55, 1.0, size=(n, 3))
    while True:  # redraw pairs with too little contrast (deterministic: the same stream)
        close = (foreground - background) @ _LUMA < 0.35
        if not close.any():
            break
        background[close] = rs.uniform(0.0, 0.45, size=(int(close.sum()), 3))
        foreground[close] = rs.uniform(0.55, 1.0, size=(int(close.sum()), 3))

    grid = np.arange(size, dtype=f32) + f32(0.5)
    gy, gx = grid.reshape(1, size, 1), grid.reshape(1, 1, size)
    coverage = np.empty((n, size, size), dtype=f32)
    for shape in range(len(SHAPE_NAMES)):
        sel = np.flatnonzero(y == shape)

        def col(a: np.ndarray, sel=sel) -> np.ndarray:
            return a[sel].astype(f32).reshape(-1, 1, 1)

        dx, dy = gx - col(cx), gy - col(cy)
        cos, sin = col(np.cos(angle)), col(np.sin(angle))
        u, v = cos * dx + sin * dy, cos * dy - sin * dx
        coverage[sel] = np.clip(f32(0.5) - _shape_sdf(shape, u, v, col(r)), 0.0, 1.0)

    out = np.empty((n, 3, size, size), dtype=np.uint8)
    coverage = coverage.reshape(n, 1, size * size)
    # Pixel noise: the sum of two uniform bytes (triangular, sd 0.05 of the range, at most 0.12).
    noise_scale = f32(0.05 * 255 / math.sqrt(2 * (256**2 - 1) / 12))
    for start in range(0, n, 4096):
        chunk = slice(start, min(start + 4096, n))
        bg = (background[chunk] * 255).astype(f32)[:, :, None]
        fg = (foreground[chunk] * 255).astype(f32)[:, :, None]
        image = bg + (fg - bg) * coverage[chunk]
        shape = image.shape
        noise = rs.randint(0, 256, size=shape, dtype=np.uint8).astype(f32)
        noise += rs.randint(0, 256, size=shape, dtype=np.uint8)
        noise -= f32(255)
        image += noise * noise_scale
        np.rint(image, out=image)
        out[chunk] = np.clip(image, 0, 255).astype(np.uint8).reshape(-1, 3, size, size)
    return torch.from_numpy(out)


_generated(
    DatasetInfo(
        name="shapes",
        title="Shapes: 32x32 colour images of 10 shapes",
        kind="image",
        task="multiclass",
        input_shape=(3, 32, 32),
        num_classes=len(SHAPE_NAMES),
        class_names=SHAPE_NAMES,
        vocab_size=None,
        sizes=(20000, 2000, 5000),
        requires_download=False,
    ),
    seed=1005,
    make=_make_shapes,
)


# --- Downloaded datasets (torchvision formats, read from DATA_DIR) --------------------------------

VALIDATION_FROM_TRAIN = 5000  # the last images of the official training set


def _hold_out(name, folder, x_train, y_train, x_test, y_test) -> tuple[torch.Tensor, ...]:
    for split, x, y in (("training", x_train, y_train), ("test", x_test, y_test)):
        if len(x) != len(y):
            raise DatasetMissing(name, folder, f"{len(x)} {split} images but {len(y)} labels")
        if len(y) and (int(y.min()) < 0 or int(y.max()) > 9):
            raise DatasetMissing(name, folder, f"{split} labels outside 0..9")
    if len(y_train) <= VALIDATION_FROM_TRAIN or len(y_test) == 0:
        raise DatasetMissing(name, folder, f"{len(y_train)} training and {len(y_test)} test images")
    cut = len(y_train) - VALIDATION_FROM_TRAIN
    return (
        x_train[:cut].contiguous(),
        y_train[:cut].contiguous(),
        x_train[cut:].contiguous(),
        y_train[cut:].contiguous(),
        x_test.contiguous(),
        y_test.contiguous(),
    )


# CIFAR-10's binary version: fixed records, one label byte then 3072 pixel bytes (1024 red, 1024
# green, then 1024 blue values, each 32 rows of 32). Not the python version torchvision reads,
# whose batches are pickles: no pickle is ever loaded here.
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
CIFAR10_FOLDER = "cifar-10-batches-bin"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{number}.bin" for number in range(1, 6))
CIFAR10_TEST_FILE = "test_batch.bin"
CIFAR10_RECORD = 1 + 3 * 32 * 32


def _cifar10_present(folder: Path) -> bool:
    base = folder / CIFAR10_FOLDER
    return all((base / name).is_file() for name in (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE))


def _download_cifar10(folder: Path) -> None:
    """The binary archive, fetched by torchvision (which checks its MD5, or raises), then
    unpacked with tarfile's "data" filter: regular files and folders under `folder` only."""
    from torchvision.datasets.utils import download_url

    download_url(CIFAR10_URL, str(folder), md5=CIFAR10_MD5)
    archive = folder / CIFAR10_URL.rsplit("/", 1)[1]
    with tarfile.open(archive, "r:gz") as unpacked:
        unpacked.extractall(folder, filter="data")
    archive.unlink()


def _read_cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file: its images uint8 [n, 3, 32, 32] and labels int64 [n]."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % CIFAR10_RECORD:
        raise ValueError(f"{path.name} holds {raw.size} bytes, not records of {CIFAR10_RECORD}")
    records = raw.reshape(-1, CIFAR10_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise ValueError(f"{path.name} has labels outside 0..9")
    return np.ascontiguousarray(records[:, 1:]).reshape(-1, 3, 32, 32), labels


def _read_cifar10(folder: Path) -> tuple[torch.Tensor, ...]:
    """CIFAR-10 from `folder`/cifar-10-batches-bin, as its binary archive unpacks. Structure is
    checked here (whole records, labels 0..9); the download checks the archive's MD5."""
    if not _cifar10_present(folder):
        raise DatasetMissing("cifar10", folder)
    base = folder / CIFAR10_FOLDER
    try:
        train = [_read_cifar10_batch(base / name) for name in CIFAR10_TRAIN_FILES]
        x_test, y_test = _read_cifar10_batch(base / CIFAR10_TEST_FILE)
    except (OSError, ValueError) as exc:
        raise DatasetMissing("cifar10", folder, str(exc)) from exc
    x_train = torch.from_numpy(np.concatenate([x for x, _ in train]))
    y_train = torch.from_numpy(np.concatenate([y for _, y in train]))
    return _hold_out(
        "cifar10", folder, x_train, y_train, torch.from_numpy(x_test), torch.from_numpy(y_test)
    )


def _mnist_class(name: str):
    from torchvision import datasets

    return {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST}[name]


def _read_mnist(name: str, folder: Path) -> tuple[torch.Tensor, ...]:
    """MNIST or Fashion-MNIST from `folder`/<MNIST|FashionMNIST>/raw (the idx files), through
    torchvision with download=False; images become uint8 [N, 1, 28, 28]."""
    cls = _mnist_class(name)
    try:
        train = cls(root=str(folder), train=True, download=False)
        test = cls(root=str(folder), train=False, download=False)
    except RuntimeError as exc:
        if "not found" in str(exc).lower():
            raise DatasetMissing(name, folder) from None
        raise DatasetMissing(name, folder, str(exc)) from exc
    except (OSError, AssertionError, TypeError, ValueError) as exc:
        raise DatasetMissing(name, folder, str(exc) or type(exc).__name__) from exc
    return _hold_out(
        name,
        folder,
        train.data.unsqueeze(1),
        train.targets.long(),
        test.data.unsqueeze(1),
        test.targets.long(),
    )


_CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
_FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

_register(
    DatasetInfo(
        name="cifar10",
        title="CIFAR-10: 32x32 colour photos in 10 classes",
        kind="image",
        task="multiclass",
        input_shape=(3, 32, 32),
        num_classes=10,
        class_names=_CIFAR10_CLASSES,
        vocab_size=None,
        sizes=(45000, 5000, 10000),
        requires_download=True,
    )
)(_read_cifar10)

for _name, _title, _classes in (
    ("mnist", "MNIST: 28x28 handwritten digits", tuple(str(d) for d in range(10))),
    ("fashion_mnist", "Fashion-MNIST: 28x28 photos of clothing", _FASHION_CLASSES),
):
    _register(
        DatasetInfo(
            name=_name,
            title=_title,
            kind="image",
            task="multiclass",
            input_shape=(1, 28, 28),
            num_classes=10,
            class_names=_classes,
            vocab_size=None,
            sizes=(55000, 5000, 10000),
            requires_download=True,
        )
    )(lambda folder, _n=_name: _read_mnist(_n, folder))


def download_urls(name: str) -> tuple[str, ...]:
    """Where `name` is downloaded from (empty for generated and bundled datasets)."""
    if not _entry(name).info.requires_download:
        return ()
    if name == "cifar10":
        return (CIFAR10_URL,)
    cls = _mnist_class(name)
    return tuple(cls.mirrors)


def download_dataset(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Download `name` into `data_dir` (default: `default_data_dir()`) with torchvision, which
    checks the files' MD5 (cifar10: its binary archive, unpacked here) and skips what is already
    there; then check it loads.

    Returns the data directory. Generated and bundled datasets need nothing: returns at once.
    Raises `DatasetDownloadFailed` (no internet, server error, bad checksum).
    """
    info = dataset_info(name)
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    folder = folder.expanduser().resolve()
    if not info.requires_download:
        return folder
    from urllib.error import URLError

    folder.mkdir(parents=True, exist_ok=True)
    try:
        if name == "cifar10":
            if not _cifar10_present(folder):
                _download_cifar10(folder)
        else:
            cls = _mnist_class(name)
            for train in (True, False):
                cls(root=str(folder), train=train, download=True)
    except (URLError, OSError, RuntimeError, tarfile.TarError) as exc:
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        reason = " ".join(str(reason).split())  # torchvision's MNIST message spans lines
        raise DatasetDownloadFailed(name, download_urls(name), reason) from exc
    load_dataset(name, data_dir=folder)  # raises DatasetMissing if what arrived does not load
    return folder
