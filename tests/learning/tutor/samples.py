"""Three small lessons of a course, as a teacher would write them, for the tutor's tests; and
helpers to drive a tutor's stream from a sync test."""

import asyncio
from collections.abc import AsyncIterator

from apps.learning.tutor.base import Lesson, TutorChunk, TutorDone, TutorEvent

MLP_XOR = Lesson(
    lesson_id=11,
    title="Multilayer perceptrons and XOR",
    url="/courses/nn/lessons/11/",
    body_markdown="""\
A perceptron computes a weighted sum of its inputs and passes it through an activation.

## Why one layer is not enough

XOR outputs 1 when exactly one of its two inputs is 1. No single straight line separates the
inputs where XOR is 1 from those where it is 0, so a single linear layer cannot learn XOR,
however long it trains.

| x1 | x2 | XOR |
|----|----|-----|
| 0  | 0  | 0   |
| 0  | 1  | 1   |
| 1  | 0  | 1   |
| 1  | 1  | 0   |

## A hidden layer

A hidden layer with a nonlinear activation such as ReLU bends the input space, so that the
output layer can separate the XOR classes with a line. Two hidden units are enough in theory,
but training is more reliable with four to eight.

```python
model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
```

The weights are learned by backpropagation: the gradient of the loss flows backwards through
each layer, and gradient descent moves every weight a small step against it.
""",
)

CONVOLUTIONS = Lesson(
    lesson_id=12,
    title="Convolutions",
    url="/courses/nn/lessons/12/",
    body_markdown="""\
# Convolutions

A convolution slides a small kernel over an image and computes, at each position, the weighted
sum of the pixels under it. The same kernel weights are shared across every position, which is
why a convolutional layer needs far fewer parameters than a fully connected one.

## Padding and stride

Padding adds a border of zeros around the image so the output keeps its size; the stride is how
far the kernel moves between positions. With a 3x3 kernel, padding 1 and stride 1 keep the
height and width unchanged.

```python
conv = nn.Conv2d(in_channels=1, out_channels=16, kernel_size=3, padding=1)
```

## Pooling

Max pooling keeps the largest value of each small window, halving the feature map's height and
width with a 2x2 window, and makes the features a little robust to small shifts.
""",
)

RECURRENT = Lesson(
    lesson_id=13,
    title="Recurrent networks",
    url="/courses/nn/lessons/13/",
    body_markdown="""\
# Recurrent networks

A recurrent network reads a sequence one step at a time and carries a hidden state from each
step to the next, so what it read earlier can shape what it outputs later.

## Vanishing gradients

When a recurrent network is unrolled over many time steps, the gradient is multiplied by the
same weights again and again, so it can shrink towards zero: the vanishing gradient problem.
Long short-term memory cells (LSTM) and gated recurrent units (GRU) add gates that let the
state pass through many steps unchanged.

- clip the gradient norm when it explodes instead;
- prefer an LSTM or a GRU for long sequences.
""",
)

LESSONS = (MLP_XOR, CONVOLUTIONS, RECURRENT)


def collect(stream: AsyncIterator[TutorEvent]) -> list[TutorEvent]:
    """Every event of a tutor's stream, driving the async generator to its end."""

    async def drain() -> list[TutorEvent]:
        return [event async for event in stream]

    return asyncio.run(drain())


def split_events(events: list[TutorEvent]) -> tuple[list[TutorChunk], TutorDone]:
    """The chunks, and the TutorDone, checked to come once, last."""
    *chunks, done = events
    assert isinstance(done, TutorDone)
    assert all(isinstance(c, TutorChunk) for c in chunks)
    return chunks, done  # type: ignore[return-value]
