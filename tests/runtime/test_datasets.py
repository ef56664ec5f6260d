"""The datasets registry and the generated/bundled datasets: shapes, splits, determinism, and that
each task is learnable the way its exercise needs (and not by a shortcut)."""

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from runtime.datasets import (
    PRIVATE_PART,
    PUBLIC_PART,
    DatasetInfo,
    UnknownDataset,
    clear_dataset_cache,
    dataset_info,
    dataset_names,
    load_dataset,
)

ROOT = Path(__file__).resolve().parents[2]
IN_MEMORY = ["digits", "xor", "moons", "spirals", "sequences", "shapes"]

EXPECTED = {
    # name: (kind, task, input_shape, num_classes, sizes, x dtype)
    "digits": ("vector", "multiclass", (64,), 10, (1197, 300, 300), torch.float32),
    "xor": ("vector", "binary", (2,), 2, (800, 200, 200), torch.float32),
    "moons": ("vector", "binary", (2,), 2, (1000, 250, 250), torch.float32),
    "spirals": ("vector", "multiclass", (2,), 3, (2100, 450, 450), torch.float32),
    "sequences": ("tokens", "multiclass", (20,), 6, (12000, 3000, 3000), torch.int64),
    "shapes": ("image", "multiclass", (3, 32, 32), 10, (20000, 2000, 5000), torch.uint8),
}


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_dataset_cache()
    yield
    clear_dataset_cache()


def splits_of(data):
    return {"train": data.train, "val": data.val, "test": data.test}


