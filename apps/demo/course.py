"""The demo course, as data: "Building neural networks", its skills, lessons and exercises.

The three reference models of `runtime.templates` are its first exercises (each as a
spec and as code), an MLP on scikit-learn's digits its fourth (spec only), and an embedding and
GRU on the shipped Chinese and English corpus (runtime/corpora/topics-zh-en.csv, uploaded as
the demo school's own text dataset) its fifth.
"""

from dataclasses import dataclass

COURSE_SLUG = "building-neural-networks"
COURSE_TITLE = "Building neural networks"
COURSE_SUMMARY = (
    "From the XOR network to convolutional and recurrent networks: build each model as a "
    "layer-stack spec or in PyTorch code, train it on a GPU and see how it scores."
)


@dataclass(frozen=True)
class DemoSkill:
    slug: str
    name: str
    description: str
    prerequisites: tuple[str, ...] = ()


SKILLS = (
    DemoSkill("training", "Training a network", "Losses, optimisers, learning rates and epochs."),
    DemoSkill(
        "mlp",
        "Multilayer perceptrons",
        "Stacking linear layers with non-linearities.",
        ("training",),
    ),
    DemoSkill(
        "generalisation",
        "Generalisation",
        "Validation, overfitting and regularisation.",
        ("training",),
    ),
    DemoSkill("cnn", "Convolutional networks", "Convolutions and pooling for images.", ("mlp",)),
    DemoSkill("rnn", "Recurrent networks", "Embeddings and LSTMs for sequences.", ("mlp",)),
)


@dataclass(frozen=True)
class DemoLesson:
    position: int
    title: str
    body: str
    skills: tuple[str, ...]


LESSON_MLP = """\
# Multilayer perceptrons and XOR

A **linear layer** computes `y = W x + b`: every output is a weighted sum of the inputs. Stack
two linear layers and you still have one linear function, because `W2 (W1 x) = (W2 W1) x`.
A straight line cannot separate the four XOR points:

| x1 | x2 | XOR |
|----|----|-----|
| 0  | 0  | 0   |
| 0  | 1  | 1   |
| 1  | 0  | 1   |
| 1  | 1  | 0   |

Put a **non-linearity** between the layers and the network can bend its decision boundary.
ReLU, `max(0, z)`, is the usual choice: cheap, and its gradient does not vanish for positive
inputs. Two hidden ReLU units are enough for XOR:

```
linear(2 -> 2) -> relu -> linear(2 -> 1) -> sigmoid
```

The sigmoid turns the last number into a probability, and **binary cross-entropy** measures
how far that probability is from the label. Training repeats: predict a batch, measure the
loss, take its gradient with respect to every weight, and step each weight against it. The
**optimiser** decides the step; Adam adapts it per weight, so a learning rate of 0.01 to 0.05
works for most small networks.

Things to try: a network this small can get stuck with a "dead" ReLU that never fires. A
different seed, a third hidden unit or a smaller learning rate gets it out.
"""

LESSON_CNN = """\
# Convolutional networks

An image of 32 x 32 pixels in colour has 3072 numbers. A linear layer from it to 120 units
needs 368,640 weights, and it has to learn separately that a corner at the top left is the
same thing as a corner at the bottom right.

A **convolution** slides one small filter (say 5 x 5 x 3) over the whole image and records
how strongly each patch matches it. The same weights are used everywhere, so a filter that
finds an edge finds it anywhere, with 76 weights instead of thousands. A layer has several
filters (its *output channels*), each producing a map of where its pattern occurs.

**Pooling** keeps the strongest response in each 2 x 2 window: the maps shrink by half, and
small shifts of the input stop mattering. The classic pattern is

```
conv -> relu -> pool -> conv -> relu -> pool -> flatten -> linear -> relu -> linear
```

Early filters find edges and colours; later ones combine them into corners, curves and whole
shapes. The final linear layers turn those into one score per class, and **cross-entropy**
trains the scores.

**Augmentation** shows the network a slightly different image every epoch (a random crop
after padding, a horizontal flip), so it learns the shape rather than the exact pixels.
"""

LESSON_RNN = """\
# Recurrent networks

Some inputs are sequences: words, notes, events in time. Their meaning depends on the order,
and their length is not one fixed number of features.

An **embedding** turns each token id into a vector the network learns, so similar tokens can
end up close together. A **recurrent** layer then reads the vectors one step at a time and
keeps a hidden state: at each step it combines the new input with what it remembers.

A plain RNN forgets quickly, because its gradient shrinks a little at every step it travels
back. The **LSTM** adds a cell state with gates that decide what to keep, what to forget and
what to output, so information can survive many steps.

To classify a whole sequence, keep the hidden state after the **last** step: it has read
everything. Then a linear layer gives one score per class:

```
embedding(16) -> lstm(64, output: last) -> linear(6)
```

In this course's `sequences` dataset, the class is the order in which three marker tokens
appear among random ones; only a model that remembers what it has seen can tell.
"""

LESSON_TRAINING = """\
# Training well: learning rates, overfitting and underfitting

## The learning rate

The optimiser moves every weight a step against its gradient; the **learning rate** sets how
long the step is. Too high, and the loss jumps around, grows, or becomes NaN: the run
**diverges**. Divide the learning rate by ten and try again. Too low, and the loss barely moves
from one epoch to the next: multiply it by ten, or train for more epochs. With Adam, 0.001 to
0.01 is a good start for most networks.

## Overfitting

A network with many weights can memorise its training examples. Then its training accuracy
keeps rising while its **validation accuracy** stalls or falls: it has learned the examples, not
the rule. Stop earlier, use a smaller model, add **dropout** or **weight decay**, or augment the
data, so it has to learn what the examples share.

## Underfitting

When even the training accuracy stays low, the model cannot represent the rule: it is too
small, or it has no non-linearity between its linear layers. Add units or layers, or train for
longer if the loss is still falling.

## Confused classes

The confusion matrix shows which classes the model mixes up. Look at examples of both: are they
alike? A convolution sees local patterns that a linear layer over raw pixels misses.
"""

