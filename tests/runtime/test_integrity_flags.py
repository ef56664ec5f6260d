"""Integrity flags on code submissions (runtime/sandbox/checks.py `literal_tables`): a table
of the published test inputs' hashes to their labels, or a blob of data, is flagged with its
line; the templates' own code and ordinary hyperparameters are not."""

import base64
import hashlib

import numpy as np
from sklearn.datasets import load_digits

from runtime.sandbox.checks import literal_tables
from runtime.templates import TEMPLATES

MODEL = """
import torch

def build_model(input_shape, num_classes):
    sizes = [64, 128, 64]
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, num_classes))
"""


def test_a_table_of_hashed_test_inputs_to_labels_is_flagged_with_its_line():
    digits = load_digits()
    table = {
        hashlib.sha256(image.astype(np.float32).tobytes()).hexdigest()[:12]: int(label)
        for image, label in zip(digits.images[-360:], digits.target[-360:], strict=True)
    }
    code = MODEL + f"\nANSWERS = {table!r}\n"
    assert 5_000 < len(code) < 20_000  # about the 16 KB submission that scored 100 %
    flags = literal_tables(code)
    line = code.count("\n", 0, code.index("ANSWERS")) + 1
    assert [(f.path, f.message.split(" of ")[0]) for f in flags] == [
        (f"code:{line}", f"Line {line} holds a literal 360-entry table")
    ]


def test_a_blob_of_text_is_flagged():
    blob = base64.b64encode(bytes(range(256)) * 12).decode()
    flags = literal_tables(MODEL + f"\nWEIGHTS = {blob!r}\n")
    assert len(flags) == 1
    assert flags[0].message.startswith("Line 8 holds a literal text of 4,096 characters")


def test_ordinary_code_is_not_flagged():
    assert literal_tables(MODEL) == []
    for template in TEMPLATES.values():
        code = getattr(template, "code", None)
        if code:
            assert literal_tables(code) == [], template
    assert literal_tables("def broken(:\n") == []  # check_code reports syntax
