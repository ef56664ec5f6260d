"""Every layer type a spec can use: its settings, shape inference, size, cost and torch module."""

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from .document import LayerSpec
from .fields import Bool, Choice, Field, Int, IntPair, Layers, Num
from .limits import MAX_HEADS, MAX_KERNEL, MAX_POOL_OUTPUT, MAX_RNN_LAYERS, MAX_UNITS, MAX_VOCAB
from .words import KIND_TEXT, count, either, grid, number, plural, shape


@dataclass(frozen=True)
class Act:
    """What flows between layers, per sample: a shape, and whether it still holds token ids."""

    shape: tuple[int, ...]
    tokens: bool = False

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Out:
    """What a layer makes of its input; `args` are the torch constructor's arguments."""

    shape: tuple[int, ...]
    params: int = 0
    flops: int = 0
    args: dict[str, Any] = field(default_factory=dict)
    tokens: bool = False
    children: tuple["Resolved", ...] = ()


@dataclass(frozen=True)
class Resolved:
    """A layer with everything inference learned about it: enough to build it."""

    layer: LayerSpec
    input: Act
    output: Act
    params: int
    flops: int
    args: dict[str, Any]
    children: tuple["Resolved", ...] = ()


class LayerError(Exception):
    """The layer cannot take its input. `tail` finishes the sentence "layer 3 (conv2d) ..."."""

    def __init__(self, tail: str, field: str | None = None):
        super().__init__(tail)
        self.tail = tail
        self.field = field


class Halt(Exception):
    """Stop inference quietly: the problem was already reported (inside a residual block)."""


class Context(Protocol):
    """The walk over the layers, as a layer sees it (check.py implements it)."""

    kind: str
    vocab_size: int | None
    pad_id: int | None  # the id that pads token sequences; None when every one is full
    batch_size: int
    prev: LayerSpec | None  # the layer whose output this one receives
    flattened: bool

    def stack(
        self, layers: tuple[LayerSpec, ...], x: Act
    ) -> tuple[Act | None, tuple[Resolved, ...]]: ...

    def problem(
        self, layer: LayerSpec, tail: str, field: str | None = None, path: str | None = None
    ) -> None: ...


def pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def pair_text(value: tuple[int, int]) -> str:
    return str(value[0]) if value[0] == value[1] else shape(value)


def source(ctx: Context, what: str, first: str) -> str:
    """Where a wrong size comes from: the previous layer, or the dataset for the first one."""
    return f"check the {what} after {ctx.prev.type}" if ctx.prev else first


def stated(layer: LayerSpec, ctx: Context, name: str, actual: int, unit: str, hint: str) -> None:
    """A size the learner wrote down but need not have: report it when it is wrong."""
    value = layer.options[name]
    if value is not None and value != actual:
        tail = f"expects {plural(value, unit)} but receives {count(actual)}; {hint}"
        ctx.problem(layer, tail, name)


def need_image(kind: "LayerType", x: Act, ctx: Context) -> tuple[int, int, int]:
    if len(x.shape) == 3:
        return x.shape
    if ctx.kind != "image":
        hint = f"{kind.noun} work on images, and this dataset's samples are {KIND_TEXT[ctx.kind]}"
    elif ctx.flattened:
        hint = f"put {kind.noun} before flatten"
    else:
        hint = f"{kind.noun} work on [channels, height, width] inputs"
    got = shape(x.shape)
    raise LayerError(
        f"needs an image-shaped input [channels, height, width] but receives {got}; {hint}"
    )


def need_sequence(kind: "LayerType", x: Act, ctx: Context) -> tuple[int, int]:
    if len(x.shape) == 2:
        return x.shape
    prev = ctx.prev
    if prev is not None and prev.type in RECURRENT and prev.options["output"] == "last":
        hint = f'set output to "all" on layer {prev.position} ({prev.type}) to pass on every step'
    else:
        hint = f"{kind.noun} work on sequences, such as the output of an embedding layer"
    got = shape(x.shape)
    raise LayerError(f"needs a sequence [steps, features] but receives {got}; {hint}")


