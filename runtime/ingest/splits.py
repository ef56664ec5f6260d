"""Splits with a secret: which examples train, which validate, and which are the two hidden
test parts (public: scored during the assignment; private: the grade, revealed after the due
date), drawn from a per-assignment secret that never leaves the trusted side.

The parts are stratified (each class is split in the plan's proportions, the remainders given
out largest first) and drawn by a generator seeded with the secret (256 bits through NumPy's
SeedSequence), so that they cannot be rebuilt from public code and the data: the same data
with another secret gives other parts. For public datasets, whose published test labels a
learner could embed, `hidden_inputs` perturbs the hidden test inputs with the secret (a shift
of at most one pixel for images of 16 pixels a side or more, and a little noise; a little noise
for numbers): the task is the same, and a table of the published inputs' hashes finds none of
them.
"""

import hashlib
import hmac
from dataclasses import dataclass

import numpy as np

PARTS = ("train", "validation", "public", "private")
TRAIN, VALIDATION, PUBLIC, PRIVATE = range(4)
SECRET_BYTES = 32
MIN_SIDE_TO_SHIFT = 16  # smaller images (8 x 8 digits) get noise only: a pixel is too much


@dataclass(frozen=True)
class SplitPlan:
    """The fractions of each class for the parts other than train (which has the rest)."""

    validation: float = 0.1
    public: float = 0.1
    private: float = 0.1

    def __post_init__(self):
        fractions = (self.validation, self.public, self.private)
        if any(not 0 <= f < 1 for f in fractions) or sum(fractions) >= 1:
            raise ValueError(f"the parts' fractions {fractions} must leave some for training")


def secret_rng(secret: bytes, purpose: str) -> np.random.Generator:
    if len(secret) < SECRET_BYTES:
        raise ValueError(f"a split secret has at least {SECRET_BYTES} bytes")
    digest = hmac.new(secret, purpose.encode(), hashlib.sha256).digest()
    return np.random.default_rng(np.random.SeedSequence(int.from_bytes(digest, "big")))


def split_parts(labels, *, secret: bytes, plan: SplitPlan = SplitPlan()) -> np.ndarray:
    """The part (TRAIN, VALIDATION, PUBLIC or PRIVATE) of each example, by its label."""
    labels = np.asarray(labels)
    parts = np.full(len(labels), TRAIN, dtype=np.int8)
    rng = secret_rng(secret, "split")
    fractions = np.array([plan.validation, plan.public, plan.private])
    for label in np.unique(labels):  # sorted: the same order for the same data
        members = np.flatnonzero(labels == label)
        members = members[rng.permutation(len(members))]
        wanted = fractions * len(members)
        counts = np.floor(wanted).astype(int)
        for index in np.argsort(-(wanted - counts), kind="stable"):  # largest remainders
            if counts.sum() >= round(wanted.sum()):
                break
            counts[index] += 1
        start = 0
        for part, count in zip((VALIDATION, PUBLIC, PRIVATE), counts, strict=True):
            parts[members[start : start + count]] = part
            start += count
    return parts


def test_halves(labels, *, secret: bytes) -> np.ndarray:
    """PUBLIC or PRIVATE for each example of a built-in dataset's test split: each class halved
    with the secret (of an odd count, the one left over is private)."""
    labels = np.asarray(labels)
    parts = np.full(len(labels), PRIVATE, dtype=np.int8)
    rng = secret_rng(secret, "test-halves")
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        members = members[rng.permutation(len(members))]
        parts[members[: len(members) // 2]] = PUBLIC
    return parts


def hidden_inputs(
    x: np.ndarray, *, secret: bytes, kind: str, step: float | None = None
) -> np.ndarray:
    """`x` (the hidden test inputs, samples first) perturbed with the secret, keeping the task.

    kind "image": uint8 or float images (N, H, W) or (N, H, W, C) or (N, C, H, W) with the
    channels last or first as given: each shifted by -1, 0 or +1 pixel on each axis (the edge
    repeated) when it is at least MIN_SIDE_TO_SHIFT pixels a side, then noise of 1.5 % of the
    value range, never zero everywhere: no sample comes out equal to its original. Float images
    whose values lie on a grid of `step` (digits' sixteenths) also never round back to their
    original on that grid: where the noise would, one value moves by a whole step. kind
    "numbers": noise of 1 % of each feature's spread."""
    rng = secret_rng(secret, f"hidden-inputs:{kind}")
    if kind == "numbers":
        spread = np.maximum(x.std(axis=0, keepdims=True), 1e-6)
        noise = rng.normal(0, 0.01, size=x.shape) * spread
        return (x + noise).astype(x.dtype)
    if kind != "image":
        raise ValueError(f"kind is 'image' or 'numbers', not {kind!r}")
    channels_first = x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3)
    images = np.moveaxis(x, 1, -1) if channels_first else x
    out = images.copy()
    if min(images.shape[1:3]) >= MIN_SIDE_TO_SHIFT:
        shifts = rng.integers(-1, 2, size=(len(images), 2))
        for index, (dy, dx) in enumerate(shifts):
            out[index] = _shifted(images[index], int(dy), int(dx))
    top = 255.0 if images.dtype == np.uint8 else float(max(images.max(), 1e-6))
    noisy = out.astype(np.float64) + rng.normal(0, 0.015 * top, size=out.shape)
    if images.dtype == np.uint8:
        result = np.clip(np.round(noisy), 0, 255).astype(np.uint8)
    else:
        result = noisy.astype(images.dtype)
    flat = result.reshape(len(result), -1)
    original = images.reshape(len(images), -1)
    if step is None:
        same = np.flatnonzero((flat == original).all(axis=1))
        move = 1
    else:  # the samples that rounding to the grid would give back
        same = np.flatnonzero((np.round(flat / step) * step == original).all(axis=1))
        move = step
    for index in same:  # one value moved by one step (a grey level), towards the middle
        where = rng.integers(flat.shape[1])
        sign = 1 if original[index, where] < top / 2 else -1
        flat[index, where] = original[index, where] + sign * move
    return np.moveaxis(result, -1, 1) if channels_first else result


def _shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    pad = [(1, 1), (1, 1)] + [(0, 0)] * (image.ndim - 2)
    padded = np.pad(image, pad, mode="edge")
    height, width = image.shape[:2]
    return padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]