LESSONS = (
    DemoLesson(1, "Multilayer perceptrons and XOR", LESSON_MLP, ("mlp", "training")),
    DemoLesson(2, "Convolutional networks", LESSON_CNN, ("cnn", "training")),
    DemoLesson(3, "Recurrent networks", LESSON_RNN, ("rnn",)),
    DemoLesson(4, "Training well", LESSON_TRAINING, ("training", "generalisation")),
)


@dataclass(frozen=True)
class DemoExercise:
    title: str
    instructions: str
    dataset: str
    template: str | None  # a runtime.templates slug: its spec, code and budget
    min_metric: float
    target_metric: float
    skills: tuple[str, ...]


DIGITS_STARTER_SPEC = {
    "version": 1,
    "layers": [{"type": "linear", "out_features": 10}],
    "training": {
        "optimizer": {"type": "adam", "lr": 0.003},
        "epochs": 40,
        "batch_size": 64,
        "seed": 0,
    },
}

# The fifth exercise's dataset: the shipped corpus, which the demo data uploads as the demo
# school's own text dataset (services._corpus_seed); its exercise names it by this marker.
CORPUS_DATASET = "corpus:topics-zh-en"

EXERCISES = (
    DemoExercise(
        "The XOR network",
        "Train a network that computes XOR of its two inputs. The starter is the smallest one "
        "that can: make it learn reliably, as a spec or in PyTorch code.",
        "xor",
        "xor",
        0.5,
        0.95,
        ("mlp", "training"),
    ),
    DemoExercise(
        "A CNN for shapes",
        "Classify 32 x 32 colour images of ten shapes. The starter is the CNN of PyTorch's "
        "CIFAR-10 tutorial; it also runs on CIFAR-10 itself.",
        "shapes",
        "cifar-cnn",
        0.3,
        0.9,
        ("cnn", "training"),
    ),
    DemoExercise(
        "An RNN that reads sequences",
        "Tell which of six orders three marker tokens appear in, among random tokens. Start "
        "from the embedding and LSTM in the starter.",
        "sequences",
        "rnn-sequences",
        0.3,
        0.9,
        ("rnn",),
    ),
    DemoExercise(
        "An MLP for handwritten digits",
        "Recognise 8 x 8 images of handwritten digits. The starter is one linear layer; add a "
        "hidden layer with a non-linearity and reach 95% accuracy.",
        "digits",
        None,
        0.5,
        0.95,
        ("mlp",),
    ),
    DemoExercise(
        "An RNN that reads Chinese and English",
        "Tell the topic of a short sentence (weather, food, sport or study), in Chinese or in "
        "English. Chinese is tokenised one character per token, English by words; the starter "
        "is an embedding and a GRU, which reads each sentence only up to its own length.",
        CORPUS_DATASET,
        None,
        0.25,
        0.7,
        ("rnn", "generalisation"),
    ),
)
DIGITS_BUDGET = {"max_seconds": 120, "max_epochs": 100}

CORPUS_FILE = "topics-zh-en.csv"
CORPUS_SLUG = "topics-zh-en"
CORPUS_TITLE = "Topics of short sentences, Chinese and English"
CORPUS_DESCRIPTION = (
    "200 sentences written for Aula (CC0), 100 in Chinese and 100 in English, each about the "
    "weather, food, sport or study (runtime/corpora/README.md)."
)
# Embedding, GRU, linear: about 130,000 parameters (mostly the 8,000-token embedding), a few
# seconds on a CPU. Measured on three secrets: 0.38 to 0.55 on the hidden parts (chance 0.25;
# logistic regression on tf-idf counts reaches 0.64), so 140 sentences leave room to improve.
CORPUS_STARTER_SPEC = {
    "version": 1,
    "layers": [
        {"type": "embedding", "embedding_dim": 16},
        {"type": "dropout", "p": 0.5},
        {"type": "gru", "hidden_size": 16},
        {"type": "linear", "out_features": 4},
    ],
    "training": {
        "optimizer": {"type": "adam", "lr": 0.01, "weight_decay": 0.0001},
        "epochs": 25,
        "batch_size": 16,
        "seed": 0,
    },
}
CORPUS_STARTER_CODE = """\
import torch
import torch.nn as nn


class TopicReader(nn.Module):
    \"\"\"Token ids [batch, 64], padded with 0 (ids below 8000): an embedding, then a GRU that
    reads each text only up to its length, the count of its ids that are not 0.\"\"\"

    def __init__(self, num_classes):
        super().__init__()
        self.embedding = nn.Embedding(8000, 16, padding_idx=0)
        self.gru = nn.GRU(16, 16, batch_first=True)
        self.out = nn.Linear(16, num_classes)

    def forward(self, ids):
        lengths = (ids != 0).sum(dim=1).clamp(min=1)
        steps, _ = self.gru(self.embedding(ids))
        # Each text's own last step, picked by a mask (an index would not export to ONNX).
        # A forward GRU's step there has read the text and none of the padding after it.
        positions = torch.arange(ids.shape[1], device=ids.device)
        at_last = positions == (lengths - 1).unsqueeze(1)
        last = (steps * at_last.unsqueeze(2)).sum(dim=1)
        return self.out(last)


def build_model(input_shape, num_classes):
    return TopicReader(num_classes)
"""
CORPUS_BUDGET = {"max_seconds": 120, "max_epochs": 60}
