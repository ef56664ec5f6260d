"""The evaluator's metrics, checked against values computed by hand."""

import json
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from runtime.evaluate import evaluate, metrics_from_predictions, model_size


def test_metrics_match_a_hand_computed_confusion_matrix():
    # true:  a a a b b c   predicted: a b a b c c
    y_true = torch.tensor([0, 0, 0, 1, 1, 2])
    y_pred = torch.tensor([0, 1, 0, 1, 2, 2])
    metrics = metrics_from_predictions(y_true, y_pred, class_names=("a", "b", "c"))
    assert metrics["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert metrics["accuracy"] == 4 / 6
    assert metrics["per_class_accuracy"] == {"a": 2 / 3, "b": 1 / 2, "c": 1.0}
    assert metrics["test_samples"] == 6
    assert metrics["class_names"] == ["a", "b", "c"]


def test_a_class_absent_from_the_test_set_has_no_accuracy():
    metrics = metrics_from_predictions(
        torch.tensor([0, 0]), torch.tensor([0, 1]), class_names=("x", "y")
    )
    assert metrics["per_class_accuracy"] == {"x": 0.5, "y": None}
    assert metrics["confusion_matrix"] == [[1, 1], [0, 0]]


@pytest.mark.parametrize(
    "y_pred, message",
    [
        (torch.tensor([0, 1, 1]), "3 predictions for 2 test samples"),
        (torch.tensor([0, 2]), "predictions must be class indices from 0 to 1"),
        (torch.tensor([-1, 0]), "predictions must be class indices from 0 to 1"),
    ],
)
def test_bad_predictions_are_refused_with_a_reason(y_pred, message):
    with pytest.raises(ValueError, match=message):
        metrics_from_predictions(torch.tensor([0, 1]), y_pred, class_names=("x", "y"))


def test_model_size_counts_parameters_and_buffers():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    # linear 3*2+2 = 8 parameters, batchnorm 2+2 parameters; buffers: mean 2, var 2, count 1
    assert model_size(model) == {
        "parameter_count": 12,
        "model_size_bytes": 12 * 4 + 4 * 4 + 1 * 8,
    }


@dataclass(frozen=True)
class _Info:
    kind: str = "vector"
    task: str = "binary"
    num_classes: int = 2
    class_names: tuple = ("zero", "one")


@dataclass
class _Split:
    x: torch.Tensor
    y: torch.Tensor


def test_evaluate_scores_a_known_model_and_is_json_serialisable():
    # A fixed binary classifier on logits: predicts 1 exactly when x0 > x1.
    model = nn.Sequential(nn.Linear(2, 1), nn.Sigmoid())
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -1.0]]))
        model[0].bias.zero_()
    x = torch.tensor([[2.0, 1.0], [0.0, 1.0], [3.0, 0.0], [1.0, 5.0]])
    y = torch.tensor([1, 0, 0, 1])  # two right, two wrong
    metrics = evaluate(model, _Split(x, y), info=_Info(), device="cpu")
    assert metrics["accuracy"] == 0.5
    assert metrics["confusion_matrix"] == [[1, 1], [1, 1]]
    assert metrics["parameter_count"] == 3
    assert metrics["model_size_bytes"] == 12
    assert metrics["device"] == "cpu"
    assert metrics["latency_seconds_per_sample"] > 0
    assert json.loads(json.dumps(metrics)) == metrics
