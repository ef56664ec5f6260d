"""The model card: what a stored model is, in one JSON document kept next to its files."""

import hashlib
import json

from runtime.augment import BatchPreparer

CARD_FORMAT_VERSION = 1


def _numbers(value):
    """A BatchPreparer number (a float, or a per-channel tensor) as JSON numbers."""
    if isinstance(value, float | int):
        return float(value)
    return [float(v) for v in value.reshape(-1).tolist()]


def _file(data: bytes | None) -> dict | None:
    if data is None:
        return None
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def preprocessing(*, info, training) -> dict:
    """The preparation baked into the graph, in words and numbers (as the trainer does it)."""
    if info.kind == "image":
        import torch

        prepare = BatchPreparer.for_inference(
            info=info, training=training, device=torch.device("cpu")
        )
        augment = training.augment if training else None
        mean = list(augment.normalize_mean) if augment and augment.normalize_mean else None
        std = list(augment.normalize_std) if augment and augment.normalize_std else None
        words = "pixel values 0..255 become x * scale + shift: x / 255"
        words += ", then (x - mean) / std per channel" if mean is not None else ""
        return {
            "description": words,
            "scale": _numbers(prepare.scale),
            "shift": _numbers(prepare.shift),
            "mean": mean,
            "std": std,
        }
    if info.kind == "tokens":
        return {
            "description": "none: token ids go in as they are",
            "scale": None,
            "shift": None,
            "mean": None,
            "std": None,
        }
    return {
        "description": "none: the feature values go in as they are",
        "scale": None,
        "shift": None,
        "mean": None,
        "std": None,
    }


def _value_range(info):
    if info.kind == "image":
        return [0, 255]
    if info.kind == "tokens" and info.vocab_size:
        return [0, info.vocab_size - 1]
    return None


def model_card(
    *, info, training, summary, onnx: bytes, weights: bytes | None, metrics: dict, source: dict
) -> dict:
    """The card of a model: its dataset, input (shape, raw range, the preprocessing inside the
    graph), classes, size, files (bytes and sha256), the hidden-test metrics and the run it came
    from (`metrics` and `source` as given; both must be JSON). Plain JSON values only."""
    card = {
        "format_version": CARD_FORMAT_VERSION,
        "dataset": {"name": info.name, "title": info.title, "kind": info.kind, "task": info.task},
        "input": {
            "name": summary.input_name,
            "dtype": summary.input_dtype,
            "shape": list(summary.input_shape),
            "value_range": _value_range(info),
            "preprocessing": preprocessing(info=info, training=training),
        },
        "output": {
            "name": "probabilities",
            "dtype": "float32",
            "shape": list(summary.output_shape),
        },
        "classes": list(info.class_names),
        "parameter_count": summary.parameter_count,
        "opset": summary.opset,
        "ir_version": summary.ir_version,
        "operators": list(summary.operators),
        "files": {"onnx": _file(onnx), "safetensors": _file(weights)},
        "metrics": metrics,
        "source": source,
    }
    # A round trip through JSON: refuses what JSON cannot hold (TypeError, ValueError for NaN),
    # and leaves no tuple or shared object in the card.
    return json.loads(json.dumps(card, allow_nan=False))
