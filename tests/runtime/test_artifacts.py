"""Trained models as files: every template's ONNX export gives the probabilities of its
ServingModel and exactly trainer.predict's classes; its weights round-trip through safetensors;
the model card is JSON."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load
from torch import nn

from runtime.artifacts.card import CARD_FORMAT_VERSION, model_card
from runtime.artifacts.check import check_onnx, check_safetensors
from runtime.artifacts.export import (
    ExportFailed,
    ServingModel,
    export_onnx,
    weights_safetensors,
)
from runtime.artifacts.predict import OnnxModel, predict_classes
from runtime.datasets import DatasetSplits, Split, dataset_info, load_dataset
from runtime.spec import build_model, parse_spec
from runtime.templates import TEMPLATES
from runtime.trainer import ComputeBudget, predict, seeded, train

# The operators each template's export holds, and its node count (the graph is fixed by the
# layers and ServingModel's head).
EXPECTED = {
    "cifar-cnn": (
        (
            "Add", "ArgMax", "Cast", "Constant", "Conv", "Equal", "Flatten", "GatherElements",
            "Gemm", "MaxPool", "Min", "Mul", "Relu", "Softmax", "Where",
        ),
        26,
    ),
    "rnn-sequences": (
        (
            "ArgMax", "Cast", "Concat", "Constant", "ConstantOfShape", "Equal", "Gather",
            "GatherElements", "Gemm", "LSTM", "Min", "Mul", "Shape", "Softmax", "Squeeze",
            "Transpose", "Unsqueeze", "Where",
        ),
        28,
    ),
    "xor": (
        (
            "Cast", "Clip", "Concat", "Constant", "Gemm", "Greater", "Relu", "Reshape", "Sigmoid",
            "Sub", "Where",
        ),
        17,
    ),
}  # fmt: skip
TRAIN_SIZE = {"cifar-cnn": 600, "rnn-sequences": 1200, "xor": 800}


def _subset(data: DatasetSplits, size: int) -> DatasetSplits:
    return replace(data, train=Split(data.train.x[:size], data.train.y[:size]))


@pytest.fixture(scope="module", params=sorted(TEMPLATES))
def trained(request):
    """A template's spec model trained briefly on its own dataset, and its files."""
    template = TEMPLATES[request.param]
    data = _subset(load_dataset(template.dataset), TRAIN_SIZE[request.param])
    spec = parse_spec(template.spec)
    model = seeded(spec.training.seed, lambda: build_model(spec, data.info))
    outcome = train(
        model,
        training=spec.training,
        train=data.train,
        val=data.val,
        info=data.info,
        device="cpu",
        budget=ComputeBudget(max_epochs=2),
    )
    assert outcome.status == "completed"
    onnx = export_onnx(model, info=data.info, training=spec.training)
    return request.param, data, spec.training, model, onnx


def test_onnx_gives_the_serving_models_probabilities_at_batch_1_and_32(trained):
    _, data, training, model, onnx = trained
    serving = ServingModel(model, info=data.info, training=training).eval()
    session = OnnxModel(onnx)
    for batch in (1, 32):
        x = data.test.x[:batch]
        raw = x.float() if data.info.kind == "image" else x
        with torch.no_grad():
            expected = serving(raw).numpy()
        got = session.probabilities(raw.numpy())
        assert got.dtype == np.float32 and got.shape == (batch, data.info.num_classes)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_predict_classes_equals_trainer_predict_on_the_test_split(trained):
    _, data, training, model, onnx = trained
    expected = predict(model, data.test.x, info=data.info, training=training, device="cpu")
    got = predict_classes(onnx, data.test.x, batch_size=256)
    assert got.dtype == torch.int64 and got.shape == (data.test.x.shape[0],)
    assert torch.equal(got, expected)
    # The serving model's own argmax, in torch, is the same.
    serving = ServingModel(model, info=data.info, training=training).eval()
    raw = data.test.x.float() if data.info.kind == "image" else data.test.x
    with torch.no_grad():
        assert torch.equal(serving(raw).argmax(dim=1), expected)


