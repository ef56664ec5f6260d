"""The torch modules a spec needs beyond torch.nn: the model itself, recurrent outputs and
residual blocks.

Padded token ids. A text dataset's samples are token ids padded with `pad_id` (0) to a fixed
number of steps (runtime/text.py). A recurrent layer must not read the padding: its "last" step
would be a pad's, and a bidirectional layer would start its backward pass on pads. So the model
of such a dataset (`SpecModel` with `pad_id` set, which build_model makes when the spec has a
recurrent layer) computes each sample's length from its input, the count of its ids that are not
`pad_id` (at least 1, as the tokeniser never gives an empty text), and hands it to every
recurrent layer, which reads packed sequences (`torch.nn.utils.rnn.pack_padded_sequence`). The
layers in between (dropout, layer norm, linear per step, a transformer layer) keep the steps,
so the lengths stay right. A dataset whose every sequence is full (`sequences`, where id 0 is a
real token) has no `pad_id`: nothing is packed, and the model is the plain stack it always was.

The packed model exports to ONNX as it is: the exporter gives the lengths to the RNN, GRU and
LSTM operators as their `sequence_lens` (both directions of a bidirectional layer honour them,
and the steps past a length come out as zeros), and onnxruntime gives PyTorch's numbers. The
samples are put in order of length and back with `argsort` (TopK and Gather in the graph),
rather than pack_padded_sequence's own `enforce_sorted=False`, whose inverse permutation is a
ScatterElements, an operator the artifact checks do not accept; and "last" is picked from the
unpacked steps by a mask of each sample's last position (Range, Equal, Mul, ReduceSum).
"""

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def token_lengths(tokens: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Each sample's length: the count of its ids that are not `pad_id`, at least 1 (int64 [N])."""
    return (tokens != pad_id).sum(dim=1).clamp(min=1)


def _takes_lengths(module: nn.Module) -> bool:
    return bool(getattr(module, "takes_lengths", False))


def run_layers(layers, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """The layers one after the other, each recurrent one (or block holding one) given the
    samples' lengths as well."""
    for layer in layers:
        x = layer(x, lengths) if _takes_lengths(layer) else layer(x)
    return x


class SpecModel(nn.Sequential):
    """The spec's layers in order: a torch.nn.Sequential (model[0] is the first layer, the
    state_dict keys are the positions), which with `pad_id` set computes the samples' lengths
    from the token ids it receives and hands them to its recurrent layers."""

    def __init__(self, *layers: nn.Module, pad_id: int | None = None):
        super().__init__(*layers)
        self.pad_id = pad_id

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad_id is None:
            return super().forward(x)
        return run_layers(self, x, token_lengths(x, self.pad_id))

    def __getitem__(self, index):
        part = super().__getitem__(index)
        if isinstance(part, SpecModel):  # a slice (trainer.logits_model's) reads the same ids
            part.pad_id = self.pad_id
        return part

    def extra_repr(self) -> str:
        return "" if self.pad_id is None else f"pad_id={self.pad_id}"


class Recurrent(nn.Module):
    """An RNN, LSTM or GRU (batch_first) that returns the last step or every step.

    For a bidirectional layer, "last" joins the forward direction's last step with the
    backward direction's first step: each of them has read the whole sequence. Given the
    samples' `lengths`, it reads packed sequences: "last" is each sample's own last token (the
    backward direction starts there), and "all" gives zeros at the padded steps.
    """

    takes_lengths = True

    def __init__(self, rnn: nn.RNNBase, output: str):
        super().__init__()
        self.rnn = rnn
        self.output = output

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is not None:
            return self._packed(x, lengths)
        steps, _ = self.rnn(x)
        if self.output == "all":
            return steps
        if not self.rnn.bidirectional:
            return steps[:, -1]
        h = self.rnn.hidden_size
        return torch.cat((steps[:, -1, :h], steps[:, 0, h:]), dim=-1)

    def _packed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        order = torch.argsort(lengths, descending=True)
        back = torch.argsort(order)
        packed = pack_padded_sequence(
            x.index_select(0, order),
            lengths.index_select(0, order).cpu(),
            batch_first=True,
            enforce_sorted=True,
        )
        steps, _ = self.rnn(packed)
        steps, _ = pad_packed_sequence(steps, batch_first=True, total_length=x.shape[1])
        steps = steps.index_select(0, back)  # zeros past each sample's length
        if self.output == "all":
            return steps
        # Each sample's own last step, picked by a mask rather than indexed (the exporter turns
        # a gather at computed positions into an If; the final hidden state of a one-layer
        # RNN does not export at all). The backward direction's first step has read the whole
        # text from its last token.
        at_last = torch.arange(steps.shape[1], device=steps.device) == (lengths - 1).unsqueeze(1)
        last = (steps * at_last.unsqueeze(2)).sum(dim=1)
        if not self.rnn.bidirectional:
            return last
        h = self.rnn.hidden_size
        return torch.cat((last[:, :h], steps[:, 0, h:]), dim=-1)

    def extra_repr(self) -> str:
        return f"output={self.output!r}"


class Residual(nn.Module):
    """x + body(x): the body keeps the shape, so the two can be added."""

    def __init__(self, body: nn.Sequential):
        super().__init__()
        self.body = body
        self.takes_lengths = any(_takes_lengths(layer) for layer in body)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return x + run_layers(self.body, x, lengths)