def slide(hw: tuple[int, int], k, s, p, what: str, advice: str) -> tuple[int, int]:
    """Output height and width of a kernel or window sliding over an image (floor mode)."""
    if any(n + 2 * pad < size for n, size, pad in zip(hw, k, p, strict=True)):
        need = (k[0] - 2 * p[0], k[1] - 2 * p[1])
        padded = f" with padding {pair_text(p)}" if any(p) else ""
        raise LayerError(
            f"would shrink the {grid(hw)} input below {grid((1, 1))}: its {grid(k)} {what}{padded} "
            f"needs an input of at least {grid(need)}; {advice}"
        )
    return tuple(
        (n + 2 * pad - size) // step + 1 for n, size, step, pad in zip(hw, k, s, p, strict=True)
    )


def needs_batch(layer: LayerSpec, x: Act, ctx: Context) -> None:
    """Batch norm in training needs two values per channel, as torch insists."""
    if ctx.batch_size * math.prod(x.shape[1:]) < 2:
        tail = (
            "normalises each channel over the batch, so it needs batches of at least 2 "
            "samples; set training.batch_size to 2 or more"
        )
        ctx.problem(layer, tail, path="training.batch_size")


class LayerType:
    """One kind of layer. Adding a layer type means one subclass (or instance) in LAYERS.

    Shapes are per sample (no batch dimension) and plain integer tuples: inference never makes
    a tensor. FLOPs estimate one forward pass of one sample: 2 x multiply-accumulates for
    linear, convolution, recurrent and attention layers; one per window element for pooling;
    one per value for activations, dropout, normalisation and the residual addition; none for
    flatten and embedding lookups.
    """

    type = ""
    title = ""
    description = ""
    torch_name = ""  # the torch.nn class that build() makes from Out.args
    noun = ""  # the layer family in messages: "conv layers"
    fields: dict[str, Field] = {}
    takes_tokens = False

    def validate(self, options: dict[str, Any]) -> list[tuple[str, str]]:
        """Problems among the layer's own settings, as (field, sentence tail)."""
        return []

    def infer(self, layer: LayerSpec, x: Act, ctx: Context) -> Out:
        """Elementwise by default: same shape, no parameters, one FLOP per value."""
        return Out(x.shape, 0, x.size)

    def build(self, r: Resolved, nn):
        return getattr(nn, self.torch_name)(**r.args)


class LinearLayer(LayerType):
    type, torch_name, title = "linear", "Linear", "Fully connected layer"
    description = (
        "Weights times the last dimension plus a bias: out_features values per position. "
        "in_features follows from the previous layer; when given, it is checked."
    )
    fields = {
        "out_features": Int("number of outputs", 1, MAX_UNITS),
        "in_features": Int("number of inputs; inferred when left out", 1, MAX_UNITS, default=None),
        "bias": Bool("add a learned bias", default=True),
    }

    def infer(self, layer: LayerSpec, x: Act, ctx: Context) -> Out:
        o, n = layer.options, x.shape[-1]
        if o["in_features"] is not None and o["in_features"] != n:
            ctx.problem(layer, self.mismatch(o["in_features"], x, ctx), "in_features")
        out = o["out_features"]
        params = n * out + (out if o["bias"] else 0)
        flops = 2 * math.prod(x.shape[:-1]) * n * out
        args = {"in_features": n, "out_features": out, "bias": o["bias"]}
        return Out((*x.shape[:-1], out), params, flops, args)

    @staticmethod
    def mismatch(expected: int, x: Act, ctx: Context) -> str:
        head = f"expects {plural(expected, 'input')} but receives"
        if len(x.shape) == 1:
            first = f"each sample of this dataset has {plural(x.shape[0], 'value')}"
            return f"{head} {count(x.shape[0])}; {source(ctx, 'size', first)}"
        if x.size == expected:
            return f"{head} {shape(x.shape)}; add a flatten layer before it"
        hint = source(ctx, "size", "add a flatten layer before it")
        last = count(x.shape[-1])
        return f"{head} {shape(x.shape)} and works on its last dimension ({last}); {hint}"