def test_check_onnx_accepts_the_export_and_summarises_it_exactly(trained):
    slug, data, _, model, onnx = trained
    summary = check_onnx(onnx, info=data.info)
    operators, nodes = EXPECTED[slug]
    assert summary.operators == operators
    assert summary.node_count == nodes
    assert summary.parameter_count == sum(p.numel() for p in model.parameters())
    assert (summary.opset, summary.ir_version) == (17, 8)
    assert summary.input_name == "input"
    assert summary.input_dtype == ("int64" if data.info.kind == "tokens" else "float32")
    assert summary.input_shape == ("batch", *data.info.input_shape)
    assert summary.output_shape == ("batch", data.info.num_classes)
    assert summary.size_bytes == len(onnx)


def test_safetensors_round_trip_gives_identical_tensors(trained):
    _, _, _, model, _ = trained
    data = weights_safetensors(model)
    loaded = load(data)
    state = model.state_dict()
    assert set(loaded) == set(state)
    for name, tensor in state.items():
        assert loaded[name].dtype == tensor.dtype
        assert torch.equal(loaded[name], tensor.cpu()), name
    summary = check_safetensors(data)
    assert summary.tensor_count == len(state)
    assert summary.parameter_count == sum(t.numel() for t in state.values())
    assert summary.size_bytes == len(data)


def test_the_model_card_is_json_and_says_what_the_model_is(trained):
    slug, data, training, model, onnx = trained
    weights = weights_safetensors(model)
    summary = check_onnx(onnx, info=data.info)
    metrics = {"accuracy": 0.5, "per_class_accuracy": [0.5] * data.info.num_classes}
    card = model_card(
        info=data.info,
        training=training,
        summary=summary,
        onnx=onnx,
        weights=weights,
        metrics=metrics,
        source={"run": "r-1", "submission": "s-1"},
    )
    assert json.loads(json.dumps(card)) == card
    assert card["format_version"] == CARD_FORMAT_VERSION
    assert card["dataset"]["name"] == data.info.name
    assert card["classes"] == list(data.info.class_names)
    assert card["parameter_count"] == sum(p.numel() for p in model.parameters())
    assert card["files"]["onnx"]["bytes"] == len(onnx)
    assert len(card["files"]["onnx"]["sha256"]) == 64
    assert card["files"]["safetensors"]["bytes"] == len(weights)
    assert card["metrics"] == metrics and card["source"] == {"run": "r-1", "submission": "s-1"}
    assert card["input"]["shape"] == ["batch", *data.info.input_shape]
    if slug == "cifar-cnn":  # mean 0.5, std 0.5: x / 127.5 - 1
        assert card["input"]["value_range"] == [0, 255]
        prep = card["input"]["preprocessing"]
        assert (prep["mean"], prep["std"]) == ([0.5] * 3, [0.5] * 3)
        assert prep["scale"] == pytest.approx(1 / 127.5) and prep["shift"] == -1.0


def test_the_caller_model_is_left_as_it_was():
    info = dataset_info("xor")
    spec = parse_spec(TEMPLATES["xor"].spec)
    model = build_model(spec, info).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export_onnx(model, info=info, training=spec.training)
    assert model.training is True
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_binary_ties_follow_trainer_predict():
    """A logit of 0 is class 0 and a tiny positive one class 1, though sigmoid rounds both to
    0.5 in float32."""
    info = dataset_info("xor")
    spec = parse_spec(TEMPLATES["xor"].spec)
    model = build_model(spec, info)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model[2].bias.fill_(0.0)
    x = torch.zeros(4, 2)
    onnx = export_onnx(model, info=info, training=spec.training)
    for bias, cls in ((0.0, 0), (1e-9, 1), (-1e-9, 0)):
        with torch.no_grad():
            model[2].bias.fill_(bias)
        onnx = export_onnx(model, info=info, training=spec.training)
        expected = predict(model, x, info=info, training=spec.training, device="cpu")
        assert expected.tolist() == [cls] * 4
        assert predict_classes(onnx, x).tolist() == [cls] * 4


