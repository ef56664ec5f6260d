"""The model a code submission trains is exported inside the sandbox; the parent reads the files
without trusting them (no link followed, regular files only, nothing beyond its cap)."""

import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from runtime.artifacts.check import check_onnx, check_safetensors
from runtime.artifacts.predict import predict_classes
from runtime.datasets import Split, load_dataset
from runtime.sandbox import SandboxLimits, bubblewrap_available, run_code_submission
from runtime.sandbox.exported import FileRefused, read_capped
from runtime.spec import parse_spec
from runtime.templates import TEMPLATES
from runtime.trainer import ComputeBudget

needs_bwrap = pytest.mark.skipif(
    not bubblewrap_available(), reason="bubblewrap is missing: run scripts/ensure-test-deps"
)
LIMITS = SandboxLimits(wall_seconds=90)


def xor_data():
    data = load_dataset("xor")
    return replace(data, train=Split(data.train.x[:400], data.train.y[:400]))


def run(code: str, limits: SandboxLimits = LIMITS):
    template = TEMPLATES["xor"]
    training = replace(parse_spec(template.spec).training, epochs=20)
    data = xor_data()
    result = run_code_submission(
        code=code,
        data=data,
        training=training,
        budget=ComputeBudget(max_seconds=40),
        limits=limits,
    )
    assert (result.status, result.message) == ("succeeded", ""), result.output
    return data, result


@needs_bwrap
def test_the_exported_model_passes_the_checks_and_predicts_as_the_sandbox_did():
    data, result = run(TEMPLATES["xor"].code)
    assert result.export_error is None
    summary = check_onnx(result.onnx, info=data.info)
    assert summary.parameter_count == 9
    assert check_safetensors(result.weights).parameter_count == 9
    assert torch.equal(predict_classes(result.onnx, data.test.x), result.predictions)


BRANCHY = """
import torch
from torch import nn


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, x):
        if x.sum() > 1e9:  # a Python decision on a tensor's value
            return -self.linear(x)
        return self.linear(x)


def build_model(input_shape, num_classes):
    return Branchy()
"""


@needs_bwrap
def test_a_model_that_cannot_be_exported_still_succeeds_with_the_reason():
    _, result = run(BRANCHY)
    assert result.onnx is None
    assert result.export_error.startswith(
        "Your model could not be exported to ONNX: its forward takes a Python decision (an if or "
        "a loop) on the values of a tensor"
    )
    assert result.export_error.endswith("(line 12 of submission.py)")
    assert check_safetensors(result.weights).tensor_count == 2  # the weights are kept


# After the harness exported, the learner's code (which runs in its process) writes its own
# bytes into the model file, just before the result goes out.
OVERWRITE = """
import json, os, sys
import runtime.sandbox.child as child
from torch import nn

_send = child.send


def send(message):
    if message.get("type") == "result":
        with open(os.path.join(sys.argv[4], "job.json")) as handle:
            path = json.load(handle)["artifacts"]["model.onnx"]
        __ACTION__
    _send(message)


child.send = send


def build_model(input_shape, num_classes):
    return nn.Sequential(nn.Linear(2, 1))
"""


@needs_bwrap
def test_a_model_file_grown_past_the_cap_is_not_read():
    code = OVERWRITE.replace(
        "__ACTION__", 'with open(path, "wb") as out:\n            out.write(b"x" * (3 * 2**20))'
    )
    _, result = run(code, replace(LIMITS, max_artifact_bytes=2**20))
    assert result.onnx is None
    assert result.export_error == (
        "The exported ONNX model is larger than 1 MiB, the most kept, so it was not kept."
    )
    assert result.weights is not None


@needs_bwrap
def test_the_model_file_cannot_be_swapped_for_a_link_in_the_sandbox():
    code = OVERWRITE.replace(
        "__ACTION__",
        "for attempt in (os.unlink, lambda p: os.rename('/tmp/x', p)):\n"
        "            try:\n"
        "                open('/tmp/x', 'w').close()\n"
        "                attempt(path)\n"
        "                print('SWAPPED')\n"
        "            except OSError as error:\n"
        "                print('REFUSED', error.errno)",
    )
    data, result = run(code)
    assert "SWAPPED" not in result.output
    assert result.output.count("REFUSED") == 2
    assert result.export_error is None
    assert check_onnx(result.onnx, info=data.info).parameter_count == 3


# --- the parent's reader, on files a learner could leave without bubblewrap ----------------------


@pytest.fixture
def directory(tmp_path):
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    yield tmp_path, fd
    os.close(fd)


def test_a_symlink_is_not_followed(directory):
    path, fd = directory
    (path / "secret").write_bytes(b"secret")
    (path / "model.onnx").symlink_to(path / "secret")
    with pytest.raises(FileRefused) as refused:
        read_capped(fd, "model.onnx", 1024)
    assert str(refused.value) == (
        "The exported ONNX model was replaced by a symbolic link, so it was not kept."
    )


def test_a_fifo_is_not_read(directory):
    path, fd = directory
    os.mkfifo(path / "model.onnx")  # opening it for reading would block without O_NONBLOCK
    with pytest.raises(FileRefused) as refused:
        read_capped(fd, "model.onnx", 1024)
    assert str(refused.value) == (
        "The exported ONNX model was replaced by something other than a regular file, so it was "
        "not kept."
    )


def test_a_hard_link_is_not_read(directory):
    path, fd = directory
    (path / "elsewhere").write_bytes(b"data")
    os.link(path / "elsewhere", path / "weights.safetensors")
    with pytest.raises(FileRefused) as refused:
        read_capped(fd, "weights.safetensors", 1024)
    assert str(refused.value) == (
        "The exported weights file has other names (hard links), so it was not kept."
    )


def test_a_huge_file_is_refused_without_reading_past_the_cap(directory, monkeypatch):
    path, fd = directory
    with open(path / "model.onnx", "wb") as handle:
        handle.truncate(10 * 2**30)  # sparse: 10 GiB declared
    read = []
    real_read = os.read

    def counting(fd_, n):
        chunk = real_read(fd_, n)
        read.append(len(chunk))
        return chunk

    monkeypatch.setattr(os, "read", counting)
    with pytest.raises(FileRefused) as refused:
        read_capped(fd, "model.onnx", 2**20)
    assert str(refused.value) == (
        "The exported ONNX model is larger than 1 MiB, the most kept, so it was not kept."
    )
    assert sum(read) == 0  # its size said so before any read
    (path / "small.bin").write_bytes(b"y" * 100)
    assert read_capped(fd, "small.bin", 100) == b"y" * 100
    assert sum(read) == 100


def test_an_empty_or_missing_file_is_none(directory):
    path, fd = directory
    Path(path / "model.onnx").touch()
    assert read_capped(fd, "model.onnx", 1024) is None
    assert read_capped(fd, "weights.safetensors", 1024) is None