class Conv2dLayer(LayerType):
    type, torch_name, title, noun = "conv2d", "Conv2d", "2-D convolution", "conv layers"
    description = (
        "Slides out_channels learned filters of kernel_size over an image "
        "[channels, height, width]. in_channels follows from the input; when given, it is checked."
    )
    fields = {
        "out_channels": Int("number of filters: the output channels", 1, MAX_UNITS),
        "kernel_size": IntPair("filter size", 1, MAX_KERNEL),
        "in_channels": Int("input channels; inferred when left out", 1, MAX_UNITS, default=None),
        "stride": IntPair("step between filter positions", 1, MAX_KERNEL, default=1),
        "padding": IntPair("zeros added on each side", 0, MAX_KERNEL, default=0),
        "bias": Bool("add a learned bias per output channel", default=True),
    }

    def infer(self, layer: LayerSpec, x: Act, ctx: Context) -> Out:
        c, h, w = need_image(self, x, ctx)
        o = layer.options
        first = f"this dataset's images have {plural(c, 'channel')}"
        stated(layer, ctx, "in_channels", c, "input channel", source(ctx, "channels", first))
        k, s, p = pair(o["kernel_size"]), pair(o["stride"]), pair(o["padding"])
        advice = "use a smaller kernel_size, add padding, or remove an earlier pooling layer"
        oh, ow = slide((h, w), k, s, p, "kernel", advice)
        out = o["out_channels"]
        params = out * c * k[0] * k[1] + (out if o["bias"] else 0)
        flops = 2 * c * k[0] * k[1] * out * oh * ow
        keep = ("kernel_size", "stride", "padding", "bias")
        args = {"in_channels": c, "out_channels": out, **{key: o[key] for key in keep}}
        return Out((out, oh, ow), params, flops, args)


