"""Serving fixtures: real ONNX models (PyTorch exports, and hand-made graphs that fail at run
time) stored through the trained-models app, and the real inference pool in its own process
on the test database and storage."""

import urllib.request

import numpy as np
import onnx
import torch
from django_scopes import scopes_disabled
from onnx import TensorProto, helper

from apps.serving.inference.config import inference_secret
from apps.trained_models.services import artifact_store
from tests.factories import AssignmentFactory, ExerciseFactory, graded_submission
from tests.onnx_support import onnx_export


def mlp_onnx(features: int, classes: int, *, hidden: int = 16, seed: int = 0) -> bytes:
    torch.manual_seed(seed)
    module = torch.nn.Sequential(
        torch.nn.Linear(features, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, classes),
        torch.nn.Softmax(dim=-1),
    )
    return onnx_export(module, torch.zeros(1, features))


class _ImageNet(torch.nn.Module):
    """Pixels 0..255 in, as exported graphs take them."""

    def __init__(self, channels: int, size: int, classes: int):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(channels * size * size, classes)
        )

    def forward(self, x):
        return torch.softmax(self.net(x / 255.0), dim=-1)


def image_onnx(channels: int, size: int, classes: int) -> bytes:
    torch.manual_seed(1)
    return onnx_export(_ImageNet(channels, size, classes), torch.zeros(1, channels, size, size))


def reshape_fails_onnx(features: int) -> bytes:
    """A valid graph that fails at run time for batches not a multiple of 3: it reshapes its
    input to 3 rows."""
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [3, -1])
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["input", "shape"], ["reshaped"]),
            helper.make_node("Softmax", ["reshaped"], ["probabilities"], axis=-1),
        ],
        "fails",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", features])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["rows", "classes"])],
        initializer=[shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def store_model(world, onnx_bytes: bytes, *, dataset: str | None = None, learner=None):
    """A trained model of `world`'s tenant holding `onnx_bytes`: on the world's graded
    submission (XOR), or on a new graded attempt of an exercise on `dataset`."""
    with scopes_disabled():
        if dataset is None and learner is None:
            submission = world.submission
        else:
            exercise = ExerciseFactory(course=world.course, dataset=dataset or "xor")
            assignment = AssignmentFactory(exercise=exercise)
            submission = graded_submission(
                assignment=assignment, learner=learner or world.learner.user, attempt=1
            )
        job = submission.job
    return artifact_store(
        tenant_id=world.tenant.id,
        submission=submission,
        job=job,
        onnx=onnx_bytes,
        weights=None,
        card={"input": {"name": "input"}},
        metrics={"accuracy": 0.9},
        parameter_count=1,
    )


def pool_stats(url: str) -> dict:
    request = urllib.request.Request(
        f"{url}/v1/stats", headers={"x-aula-inference-secret": inference_secret()}
    )
    import json

    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def random_inputs(rows: int, features: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, features)).astype(np.float32)
