"""Secret splits and hidden inputs (runtime/ingest/splits.py): the parts follow the plan class by
class and change with the secret; the hidden test inputs of a public dataset match none of the
published ones (a table of their hashes finds nothing) and keep the task (a nearest-neighbour
classifier scores the same on them)."""

import hashlib
import secrets

import numpy as np
import pytest
from sklearn.datasets import load_digits

from runtime.ingest.splits import (
    PRIVATE,
    PUBLIC,
    TRAIN,
    VALIDATION,
    SplitPlan,
    hidden_inputs,
    split_parts,
)

SECRET = bytes(range(32))
OTHER = bytes(range(1, 33))


def test_each_class_is_split_in_the_plans_proportions():
    labels = np.array(["a"] * 500 + ["b"] * 300 + ["c"] * 200 + ["d"] * 7)
    parts = split_parts(labels, secret=SECRET, plan=SplitPlan(0.1, 0.1, 0.1))
    counts = {
        label: [int(((labels == label) & (parts == part)).sum()) for part in range(4)]
        for label in "abcd"
    }
    assert counts == {
        "a": [350, 50, 50, 50],
        "b": [210, 30, 30, 30],
        "c": [140, 20, 20, 20],
        "d": [5, 1, 1, 0],  # 0.7 each: two of the three go, largest remainder first (in order)
    }


def test_the_parts_are_the_secrets_and_not_the_datas():
    labels = np.repeat(np.arange(10), 100)
    parts = split_parts(labels, secret=SECRET)
    assert np.array_equal(parts, split_parts(labels, secret=SECRET))  # the same, every time
    other = split_parts(labels, secret=OTHER)
    hidden = np.isin(parts, (PUBLIC, PRIVATE))
    assert (hidden & np.isin(other, (PUBLIC, PRIVATE))).sum() < 0.4 * hidden.sum()
    assert hidden.sum() == 200
    # Not a slice of the data's order: the hidden examples are spread through each class.
    first_of_class = np.arange(1000) % 100 < 20
    assert (hidden & first_of_class).sum() < 0.5 * hidden.sum()
    assert set(np.unique(parts)) == {TRAIN, VALIDATION, PUBLIC, PRIVATE}


def test_a_short_secret_and_a_plan_without_training_are_refused():
    with pytest.raises(ValueError, match="at least 32 bytes"):
        split_parts([0, 1], secret=b"short")
    with pytest.raises(ValueError, match="must leave some for training"):
        SplitPlan(0.4, 0.3, 0.3)


def _hashes(x: np.ndarray) -> set[str]:
    return {hashlib.sha256(np.ascontiguousarray(sample).tobytes()).hexdigest() for sample in x}


def test_hidden_digits_match_no_published_one_and_keep_the_task():
    digits = load_digits()
    x = digits.images.astype(np.float32)  # (1797, 8, 8), 0..16
    y = digits.target
    parts = split_parts(y, secret=SECRET, plan=SplitPlan(0.0, 0.15, 0.15))
    train, test = parts == TRAIN, np.isin(parts, (PUBLIC, PRIVATE))
    hidden = hidden_inputs(x[test], secret=SECRET, kind="image")
    assert hidden.shape == x[test].shape and hidden.dtype == np.float32
    published = _hashes(x)  # every published image: the table a learner could embed
    assert not (_hashes(hidden) & published)
    assert np.array_equal(hidden, hidden_inputs(x[test], secret=SECRET, kind="image"))
    assert not np.array_equal(hidden, hidden_inputs(x[test], secret=OTHER, kind="image"))

    def nearest_neighbour_accuracy(queries: np.ndarray) -> float:
        known = x[train].reshape(train.sum(), -1)
        flat = queries.reshape(len(queries), -1)
        distances = ((flat[:, None, :] - known[None, :, :]) ** 2).sum(axis=2)
        return float((y[train][distances.argmin(axis=1)] == y[test]).mean())

    original, perturbed = nearest_neighbour_accuracy(x[test]), nearest_neighbour_accuracy(hidden)
    assert original > 0.95
    assert perturbed > original - 0.02  # the same task: a point or two at most


def test_hidden_uint8_images_stay_close_and_none_is_unchanged():
    rng = np.random.default_rng(3)
    images = np.zeros((200, 16, 16, 3), np.uint8)  # flat images: shifts change nothing
    images[100:] = rng.integers(0, 256, size=(100, 16, 16, 3), dtype=np.uint8)
    hidden = hidden_inputs(images, secret=secrets.token_bytes(32), kind="image")
    assert hidden.dtype == np.uint8 and hidden.shape == images.shape
    assert not (_hashes(hidden) & _hashes(images))
    assert np.abs(hidden[:100].astype(int) - images[:100]).mean() < 4  # noise only


def test_hidden_numbers_get_a_little_noise():
    x = np.random.default_rng(4).normal(5, 2, size=(500, 3)).astype(np.float32)
    hidden = hidden_inputs(x, secret=SECRET, kind="numbers")
    assert hidden.dtype == np.float32
    assert not (_hashes(hidden) & _hashes(x))
    assert 0.005 < np.abs(hidden - x).mean() / x.std() < 0.02


def test_hidden_images_of_16_pixels_or_more_are_shifted_by_at_most_one():
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, size=(300, 32, 32, 3), dtype=np.uint8)
    hidden = hidden_inputs(images, secret=SECRET, kind="image").astype(int)
    best = []
    for index in range(len(images)):  # the shift that explains each best: within one pixel
        errors = {
            (dy, dx): np.abs(
                hidden[index, 2:-2, 2:-2]
                - np.roll(images[index], (dy, dx), (0, 1))[2:-2, 2:-2].astype(int)
            ).mean()
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
        }
        best.append(min(errors, key=errors.get))
        assert min(errors.values()) < 8  # noise of 1.5 % of 255 (about 3 levels on average)
    assert len(set(best)) == 9  # every shift happens
