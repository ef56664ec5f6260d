"""The product's three reference models parse, check and build into the networks they describe."""

import torch
import torch.nn.functional as F
from torch import nn

from runtime.spec import (
    AugmentSpec,
    OptimizerSpec,
    ScheduleSpec,
    build_model,
    check_spec,
    parse_spec,
)

CIFAR10 = {"input_shape": (3, 32, 32), "kind": "image", "task": "multiclass", "num_classes": 10}
SEQUENCES = {
    "input_shape": (20,),
    "kind": "tokens",
    "task": "multiclass",
    "num_classes": 6,
    "vocab_size": 16,
}
XOR = {"input_shape": (2,), "kind": "vector", "task": "binary", "num_classes": 2}

CIFAR_CNN = {
    "version": 1,
    "layers": [
        {"type": "conv2d", "in_channels": 3, "out_channels": 6, "kernel_size": 5},
        {"type": "relu"},
        {"type": "maxpool2d", "kernel_size": 2},
        {"type": "conv2d", "in_channels": 6, "out_channels": 16, "kernel_size": 5},
        {"type": "relu"},
        {"type": "maxpool2d", "kernel_size": 2},
        {"type": "flatten"},
        {"type": "linear", "in_features": 400, "out_features": 120},
        {"type": "relu"},
        {"type": "linear", "in_features": 120, "out_features": 84},
        {"type": "relu"},
        {"type": "linear", "in_features": 84, "out_features": 10},
    ],
    "training": {
        "optimizer": {"type": "sgd", "lr": 0.001, "momentum": 0.9},
        "loss": "cross_entropy",
        "epochs": 12,
        "batch_size": 100,
        "augment": {
            "random_crop_padding": 4,
            "horizontal_flip": True,
            "normalize_mean": [0.5, 0.5, 0.5],
            "normalize_std": [0.5, 0.5, 0.5],
        },
    },
}

RNN_CLASSIFIER = {
    "version": 1,
    "layers": [
        {"type": "embedding", "embedding_dim": 16},
        {"type": "lstm", "hidden_size": 64, "output": "last"},
        {"type": "linear", "out_features": 6},
    ],
    "training": {"optimizer": {"type": "adam", "lr": 0.005}, "epochs": 15, "batch_size": 64},
}

XOR_NET = {
    "version": 1,
    "layers": [
        {"type": "linear", "in_features": 2, "out_features": 2},
        {"type": "relu"},
        {"type": "linear", "in_features": 2, "out_features": 1},
        {"type": "sigmoid"},
    ],
    "training": {
        "optimizer": {"type": "adam", "lr": 0.05},
        "loss": "binary_cross_entropy",
        "epochs": 60,
        "batch_size": 32,
    },
}


class TutorialNet(nn.Module):
    """The CNN of PyTorch's CIFAR-10 tutorial, written by hand."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def same_function(built: nn.Module, reference: nn.Module, x: torch.Tensor) -> bool:
    """Copy the reference's weights into the built model in order; outputs must then agree."""
    reference_params = list(reference.parameters())
    built_params = list(built.parameters())
    assert [p.shape for p in built_params] == [p.shape for p in reference_params]
    with torch.no_grad():
        for mine, theirs in zip(built_params, reference_params, strict=True):
            mine.copy_(theirs)
        return torch.allclose(built.eval()(x), reference.eval()(x), atol=1e-6)


def test_the_cifar10_cnn():
    spec = parse_spec(CIFAR_CNN)
    assert spec.training.optimizer == OptimizerSpec(type="sgd", lr=0.001, momentum=0.9)
    assert spec.training.schedule == ScheduleSpec()
    assert spec.training.augment == AugmentSpec(4, True, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert (spec.training.batch_size, spec.training.epochs) == (100, 12)
    report = check_spec(spec, **CIFAR10)
    assert [(r.type, r.output_shape, r.params) for r in report.layers] == [
        ("conv2d", (6, 28, 28), 456),
        ("relu", (6, 28, 28), 0),
        ("maxpool2d", (6, 14, 14), 0),
        ("conv2d", (16, 10, 10), 2416),
        ("relu", (16, 10, 10), 0),
        ("maxpool2d", (16, 5, 5), 0),
        ("flatten", (400,), 0),
        ("linear", (120,), 48120),
        ("relu", (120,), 0),
        ("linear", (84,), 10164),
        ("relu", (84,), 0),
        ("linear", (10,), 850),
    ]
    assert report.total_params == 62006
    # conv: 2 x 75 x 6 x 784 + 2 x 150 x 16 x 100; linear: 2 x (48,000 + 10,080 + 840);
    # relu and pooling: 4,704 + 4,704 + 1,600 + 1,600 + 120 + 84
    assert report.total_flops == 705_600 + 480_000 + 117_840 + 12_812
    # 62,006 x 16 bytes + 18,074 values x 100 samples x 8 bytes
    assert report.memory_bytes == 62_006 * 16 + 18_074 * 100 * 8
    torch.manual_seed(0)
    model = build_model(spec, **CIFAR10)
    assert sum(p.numel() for p in model.parameters()) == 62006
    assert same_function(model, TutorialNet(), torch.randn(2, 3, 32, 32))


class SequenceClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(16, 16)
        self.lstm = nn.LSTM(16, 64, batch_first=True)
        self.head = nn.Linear(64, 6)

    def forward(self, tokens):
        outputs, _ = self.lstm(self.embedding(tokens))
        return self.head(outputs[:, -1])


def test_the_rnn_classifier():
    report = check_spec(RNN_CLASSIFIER, **SEQUENCES)
    assert [(r.type, r.output_shape, r.params) for r in report.layers] == [
        ("embedding", (20, 16), 256),
        ("lstm", (64,), 4 * (16 * 64 + 64 * 64 + 2 * 64)),
        ("linear", (6,), 390),
    ]
    assert report.total_params == 21638
    model = build_model(RNN_CLASSIFIER, **SEQUENCES)
    tokens = torch.randint(0, 16, (2, 20))
    assert same_function(model, SequenceClassifier(), tokens)


def test_the_xor_network():
    spec = parse_spec(XOR_NET)
    assert spec.training.optimizer.type == "adam"
    assert spec.training.loss == "binary_cross_entropy"
    report = check_spec(spec, **XOR)
    assert [(r.type, r.output_shape, r.params) for r in report.layers] == [
        ("linear", (2,), 6),
        ("relu", (2,), 0),
        ("linear", (1,), 3),
        ("sigmoid", (1,), 0),
    ]
    assert report.total_params == 9
    model = build_model(spec, **XOR)
    reference = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1), nn.Sigmoid())
    assert same_function(model, reference, torch.tensor([[0.0, 0.0], [0.0, 1.0]]))


def test_the_models_check_and_build_against_the_registered_datasets():
    """docs/runtime.md: build_model(spec, info) with the DatasetInfo of datasets.py."""
    from runtime.datasets import dataset_info

    for document, name, params in (
        (CIFAR_CNN, "cifar10", 62006),
        (CIFAR_CNN, "shapes", 62006),
        (RNN_CLASSIFIER, "sequences", 21638),
        (XOR_NET, "xor", 9),
    ):
        info = dataset_info(name)
        assert check_spec(document, info).total_params == params
        assert sum(p.numel() for p in build_model(document, info).parameters()) == params
