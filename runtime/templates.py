"""Built-in exercise templates: the product's three reference models, each as a spec and as code.

(a) the CIFAR-10 CNN of PyTorch's CIFAR-10 tutorial, (b) an RNN sequence classifier, (c) the XOR
network. Teachers start exercises from them; the demo course is built on them.
"""

from dataclasses import dataclass

from runtime.trainer import ComputeBudget


@dataclass(frozen=True)
class ExerciseTemplate:
    slug: str
    title: str
    summary: str
    dataset: str  # the dataset it runs on everywhere
    other_datasets: tuple[str, ...]  # where it also runs when the data directory has them
    spec: dict
    code: str
    budget: ComputeBudget  # a CPU budget it fits in


CIFAR_CNN_LAYERS = [
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
]

CIFAR_CNN_TRAINING = {
    "optimizer": {"type": "sgd", "lr": 0.001, "momentum": 0.9},
    "schedule": {"type": "constant"},
    "loss": "cross_entropy",
    "epochs": 20,
    "batch_size": 100,
    "augment": {
        "random_crop_padding": 4,
        "horizontal_flip": True,
        "normalize_mean": [0.5, 0.5, 0.5],
        "normalize_std": [0.5, 0.5, 0.5],
    },
    "seed": 0,
}

CIFAR_CNN_CODE = '''\
import torch
import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    """The CNN of PyTorch's CIFAR-10 tutorial."""

    def __init__(self, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def build_model(input_shape, num_classes):
    return Net(num_classes)


def configure_optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
'''

RNN_LAYERS = [
    {"type": "embedding", "embedding_dim": 16},
    {"type": "lstm", "hidden_size": 64, "output": "last"},
    {"type": "linear", "out_features": 6},
]

RNN_TRAINING = {
    "optimizer": {"type": "adam", "lr": 0.005},
    "schedule": {"type": "constant"},
    "loss": "cross_entropy",
    "epochs": 4,
    "batch_size": 64,
    "seed": 0,
}

RNN_CODE = '''\
import torch
from torch import nn

VOCAB_SIZE = 16  # the `sequences` dataset's tokens are the ids 0 to 15


class SequenceClassifier(nn.Module):
    """Embeds each token, reads the sequence with an LSTM, classifies from the last step."""

    def __init__(self, vocab_size, num_classes, embedding_dim=16, hidden_size=64):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, tokens):
        outputs, _ = self.lstm(self.embedding(tokens))
        return self.head(outputs[:, -1])


def build_model(input_shape, num_classes):
    return SequenceClassifier(VOCAB_SIZE, num_classes)


def configure_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=0.005)
'''

XOR_LAYERS = [
    {"type": "linear", "in_features": 2, "out_features": 2},
    {"type": "relu"},
    {"type": "linear", "in_features": 2, "out_features": 1},
    {"type": "sigmoid"},
]

XOR_TRAINING = {
    "optimizer": {"type": "adam", "lr": 0.05},
    "schedule": {"type": "constant"},
    "loss": "binary_cross_entropy",
    "epochs": 60,
    "batch_size": 32,
    "seed": 2,  # the 2-2-1 net can end in a dead-ReLU minimum; seed 2 learns XOR here
}

XOR_CODE = """\
import torch
from torch import nn


def build_model(input_shape, num_classes):
    # Two hidden units are enough for XOR; the sigmoid turns the output into a probability.
    return nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1), nn.Sigmoid())


def configure_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=0.05)
"""


def _spec(layers: list[dict], training: dict) -> dict:
    return {"version": 1, "layers": layers, "training": training}


TEMPLATES: dict[str, ExerciseTemplate] = {
    template.slug: template
    for template in (
        ExerciseTemplate(
            slug="cifar-cnn",
            title="A small CNN for 32x32 colour images",
            summary="The CNN of PyTorch's CIFAR-10 tutorial: two conv/pool stages and three "
            "linear layers, trained with SGD and momentum, random crops and flips.",
            dataset="shapes",
            other_datasets=("cifar10",),
            spec=_spec(CIFAR_CNN_LAYERS, CIFAR_CNN_TRAINING),
            code=CIFAR_CNN_CODE,
            budget=ComputeBudget(max_seconds=300, max_epochs=30),
        ),
        ExerciseTemplate(
            slug="rnn-sequences",
            title="An RNN that classifies sequences",
            summary="Embeds tokens and reads them with an LSTM; trained with Adam and "
            "cross-entropy.",
            dataset="sequences",
            other_datasets=(),
            spec=_spec(RNN_LAYERS, RNN_TRAINING),
            code=RNN_CODE,
            budget=ComputeBudget(max_seconds=180, max_epochs=30),
        ),
        ExerciseTemplate(
            slug="xor",
            title="The XOR network",
            summary="Two inputs, two hidden ReLU units and a sigmoid output: the smallest "
            "network that learns XOR. Adam and binary cross-entropy.",
            dataset="xor",
            other_datasets=(),
            spec=_spec(XOR_LAYERS, XOR_TRAINING),
            code=XOR_CODE,
            budget=ComputeBudget(max_seconds=60, max_epochs=200),
        ),
    )
}
