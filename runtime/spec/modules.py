"""The torch modules a spec needs beyond torch.nn: recurrent outputs and residual blocks."""

import torch
from torch import nn


class Recurrent(nn.Module):
    """An RNN, LSTM or GRU (batch_first) that returns the last step or every step.

    For a bidirectional layer, "last" joins the forward direction's last step with the
    backward direction's first step: each of them has read the whole sequence.
    """

    def __init__(self, rnn: nn.RNNBase, output: str):
        super().__init__()
        self.rnn = rnn
        self.output = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps, _ = self.rnn(x)
        if self.output == "all":
            return steps
        if not self.rnn.bidirectional:
            return steps[:, -1]
        h = self.rnn.hidden_size
        return torch.cat((steps[:, -1, :h], steps[:, 0, h:]), dim=-1)

    def extra_repr(self) -> str:
        return f"output={self.output!r}"


class Residual(nn.Module):
    """x + body(x): the body keeps the shape, so the two can be added."""

    def __init__(self, body: nn.Sequential):
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)