def fingerprint(data) -> str:
    digest = hashlib.sha256()
    for split in (data.train, data.val, data.test):
        for tensor in (split.x, split.y):
            digest.update(str((tensor.dtype, tuple(tensor.shape))).encode())
            digest.update(tensor.cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


# --- The registry ---------------------------------------------------------------------------------


def test_the_catalogue_lists_every_dataset_in_order():
    assert dataset_names() == [
        "digits",
        "xor",
        "moons",
        "spirals",
        "sequences",
        "shapes",
        "cifar10",
        "mnist",
        "fashion_mnist",
    ]
    assert [n for n in dataset_names() if dataset_info(n).requires_download] == [
        "cifar10",
        "mnist",
        "fashion_mnist",
    ]


def test_an_unknown_name_is_a_key_error_that_lists_the_known_ones():
    message = (
        "Unknown dataset 'cifar100'. Known datasets: digits, xor, moons, spirals, sequences, "
        "shapes, cifar10, mnist, fashion_mnist."
    )
    with pytest.raises(UnknownDataset) as caught:
        dataset_info("cifar100")
    assert str(caught.value) == message
    assert isinstance(caught.value, KeyError)
    with pytest.raises(UnknownDataset, match="Unknown dataset 'nope'"):
        load_dataset("nope")


@pytest.mark.parametrize("name", dataset_names())
def test_info_is_consistent(name):
    info = dataset_info(name)
    assert isinstance(info, DatasetInfo)
    assert info.name == name
    assert info.title
    assert info.kind in {"image", "vector", "tokens"}
    assert info.task in {"multiclass", "binary"}
    assert len(info.class_names) == info.num_classes == len(set(info.class_names))
    assert (info.task == "binary") == (info.num_classes == 2)
    assert (info.vocab_size is not None) == (info.kind == "tokens")
    assert len(info.sizes) == 3 and all(n > 0 for n in info.sizes)


def test_downloaded_datasets_are_described_without_their_files():
    cifar, mnist, fashion = (dataset_info(n) for n in ("cifar10", "mnist", "fashion_mnist"))
    assert (cifar.input_shape, cifar.sizes) == ((3, 32, 32), (45000, 5000, 10000))
    assert cifar.class_names[:3] == ("airplane", "automobile", "bird")
    assert (mnist.input_shape, mnist.sizes) == ((1, 28, 28), (55000, 5000, 10000))
    assert mnist.class_names == tuple("0123456789")
    assert fashion.class_names[0] == "T-shirt/top" and fashion.class_names[-1] == "Ankle boot"
    assert fashion.sizes == (55000, 5000, 10000)


# --- Every in-memory dataset ----------------------------------------------------------------------


@pytest.mark.parametrize("name", IN_MEMORY)
def test_shapes_dtypes_and_sizes_match_the_info(name):
    kind, task, input_shape, num_classes, sizes, dtype = EXPECTED[name]
    data = load_dataset(name)
    info = data.info
    assert info == dataset_info(name)
    assert (info.kind, info.task, info.input_shape, info.num_classes) == (
        kind,
        task,
        input_shape,
        num_classes,
    )
    assert info.sizes == sizes
    assert info.requires_download is False
    for split, size in zip((data.train, data.val, data.test), sizes, strict=True):
        assert split.x.shape == (size, *input_shape)
        assert split.x.dtype == dtype
        assert split.y.shape == (size,)
        assert split.y.dtype == torch.int64
        assert split.x.device.type == split.y.device.type == "cpu"
        assert split.x.is_contiguous()
        assert int(split.y.min()) >= 0 and int(split.y.max()) < num_classes


@pytest.mark.parametrize("name", IN_MEMORY)
def test_every_class_is_in_every_split(name):
    data = load_dataset(name)
    k = data.info.num_classes
    counts = {key: torch.bincount(s.y, minlength=k).tolist() for key, s in splits_of(data).items()}
    if name == "digits":  # a stratified split of the bundled 1797 images
        assert counts["val"] == counts["test"] == [30] * 10
        assert counts["train"] == [118, 122, 117, 123, 121, 122, 121, 119, 114, 120]
    else:  # generated: exactly balanced
        for key, size in zip(("train", "val", "test"), data.info.sizes, strict=True):
            assert counts[key] == [size // k] * k


@pytest.mark.parametrize("name", IN_MEMORY)
def test_no_sample_is_in_two_splits(name):
    data = load_dataset(name)
    rows = [
        {row.tobytes() for row in s.x.reshape(len(s.x), -1).numpy()}
        for s in (data.train, data.val, data.test)
    ]
    assert [len(r) for r in rows] == list(data.info.sizes)  # no duplicates within a split either
    assert not (rows[0] & rows[1]) and not (rows[0] & rows[2]) and not (rows[1] & rows[2])


@pytest.mark.parametrize("name", IN_MEMORY)
def test_loading_again_gives_the_cached_tensors_and_reloading_the_same_data(name):
    first = load_dataset(name)
    second = load_dataset(name, data_dir="/somewhere/else")  # in-memory data ignores data_dir
    assert second is not first and second.train is not first.train  # fresh wrappers ...
    for a, b in zip(splits_of(first).values(), splits_of(second).values(), strict=True):
        assert a.x is b.x and a.y is b.y  # ... around the same tensors
    clear_dataset_cache()
    third = load_dataset(name)
    assert third.train.x is not first.train.x
    for a, b in zip(splits_of(first).values(), splits_of(third).values(), strict=True):
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)


@pytest.mark.parametrize("name", IN_MEMORY)
def test_the_global_random_state_neither_matters_nor_changes(name):
    reference = fingerprint(load_dataset(name))
    clear_dataset_cache()
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    torch_state, numpy_state, python_state = (
        torch.get_rng_state(),
        np.random.get_state(),
        random.getstate(),
    )
    assert fingerprint(load_dataset(name)) == reference
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = np.random.get_state()
    assert after[0] == numpy_state[0] and np.array_equal(after[1], numpy_state[1])
    assert after[2:] == numpy_state[2:]
    assert random.getstate() == python_state


def test_another_process_gets_the_same_data_without_importing_django():
    script = f"""
import hashlib, json, sys
from runtime.datasets import load_dataset
from tests.runtime.test_datasets import fingerprint
names = {IN_MEMORY!r}
print(json.dumps({{
    "fingerprints": {{n: fingerprint(load_dataset(n)) for n in names}},
    "django": any(m == "django" or m.startswith("django.") for m in sys.modules),
}}))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["django"] is False
    assert result["fingerprints"] == {n: fingerprint(load_dataset(n)) for n in IN_MEMORY}


def test_generated_datasets_write_nothing_to_disk(tmp_path, monkeypatch):
    for variable in ("DATA_DIR", "VAR_DIR"):
        monkeypatch.setenv(variable, str(tmp_path / variable))
    monkeypatch.chdir(tmp_path)
    for name in IN_MEMORY:
        load_dataset(name)
    assert list(tmp_path.iterdir()) == []


def test_the_data_is_pinned():
    """Fixed values: a change to a generator would silently change every learner's results."""
    first_labels = {
        "digits": [7, 3, 9, 2, 0, 5, 1, 9],
        "xor": [1, 1, 0, 0, 0, 0, 0, 0],
        "moons": [1, 0, 0, 1, 0, 0, 1, 1],
        "spirals": [1, 1, 0, 1, 1, 0, 1, 2],
        "sequences": [5, 2, 3, 4, 5, 3, 5, 1],
        "shapes": [7, 8, 9, 1, 6, 5, 1, 9],
    }
    for name, labels in first_labels.items():
        assert load_dataset(name).train.y[:8].tolist() == labels, name
    assert load_dataset("xor").train.x[0].tolist() == pytest.approx([-0.9938379, 1.0272138])
    assert load_dataset("moons").train.x[0].tolist() == pytest.approx([0.4981904, -0.7129611])
    assert load_dataset("spirals").train.x[0].tolist() == pytest.approx([-0.1869773, -0.7632129])
    sequences = load_dataset("sequences")
    assert sequences.train.x[0].tolist()[:10] == [4, 4, 15, 14, 9, 13, 13, 10, 2, 1]
    assert sequences.train.x[0].tolist()[10:] == [7, 12, 0, 13, 4, 14, 7, 15, 11, 14]
    assert hashlib.sha256(sequences.train.x.numpy().tobytes()).hexdigest() == (
        "00300e90127d4b14daf0c2d3c0fad7ae0d9a130ec6e3a15a7b88198e1bf91665"
    )
    shapes = load_dataset("shapes")
    assert shapes.train.x.double().mean().item() == pytest.approx(80.54, abs=0.01)


def test_a_non_cpu_device_gets_its_own_cached_copy():
    on_meta = load_dataset("xor", device="meta")
    assert on_meta.train.x.device.type == "meta" and on_meta.test.y.device.type == "meta"
    assert load_dataset("xor", device=torch.device("meta")).train.x is on_meta.train.x
    assert load_dataset("xor").train.x.device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_a_gpu_the_tensors_live_there_across_calls():
    data = load_dataset("shapes", device="cuda")
    assert data.train.x.is_cuda and data.test.y.is_cuda
    assert load_dataset("shapes", device="cuda:0").train.x is data.train.x
    assert torch.equal(data.val.x.cpu(), load_dataset("shapes").val.x)


# --- What each dataset is -------------------------------------------------------------------------


def test_digits_are_the_bundled_images_scaled_to_0_1():
    data = load_dataset("digits")
    x = torch.cat([data.train.x, data.val.x, data.test.x])
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert torch.equal(x * 16, (x * 16).round())  # 17 grey levels, as in the original
    assert len(x) == 1797


def test_xor_points_sit_near_the_corners_and_the_label_is_the_xor_of_the_signs():
    for split in splits_of(load_dataset("xor")).values():
        x, y = split.x, split.y
        assert bool(((x.abs() >= 0.55) & (x.abs() <= 1.45)).all())
        assert torch.equal(y, ((x[:, 0] > 0) != (x[:, 1] > 0)).long())
        # the same number of points at each of the four corners
        corner = (x[:, 0] > 0).long() * 2 + (x[:, 1] > 0).long()
        assert torch.bincount(corner).tolist() == [len(y) // 4] * 4


def test_the_xor_templates_two_relu_units_can_classify_every_point():
    # linear 2->2, relu, linear 2->1 with these weights: 1 - relu(x1 + x2) - relu(-x1 - x2) > 0
    # exactly for opposite signs, on every point of every split (the cut-off noise guarantees it).
    hidden = nn.Linear(2, 2)
    out = nn.Linear(2, 1)
    with torch.no_grad():
        hidden.weight.copy_(torch.tensor([[1.0, 1.0], [-1.0, -1.0]]))
        hidden.bias.zero_()
        out.weight.copy_(torch.tensor([[-1.0, -1.0]]))
        out.bias.fill_(1.0)
    model = nn.Sequential(hidden, nn.ReLU(), out)
    for split in splits_of(load_dataset("xor")).values():
        with torch.no_grad():
            predicted = (model(split.x).squeeze(1) > 0).long()
        assert torch.equal(predicted, split.y)


def test_moons_and_spirals_stay_in_range():
    moons = torch.cat([s.x for s in splits_of(load_dataset("moons")).values()])
    assert float(moons.abs().max()) < 2.5
    assert moons.mean(0).abs().max() < 0.05  # centred
    spirals = torch.cat([s.x for s in splits_of(load_dataset("spirals")).values()])
    radius = spirals.norm(dim=1)
    assert float(radius.min()) >= 0.05 - 1e-6 and float(radius.max()) <= 1.0 + 1e-6


def test_the_sequence_class_is_the_order_of_a_b_and_c():
    data = load_dataset("sequences")
    assert data.info.vocab_size == 16
    assert data.info.class_names == ("A B C", "A C B", "B A C", "B C A", "C A B", "C B A")
    orders = [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]
    for split in splits_of(data).values():
        x = split.x
        assert int(x.min()) == 0 and int(x.max()) == 15
        for token in (0, 1, 2):
            assert bool(((x == token).sum(1) == 1).all())  # each signal token exactly once
        order = torch.stack([(x == t).long().argmax(1) for t in (0, 1, 2)], 1).argsort(1)
        expected = torch.tensor([orders.index(tuple(o)) for o in order.tolist()])
        assert torch.equal(expected, split.y)


def test_shapes_are_light_shapes_on_darker_backgrounds_with_noise():
    data = load_dataset("shapes")
    assert data.info.class_names == (
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
    x = data.test.x.float()
    luma = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1).flatten(1)
    corners = luma[:, [0, 31, 32 * 31, 32 * 32 - 1]].mean(1)  # shapes never reach the corners
    assert bool((luma.amax(1) - corners > 80).all())
    assert int(x.min()) == 0 and int(x.max()) == 255
    # light noise: neighbouring background pixels differ, but little
    step = (x[:, :, 0, 1:4] - x[:, :, 0, 0:3]).abs()
    assert 5 < float(step.mean()) < 20


# --- Learnable, and not by a shortcut -------------------------------------------------------------


def fit(model, x, y, *, steps, lr, loss=nn.functional.cross_entropy):
    torch.manual_seed(0)
    for parameter in model.parameters():
        if parameter.dim() > 1:
            nn.init.xavier_uniform_(parameter)
        else:
            nn.init.zeros_(parameter)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        loss(model(x), y).backward()
        optimizer.step()
    return model


def accuracy(model, split, features=lambda x: x) -> float:
    with torch.no_grad():
        return (model(features(split.x)).argmax(1) == split.y).float().mean().item()


def test_a_linear_model_learns_digits():
    data = load_dataset("digits")
    model = fit(nn.Linear(64, 10), data.train.x, data.train.y, steps=300, lr=0.05)
    assert accuracy(model, data.test) > 0.9


@pytest.mark.parametrize(("name", "at_most"), [("xor", 0.76), ("moons", 0.9), ("spirals", 0.6)])
def test_a_linear_model_cannot_solve_the_2d_tasks(name, at_most):
    data = load_dataset(name)
    k = data.info.num_classes
    model = fit(nn.Linear(2, k), data.train.x, data.train.y, steps=300, lr=0.05)
    assert accuracy(model, data.test) <= at_most


def test_a_small_mlp_solves_spirals():
    data = load_dataset("spirals")
    model = nn.Sequential(
        nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3)
    )
    fit(model, data.train.x, data.train.y, steps=600, lr=0.01)
    assert accuracy(model, data.test) > 0.95


def test_a_bag_of_words_model_is_at_chance_on_sequences():
    data = load_dataset("sequences")

    def counts(x):
        return nn.functional.one_hot(x, 16).sum(1).float()

    model = fit(nn.Linear(16, 6), counts(data.train.x), data.train.y, steps=200, lr=0.05)
    assert accuracy(model, data.test, counts) < 0.2  # chance is 1/6


# --- The hidden test split, drawn with an assignment's secret (issue 15) --------------------------

SECRET_A, SECRET_B = bytes(range(32)), bytes(range(1, 33))
GENERATED = ["xor", "moons", "spirals", "sequences", "shapes"]


@pytest.mark.parametrize("name", GENERATED)
def test_a_generated_datasets_hidden_test_split_is_drawn_from_the_secret(name):
    published = load_dataset(name)
    a, again, b = (load_dataset(name, secret=s) for s in (SECRET_A, SECRET_A, SECRET_B))
    # train and validation are the published ones; the test split is new, the same task
    assert torch.equal(a.train.x, published.train.x) and torch.equal(a.val.y, published.val.y)
    assert a.test.x.shape == published.test.x.shape and a.test.x.dtype == published.test.x.dtype
    counts = torch.bincount(a.test.y, minlength=a.info.num_classes).tolist()
    assert counts == torch.bincount(published.test.y, minlength=a.info.num_classes).tolist()
    assert not torch.equal(a.test.x, published.test.x)  # public code cannot rebuild it
    assert not torch.equal(a.test.x, b.test.x)  # another assignment's is another
    assert torch.equal(a.test.x, again.test.x) and torch.equal(a.test.y, again.test.y)
    assert a.info.sizes == published.info.sizes


def test_the_generated_hidden_test_keeps_the_task():
    # xor: the label is still the xor of the signs, every point near a corner
    x, y = load_dataset("xor", secret=SECRET_A).test.x, load_dataset("xor", secret=SECRET_A).test.y
    assert torch.equal(y, ((x[:, 0] > 0) != (x[:, 1] > 0)).long())
    # sequences: the class is still the order of A, B and C
    data = load_dataset("sequences", secret=SECRET_A)
    order = torch.stack([(data.test.x == t).long().argmax(1) for t in (0, 1, 2)], 1).argsort(1)
    orders = [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]
    assert torch.equal(torch.tensor([orders.index(tuple(o)) for o in order.tolist()]), data.test.y)


@pytest.mark.parametrize("name", IN_MEMORY)
def test_the_hidden_test_is_halved_per_class_into_the_public_and_private_parts(name):
    data = load_dataset(name, secret=SECRET_A)
    assert load_dataset(name).test_part is None  # without a secret: one part
    part = data.test_part
    assert part.dtype == torch.int8 and part.shape == data.test.y.shape
    for label in range(data.info.num_classes):
        of_class = part[data.test.y == label]
        public = int((of_class == PUBLIC_PART).sum())
        assert public == len(of_class) // 2
        assert int((of_class == PRIVATE_PART).sum()) == len(of_class) - public
    other = load_dataset(name, secret=SECRET_B)
    assert not torch.equal(part, other.test_part) or not torch.equal(data.test.y, other.test.y)


def digit_keys(rows: np.ndarray) -> set[str]:
    """A learner's table of digits: each image's hash, exact and rounded to sixteenths."""
    exact = {hashlib.sha256(r.astype(np.float32).tobytes()).hexdigest() for r in rows}
    grid = {hashlib.sha256(np.round(r * 16).astype(np.int8).tobytes()).hexdigest() for r in rows}
    return exact | grid


def test_a_table_of_the_published_digits_finds_none_of_the_hidden_inputs():
    from sklearn.datasets import load_digits

    table = digit_keys(load_digits().data.astype(np.float32) / 16)
    published = load_dataset("digits")
    assert len(digit_keys(published.test.x.numpy()) & table) > 0  # the table works on them
    for secret in (SECRET_A, SECRET_B):
        hidden = load_dataset("digits", secret=secret)
        assert torch.equal(hidden.test.y, published.test.y)
        assert digit_keys(hidden.test.x.numpy()) & table == set()
        # the task is kept: each hidden input is its published one moved a little
        moved = (hidden.test.x - published.test.x).abs()
        assert float(moved.max()) <= 0.1 and float(moved.mean()) < 0.02


def test_a_linear_model_still_learns_the_perturbed_digits():
    data = load_dataset("digits", secret=SECRET_A)
    torch.manual_seed(0)
    model = nn.Linear(64, 10)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(200):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(data.train.x), data.train.y).backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = (model(data.test.x).argmax(1) == data.test.y).float().mean().item()
    assert accuracy > 0.9


def test_a_worker_keeps_a_few_hidden_tests_and_forgets_the_oldest():
    from runtime import datasets

    secrets = [bytes([n]) * 32 for n in range(datasets.HIDDEN_TESTS_KEPT + 2)]
    for secret in secrets:
        load_dataset("xor", secret=secret)
    assert len(datasets._hidden_tests) == datasets.HIDDEN_TESTS_KEPT
    first = load_dataset("xor", secret=secrets[-1]).test.x
    assert load_dataset("xor", secret=secrets[-1]).test.x is first  # kept: not drawn again
