"""The evaluator: metrics on the hidden test split, from a model or from its predictions.

Runs in the trusted process only: code submissions send back predictions, scored here.
"""

import statistics
import time

import torch
from torch import nn

from runtime.augment import BatchPreparer
from runtime.trainer import choose_device, logits_model, predict

LATENCY_RUNS = 30


def metrics_from_predictions(
    y_true: torch.Tensor, y_pred: torch.Tensor, *, class_names: tuple[str, ...]
) -> dict:
    """Accuracy, per-class accuracy (recall) and the confusion matrix (rows: true class)."""
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_pred.shape[0]} predictions for {y_true.shape[0]} test samples")
    num_classes = len(class_names)
    y_true, y_pred = y_true.long().cpu(), y_pred.long().cpu()
    if y_pred.numel() and (y_pred.min() < 0 or y_pred.max() >= num_classes):
        raise ValueError(f"predictions must be class indices from 0 to {num_classes - 1}")
    cells = torch.bincount(y_true * num_classes + y_pred, minlength=num_classes**2)
    confusion = cells.view(num_classes, num_classes)
    per_class_total = confusion.sum(dim=1)
    per_class = {
        name: (float(confusion[i, i]) / int(per_class_total[i]) if per_class_total[i] else None)
        for i, name in enumerate(class_names)
    }
    total = int(y_true.numel())
    return {
        "metric": "accuracy",
        "accuracy": float(confusion.diagonal().sum()) / total if total else None,
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion.tolist(),
        "class_names": list(class_names),
        "test_samples": total,
    }


def model_size(model: nn.Module) -> dict:
    tensors = [*model.parameters(), *model.buffers()]
    return {
        "parameter_count": sum(p.numel() for p in model.parameters()),
        "model_size_bytes": sum(t.numel() * t.element_size() for t in tensors),
    }


@torch.no_grad()
def latency_per_sample(model: nn.Module, sample: torch.Tensor, *, device) -> float:
    """Median seconds to predict one sample (batch of one), after a warm-up run."""
    model.eval()
    forward = logits_model(model)
    sample = sample.to(device)
    forward(sample)
    timings = []
    for _ in range(LATENCY_RUNS):
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        forward(sample)
        if device.type == "cuda":
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def evaluate(model: nn.Module, test, *, info, training=None, device=None) -> dict:
    """Every metric of a trained model on the test split; the result is JSON-serialisable."""
    device = choose_device(device)
    predicted = predict(model, test.x, info=info, training=training, device=device)
    metrics = metrics_from_predictions(test.y, predicted, class_names=info.class_names)
    metrics.update(model_size(model))
    prepare = BatchPreparer.for_inference(info=info, training=training, device=device)
    one = prepare.batch(test.x[:1].to(device))
    metrics["latency_seconds_per_sample"] = latency_per_sample(model, one, device=device)
    metrics["device"] = device.type
    return metrics