def test_multiclass_ties_follow_trainer_predict():
    """Logits one float apart round to the same softmax; the first largest logit wins."""
    info = dataset_info("digits")

    class Fixed(nn.Module):
        def __init__(self, logits):
            super().__init__()
            self.register_buffer("logits", logits)
            self.scale = nn.Parameter(torch.ones(()))

        def forward(self, x):
            return self.logits.expand(x.shape[0], -1) * self.scale + x[:, :10] * 0

    a = torch.tensor(0.3)
    b = torch.nextafter(a, torch.tensor(1.0))
    for logits in (
        torch.tensor([a, b] + [0.0] * 8),  # class 1 is larger by one float
        torch.tensor([b, a] + [0.0] * 8),
        torch.tensor([0.0, a, a] + [0.0] * 7),  # an exact tie: the first
    ):
        model = Fixed(logits)
        x = torch.zeros(3, 64)
        onnx = export_onnx(model, info=info, training=None)
        expected = predict(model, x, info=info, device="cpu")
        assert torch.equal(predict_classes(onnx, x), expected)


CONTROL_FLOW = """
class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        if x.sum() > 0:
            return self.linear(x)
        return -self.linear(x)
"""

CUSTOM_FUNCTION = """
class Twice(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):  # through NumPy: outside what a trace can record
        return torch.from_numpy(x.detach().numpy() * 2)

    @staticmethod
    def backward(ctx, grad):
        return grad * 2


class Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        return Twice.apply(self.linear(x))
"""


def _learner_model(code: str, name: str) -> nn.Module:
    namespace = {"torch": torch, "nn": nn}
    exec(compile(code, "submission.py", "exec"), namespace)
    return namespace[name]()


def test_python_control_flow_on_tensor_values_cannot_be_exported():
    with pytest.raises(ExportFailed) as failed:
        export_onnx(
            _learner_model(CONTROL_FLOW, "Branchy"), info=dataset_info("digits"), training=None
        )
    assert failed.value.message.startswith(
        "Your model could not be exported to ONNX: its forward takes a Python decision (an if or "
        "a loop) on the values of a tensor, which a fixed graph cannot hold. Use tensor "
        "operations such as torch.where instead. PyTorch says: Converting a tensor to a Python "
        "boolean might cause the trace to be incorrect."
    )
    assert failed.value.message.endswith("(line 8 of submission.py)")


def test_a_custom_autograd_function_cannot_be_exported():
    with pytest.raises(ExportFailed) as failed:
        export_onnx(
            _learner_model(CUSTOM_FUNCTION, "Custom"), info=dataset_info("digits"), training=None
        )
    assert failed.value.message.startswith(
        "Your model could not be exported to ONNX: it uses a custom torch.autograd.Function, "
        "which ONNX has no operator for. Write it with standard PyTorch operations. PyTorch "
        "says: "
    )


def test_tied_weights_are_saved_each_under_its_name():
    embedding = nn.Embedding(16, 8)
    head = nn.Linear(8, 16, bias=False)
    head.weight = embedding.weight
    model = nn.Sequential(embedding, head)
    loaded = load(weights_safetensors(model))
    assert set(loaded) == {"0.weight", "1.weight"}
    assert torch.equal(loaded["0.weight"], loaded["1.weight"])
    assert torch.equal(loaded["1.weight"], embedding.weight.detach())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_model_trained_on_cuda_exports_from_a_cpu_copy_and_stays_on_cuda():
    data = load_dataset("digits")
    spec = parse_spec(
        {
            "version": 1,
            "layers": [
                {"type": "linear", "out_features": 16},
                {"type": "relu"},
                {"type": "linear", "out_features": 10},
            ],
            "training": {"optimizer": {"type": "adam", "lr": 0.01}, "epochs": 2},
        }
    )
    model = seeded(0, lambda: build_model(spec, data.info)).to("cuda")
    train(
        model, training=spec.training, train=data.train, val=data.val, info=data.info, device="cuda"
    )
    onnx = export_onnx(model, info=data.info, training=spec.training)
    assert next(model.parameters()).is_cuda  # the caller's model is left where it was
    expected = predict(model, data.test.x, info=data.info, training=spec.training, device="cuda")
    assert torch.equal(predict_classes(onnx, data.test.x), expected.cpu())
