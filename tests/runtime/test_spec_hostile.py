"""Absurd and hostile specs are refused cheaply: no tensor, no big allocation, no torch at all."""

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
import torch

from runtime.errors import SpecInvalid
from runtime.spec import check_spec, parse_spec

ROOT = Path(__file__).resolve().parents[2]
IMAGE = {"input_shape": (3, 32, 32), "kind": "image", "task": "multiclass", "num_classes": 10}
TEN = {"type": "linear", "out_features": 10}
FLAT = {"type": "flatten"}


def spec(*layers, **training):
    training = {
        "optimizer": {"type": "adam", "lr": 0.01},
        "epochs": 5,
        "batch_size": 32,
        **training,
    }
    return {"version": 1, "layers": list(layers), "training": training}


def nest(depth):
    layer = {"type": "relu"}
    for _ in range(depth):
        layer = {"type": "residual", "layers": [layer]}
    return layer


def with_lr(lr):
    document = spec(FLAT, TEN)
    document["training"]["optimizer"]["lr"] = lr
    return document


WIDE = {"type": "linear", "out_features": 65536}

HOSTILE = {
    "negative size": spec({"type": "conv2d", "out_channels": -6, "kernel_size": -5}, FLAT, TEN),
    "10**12 units": spec(FLAT, {"type": "linear", "out_features": 10**12}),
    "a 4000-digit size": spec(FLAT, {"type": "linear", "out_features": 10**4000}),
    "100-deep nesting": spec(nest(100), FLAT, TEN),
    "100-deep nesting as text": json.dumps(spec(nest(100), FLAT, TEN)),
    "NaN lr": with_lr(float("nan")),
    "infinite lr": with_lr(float("inf")),
    "NaN lr as text": json.dumps(with_lr(0.5)).replace("0.5", "NaN"),
    "1e999 lr as text": json.dumps(with_lr(0.5)).replace("0.5", "1e999"),
    "bool for int": spec(FLAT, {"type": "linear", "out_features": True}),
    "a million layers": spec(*[{"type": "relu"}] * 1_000_000),
    "a million settings": spec({"type": "relu", **{f"k{i}": i for i in range(1_000_000)}}),
    "a long key": spec({"type": "relu", "k" * 200_000: 1}),
    "a long type": spec({"type": "t" * 200_000}),
    "deep JSON arrays": "[" * 200_000,
    "a 50 MB document": b"{" + b" " * (50 * 1024 * 1024) + b"}",
    "a 50 MB text": "{" + " " * (50 * 1024 * 1024) + "}",
    "a 4-billion-parameter model": spec(FLAT, WIDE, WIDE, TEN),
    "a 1.7-billion-value activation into a linear layer": spec(
        {"type": "conv2d", "out_channels": 65536, "kernel_size": 1, "padding": 64}, FLAT, TEN
    ),
    "a self-referencing layer": None,  # filled in below: a Python dict that contains itself
}
loop = {"type": "residual"}
loop["layers"] = [loop]
HOSTILE["a self-referencing layer"] = spec(loop)


@pytest.fixture
def no_tensors(monkeypatch):
    """Any tensor or module made while the test runs fails it."""

    def refuse(*args, **kwargs):
        raise AssertionError("a tensor or module was made")

    for name in (
        "empty",
        "zeros",
        "ones",
        "rand",
        "randn",
        "full",
        "tensor",
        "as_tensor",
        "arange",
    ):
        monkeypatch.setattr(torch, name, refuse)
    monkeypatch.setattr(torch.nn.Module, "__init__", refuse)


@pytest.mark.parametrize("document", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_specs_are_refused_without_tensors_or_big_allocations(document, no_tensors):
    tracemalloc.start()
    try:
        with pytest.raises(SpecInvalid) as caught:
            check_spec(document, **IMAGE)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert 1 <= len(caught.value.problems) <= 100
    assert peak < 4_000_000, f"peak {peak:,} bytes"


def test_the_biggest_allowed_values_are_checked_without_tensors(no_tensors):
    big = spec(
        {"type": "conv2d", "out_channels": 65536, "kernel_size": 64, "padding": 64, "stride": 64},
        FLAT,
        TEN,
        epochs=1000,
        batch_size=65536,
    )
    report = check_spec(big, **IMAGE)
    assert report.total_params == 65536 * 3 * 64 * 64 + 65536 + 65536 * 2 * 2 * 10 + 10
    assert report.layers[0].output_shape == (65536, 2, 2)


def test_parsing_and_checking_never_load_torch_or_django():
    script = (
        "import sys, json\n"
        "from runtime.spec import parse_spec, check_spec, inspect_spec, SPEC_JSON_SCHEMA\n"
        "doc = {'version': 1, 'layers': [{'type': 'lstm', 'hidden_size': 4}], 'training': "
        "{'optimizer': {'type': 'sgd', 'lr': 0.1}, 'epochs': 1, 'batch_size': 2}}\n"
        "inspect_spec(doc, input_shape=(5, 3, 3), kind='image', task='binary', num_classes=2)\n"
        "assert 'torch' not in sys.modules and 'django' not in sys.modules, sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=60)


def test_a_document_just_under_the_limit_is_read():
    padding = " " * (256_000 - len(json.dumps(spec(FLAT, TEN))) - 1)
    text = json.dumps(spec(FLAT, TEN)) + padding
    assert len(text.encode()) < 256_000
    assert parse_spec(text).layers[1].options["out_features"] == 10
