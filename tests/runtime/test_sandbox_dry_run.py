"""The sandbox's first step: the learner's model runs forward on two training inputs before any
training, through the real sandbox, so that a shape error is reported at once in the learner's
words (which layer, what it expects, what it got), and no training step is taken."""

import dataclasses

from runtime.datasets import DatasetSplits, Split
from tests.runtime.test_sandbox import needs_bwrap, run, tiny_data

pytestmark = needs_bwrap

HEADER = """
import torch
from torch import nn


def build_model(input_shape, num_classes):
"""

WRONG_FEATURES = (
    HEADER
    + """\
    return nn.Sequential(nn.Linear(input_shape[0], 8), nn.ReLU(), nn.Linear(16, num_classes))
"""
)

WRONG_OUTPUT = (
    HEADER
    + """\
    return nn.Sequential(nn.Linear(input_shape[0], 3))
"""
)

FAILS_IN_FORWARD = (
    HEADER
    + """\
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Linear(input_shape[0], 6)

        def forward(self, x):
            return self.conv(x).view(-1, 5)

    return Net()
"""
)


def test_a_layer_given_the_wrong_number_of_features_is_named_with_both_shapes():
    result = run(WRONG_FEATURES)
    assert (result.status, result.kind) == ("failed", "invalid_model")
    assert result.message.startswith(
        "Shape error, found on a test batch of 2 training inputs before training: The layer "
        "“2” (Linear, which expects 16 input features) got an input of shape (2, 8). "
        "PyTorch says: mat1 and mat2 shapes cannot be multiplied (2x8 and 16x10)"
    )
    assert result.outcome is None  # no training step was taken


def test_an_output_that_is_not_one_score_per_class_is_refused_before_training():
    result = run(WRONG_OUTPUT)
    assert (result.status, result.kind) == ("failed", "invalid_model")
    assert result.message == (
        "For a batch of 2 inputs your model returned (2, 3); it must return a tensor of shape "
        "(2, 10): one score per class for each input."
    )


def test_an_error_after_a_layer_in_the_forward_code_says_after_which():
    result = run(FAILS_IN_FORWARD)
    assert (result.status, result.kind) == ("failed", "invalid_model")
    assert result.message.startswith(
        "Shape error, found on a test batch of 2 training inputs before training: After layer "
        "“conv” (Linear, which expects 4 input features) your forward failed. PyTorch says: "
        "shape '[-1, 5]' is invalid for input of size 12"
    )


RAISES = (
    HEADER
    + """\
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(input_shape[0], num_classes)

        def forward(self, x):
            raise RuntimeError("boom")

    return Net()
"""
)


def test_an_error_that_is_not_about_shapes_is_reported_as_the_learners_exception():
    result = run(RAISES)
    line = next(n for n, text in enumerate(RAISES.splitlines(), 1) if "boom" in text)
    assert (result.status, result.kind) == ("failed", "exception")
    assert result.message == f"RuntimeError: boom (line {line} of your code)"


ONE_LOGIT = (
    HEADER
    + """\
    return nn.Sequential(nn.Linear(input_shape[0], 1))
"""
)


def test_two_classes_may_be_one_logit_per_input_as_the_binary_loss_takes():
    two = tiny_data()
    info = dataclasses.replace(two.info, task="binary", num_classes=2, class_names=("0", "1"))
    halve = [Split(s.x, s.y % 2) for s in (two.train, two.val, two.test)]
    result = run(ONE_LOGIT, data=DatasetSplits(info, *halve))
    assert (result.status, result.kind) == ("succeeded", None), result.message