class PoolLayer(LayerType):
    noun = "pooling layers"
    fields = {
        "kernel_size": IntPair("window size", 1, MAX_KERNEL),
        "stride": IntPair(
            "step between windows; kernel_size when left out", 1, MAX_KERNEL, default=None
        ),
        "padding": IntPair(
            "padding on each side, at most half the window", 0, MAX_KERNEL, default=0
        ),
    }

    def __init__(self, type_: str, torch_name: str, title: str, description: str):
        self.type, self.torch_name, self.title, self.description = (
            type_,
            torch_name,
            title,
            description,
        )

    def validate(self, options: dict[str, Any]) -> list[tuple[str, str]]:
        k, p = pair(options["kernel_size"]), pair(options["padding"])
        if all(2 * pad <= size for pad, size in zip(p, k, strict=True)):
            return []
        most = pair_text((k[0] // 2, k[1] // 2))
        tail = f"has padding {pair_text(p)}, but its {grid(k)} window allows at most {most}"
        return [("padding", tail)]

    def infer(self, layer: LayerSpec, x: Act, ctx: Context) -> Out:
        c, h, w = need_image(self, x, ctx)
        o = layer.options
        stride = o["stride"] if o["stride"] is not None else o["kernel_size"]
        k, s, p = pair(o["kernel_size"]), pair(stride), pair(o["padding"])
        advice = "use a smaller kernel_size or remove an earlier pooling layer"
        oh, ow = slide((h, w), k, s, p, "window", advice)
        args = {"kernel_size": o["kernel_size"], "stride": stride, "padding": o["padding"]}
        return Out((c, oh, ow), 0, c * oh * ow * k[0] * k[1], args)


class AdaptivePoolLayer(LayerType):
    type, torch_name, noun = "adaptive_avgpool2d", "AdaptiveAvgPool2d", "pooling layers"
    title = "Adaptive average pooling"
    description = (
        "Averages each channel down to output_size, whatever the input's height and width."
    )
    fields = {"output_size": IntPair("output height and width", 1, MAX_POOL_OUTPUT)}

    def infer(self, layer: LayerSpec, x: Act, ctx: Context) -> Out:
        c, _, _ = need_image(self, x, ctx)
        oh, ow = pair(layer.options["output_size"])
        args = {"output_size": layer.options["output_size"]}
        return Out((c, oh, ow), 0, max(x.size, c * oh * ow), args)


class BatchNorm1dLayer(LayerType):
    type, torch_name, title = "batchnorm1d", "BatchNorm1d", "Batch normalisation (features)"
    description = (
        "Normalises each feature over the batch, then scales and shifts it; takes [features] "
        "or [channels, length]. num_features follows from the input; when given, it is checked."
    )
    fields = {
        "num_features": Int(
            "features to normalise; inferred when left out", 1, MAX_UNITS, default=None
        )
    }

    def infer(self, layer: LayerSpec, x: Act, ctx: Context) -> Out:
        if len(x.shape) == 3:
            got = shape(x.shape)
            raise LayerError(
                f"needs [features] or [channels, length] but receives {got}; "
                "use batchnorm2d on images"
            )
        n = x.shape[0]
        first = f"each sample of this dataset has {plural(n, 'value')}"
        stated(layer, ctx, "num_features", n, "feature", source(ctx, "size", first))
        needs_batch(layer, x, ctx)
        return Out(x.shape, 2 * n, x.size, {"num_features": n})


class BatchNorm2dLayer(LayerType):
    type, torch_name, noun = "batchnorm2d", "BatchNorm2d", "batchnorm2d layers"
    title = "Batch normalisation (images)"
    description = (
        "Normalises each channel of an image over the batch, then scales and shifts it. "
        "num_features follows from the input; when given, it is checked."
    )
    fields = {
        "num_features": Int(
            "channels to normalise; inferred when left out", 1, MAX_UNITS, default=None
        )
    }

    def infer(self, layer: LayerSpec, x: Act, ctx: Context) -> Out:
        c, _, _ = need_image(self, x, ctx)
        first = f"this dataset's images have {plural(c, 'channel')}"
        stated(layer, ctx, "num_features", c, "channel", source(ctx, "channels", first))
        needs_batch(layer, x, ctx)
        return Out(x.shape, 2 * c, x.size, {"num_features": c})


class LayerNormLayer(LayerType):
    type, torch_name, title = "layernorm", "LayerNorm", "Layer normalisation"
    description = "Normalises the last dimension of each sample, then scales and shifts it."

    def infer(self, layer: LayerSpec, x: Act, ctx: Context) -> Out:
        n = x.shape[-1]
        return Out(x.shape, 2 * n, x.size, {"normalized_shape": n})


class DropoutLayer(LayerType):
    type, torch_name, title = "dropout", "Dropout", "Dropout"
    description = "During training, zeroes each value with probability p and scales up the rest."
    fields = {
        "p": Num("probability of zeroing each value", 0, 1, hi_open=True, default=0.5),
    }

    def infer(self, layer: LayerSpec, x: Act, ctx: Context) -> Out:
        return Out(x.shape, 0, x.size, {"p": layer.options["p"]})


class ActivationLayer(LayerType):
    def __init__(self, type_: str, torch_name: str, title: str, description: str):
        self.type, self.torch_name, self.title, self.description = (
            type_,
            torch_name,
            title,
            description,
        )


class FlattenLayer(LayerType):
    type, torch_name, title = "flatten", "Flatten", "Flatten"
    description = "Turns each sample into one long vector, e.g. [16, 5, 5] into [400]."

    def infer(self, layer: LayerSpec, x: Act, ctx: Context) -> Out:
        ctx.flattened = True
        return Out((x.size,))


class EmbeddingLayer(LayerType):
    type, torch_name, title = "embedding", "Embedding", "Embedding"
    description = (
        "Turns each token id into a learned vector of embedding_dim numbers: [steps] becomes "
        "[steps, embedding_dim]. The first layer of a model on a token dataset. On a text "
        "dataset, whose texts are padded to the same number of steps with id 0, the padding's "
        "vector stays zero and is not learned."
    )
    fields = {
        "embedding_dim": Int("length of each token's vector", 1, MAX_UNITS),
        "num_embeddings": Int(
            "how many different tokens; the dataset's vocabulary size when left out",
            1,
            MAX_VOCAB,
            default=None,
        ),
    }
    takes_tokens = True

    def infer(self, layer: LayerSpec, x: Act, ctx: Context) -> Out:
        if not x.tokens:
            raise LayerError(self.misplaced(x, ctx))
        vocab, wanted = ctx.vocab_size, layer.options["num_embeddings"]
        if wanted is None and vocab is None:
            tail = "needs num_embeddings, because this dataset does not say how many tokens it has"
            raise LayerError(tail, "num_embeddings")
        if wanted is not None and vocab is not None and wanted < vocab:
            tail = (
                f"has num_embeddings {count(wanted)}, but this dataset has {count(vocab)} "
                f"different tokens; set num_embeddings to at least {count(vocab)} or leave it out"
            )
            ctx.problem(layer, tail, "num_embeddings")
        n, d = wanted or vocab, layer.options["embedding_dim"]
        args = {"num_embeddings": n, "embedding_dim": d}
        if ctx.pad_id is not None and ctx.pad_id < n:
            args["padding_idx"] = ctx.pad_id
        return Out((*x.shape, d), n * d, 0, args)

    @staticmethod
    def misplaced(x: Act, ctx: Context) -> str:
        if ctx.kind != "tokens" or ctx.prev is None:
            kind = KIND_TEXT[ctx.kind]
            return (
                f"needs token ids, but this dataset's samples are {kind}; "
                "use embedding only on token datasets"
            )
        prev = f"layer {ctx.prev.position} ({ctx.prev.type})"
        return f"needs token ids, so it must come first; it receives {shape(x.shape)} from {prev}"


class RecurrentLayer(LayerType):
    noun = "recurrent layers"
    fields = {
        "hidden_size": Int("size of the hidden state", 1, MAX_UNITS),
        "num_layers": Int("stacked layers", 1, MAX_RNN_LAYERS, default=1),
        "bidirectional": Bool("also read the sequence backwards", default=False),
        "output": Choice(
            '"last": the hidden state after the last step, [hidden_size]; "all": every '
            "step's, [steps, hidden_size] (both twice as wide when bidirectional). On padded "
            'texts, "last" is each text\'s own last token and "all" is zero at the padding',
            ("last", "all"),
            default="last",
        ),
        "dropout": Num("dropout between stacked layers", 0, 1, hi_open=True, default=0.0),
    }

    def __init__(self, type_: str, torch_name: str, gates: int, title: str):
        self.type, self.torch_name, self.gates, self.title = type_, torch_name, gates, title
        self.description = (
            f"{title} over a sequence [steps, features], batch first; returns the last step or "
            "all steps (output). Bidirectional last: the forward last step joined with the "
            "backward first step. On a text dataset, whose texts are padded with id 0 to the "
            "same number of steps, it reads each text only up to its own length (packed "
            "sequences): the padding never enters its state."
        )

    def validate(self, options: dict[str, Any]) -> list[tuple[str, str]]:
        if options["dropout"] == 0 or options["num_layers"] > 1:
            return []
        tail = (
            f"has dropout {number(options['dropout'])} but only one layer; dropout acts between "
            "stacked layers, so set num_layers to 2 or more, or dropout to 0"
        )
        return [("dropout", tail)]

    def infer(self, layer: LayerSpec, x: Act, ctx: Context) -> Out:
        steps, features = need_sequence(self, x, ctx)
        o = layer.options
        h, dirs = o["hidden_size"], 2 if o["bidirectional"] else 1
        params = macs = 0
        width = features
        for _ in range(o["num_layers"]):
            weights = self.gates * (width * h + h * h)
            params += dirs * (weights + 2 * self.gates * h)  # two bias vectors per direction
            macs += dirs * weights * steps
            width = h * dirs
        out = (width,) if o["output"] == "last" else (steps, width)
        keep = ("hidden_size", "num_layers", "bidirectional", "dropout")
        args = {"input_size": features, **{key: o[key] for key in keep}, "batch_first": True}
        return Out(out, params, 2 * macs, args)

    def build(self, r: Resolved, nn):
        from .modules import Recurrent

        return Recurrent(super().build(r, nn), r.layer.options["output"])


class TransformerLayer(LayerType):
    type, torch_name = "transformer_encoder_layer", "TransformerEncoderLayer"
    title, noun = "Transformer encoder layer", "transformer layers"
    description = (
        "Self-attention with nhead heads and a feed-forward part over a sequence "
        "[steps, features], batch first; keeps the shape. nhead must divide the features."
    )
    fields = {
        "nhead": Int("attention heads; must divide the input features (d_model)", 1, MAX_HEADS),
        "dim_feedforward": Int(
            "hidden size of the feed-forward part; 4 times the input features when left out",
            1,
            4 * MAX_UNITS,
            default=None,
        ),
        "dropout": Num("dropout inside the layer", 0, 1, hi_open=True, default=0.1),
        "activation": Choice("feed-forward activation", ("relu", "gelu"), default="relu"),
    }

    def infer(self, layer: LayerSpec, x: Act, ctx: Context) -> Out:
        steps, d = need_sequence(self, x, ctx)
        o = layer.options
        heads = o["nhead"]
        if d % heads:
            ctx.problem(layer, self.indivisible(heads, d), "nhead")
        ff = o["dim_feedforward"] or 4 * d
        # attention: q, k, v and output projections (4d² with 4d biases), two norms (4d),
        # feed-forward d->ff->d (2·d·ff + ff + d)
        params = 4 * d * d + 2 * d * ff + 9 * d + ff
        macs = 4 * steps * d * d + 2 * steps * steps * d + 2 * steps * d * ff
        args = {
            "d_model": d,
            "nhead": heads,
            "dim_feedforward": ff,
            "dropout": o["dropout"],
            "activation": o["activation"],
            "batch_first": True,
        }
        return Out(x.shape, params, 2 * macs, args)

    @staticmethod
    def indivisible(heads: int, d: int) -> str:
        divisors = [k for k in range(1, min(d, MAX_HEADS) + 1) if d % k == 0]
        near = sorted(sorted(divisors, key=lambda k: (abs(k - heads), k))[:4])
        return (
            f"has nhead {heads}, which does not divide its {count(d)} input features; choose "
            f"a number of heads that divides {count(d)}, such as {either([str(k) for k in near])}"
        )


class ResidualLayer(LayerType):
    type, title = "residual", "Residual block"
    description = (
        "Runs its own layers and adds their output to its input (x + layers(x)), so the "
        "layers must keep the shape."
    )
    fields = {"layers": Layers("the layers inside the block")}
    takes_tokens = True  # its first layer decides

    def infer(self, layer: LayerSpec, x: Act, ctx: Context) -> Out:
        out, children = ctx.stack(layer.layers, x)
        if out is None:
            raise Halt
        if out.shape != x.shape or out.tokens != x.tokens:
            raise LayerError(
                f"cannot add its layers' output to its input: its layers turn {shape(x.shape)} "
                f"into {shape(out.shape)}; the output must match the input to be added"
            )
        params = sum(c.params for c in children)
        flops = sum(c.flops for c in children) + x.size
        return Out(x.shape, params, flops, tokens=x.tokens, children=children)

    def build(self, r: Resolved, nn):
        from .modules import Residual

        return Residual(nn.Sequential(*(build_layer(c, nn) for c in r.children)))


RECURRENT = ("rnn", "lstm", "gru")

LAYERS: dict[str, LayerType] = {
    kind.type: kind
    for kind in (
        LinearLayer(),
        Conv2dLayer(),
        PoolLayer(
            "maxpool2d", "MaxPool2d", "Max pooling", "Keeps the largest value in each window."
        ),
        PoolLayer(
            "avgpool2d", "AvgPool2d", "Average pooling", "Averages the values in each window."
        ),
        AdaptivePoolLayer(),
        BatchNorm1dLayer(),
        BatchNorm2dLayer(),
        LayerNormLayer(),
        DropoutLayer(),
        ActivationLayer("relu", "ReLU", "ReLU", "max(0, x) for each value."),
        ActivationLayer("gelu", "GELU", "GELU", "A smooth ReLU: x times the normal CDF of x."),
        ActivationLayer("tanh", "Tanh", "Tanh", "Squashes each value into (-1, 1)."),
        ActivationLayer("sigmoid", "Sigmoid", "Sigmoid", "Squashes each value into (0, 1)."),
        FlattenLayer(),
        EmbeddingLayer(),
        RecurrentLayer("rnn", "RNN", 1, "Simple recurrent layer (tanh)"),
        RecurrentLayer("lstm", "LSTM", 4, "LSTM"),
        RecurrentLayer("gru", "GRU", 3, "GRU"),
        TransformerLayer(),
        ResidualLayer(),
    )
}


def build_layer(r: Resolved, nn):
    """The torch module for a checked layer; `nn` is torch.nn, imported by the caller."""
    return LAYERS[r.layer.type].build(r, nn)
