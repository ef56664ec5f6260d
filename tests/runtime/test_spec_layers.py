"""Shape inference for every layer type, checked against the torch modules build_model makes."""

import pytest
import torch

from runtime.spec import LAYER_TYPES, build_model, check_spec

TRAINING = {"optimizer": {"type": "adam", "lr": 0.01}, "epochs": 1, "batch_size": 2}
HEAD = [{"type": "flatten"}, {"type": "linear", "out_features": 3}]
IMAGE = {"input_shape": (3, 8, 8), "kind": "image"}
VECTOR = {"input_shape": (4,), "kind": "vector"}
TOKENS = {"input_shape": (6,), "kind": "tokens", "vocab_size": 10}
EMBED4 = {"type": "embedding", "embedding_dim": 4}  # tokens [6] -> [6, 4], 40 parameters
EMBED8 = {"type": "embedding", "embedding_dim": 8}  # tokens [6] -> [6, 8], 80 parameters


def lstm(**options):
    return {"type": "lstm", "hidden_size": 5, **options}


# (id, layers before the one under test, the layer, dataset, output shape, params, FLOPs)
CASES = [
    ("linear", [], {"type": "linear", "out_features": 5}, VECTOR, (5,), 25, 40),
    (
        "linear-no-bias",
        [],
        {"type": "linear", "out_features": 5, "bias": False},
        VECTOR,
        (5,),
        20,
        40,
    ),
    (
        "linear-stated",
        [],
        {"type": "linear", "out_features": 5, "in_features": 4},
        VECTOR,
        (5,),
        25,
        40,
    ),
    ("linear-per-step", [EMBED4], {"type": "linear", "out_features": 3}, TOKENS, (6, 3), 15, 144),
    (
        "conv2d",
        [],
        {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
        IMAGE,
        (4, 8, 8),
        112,
        13824,
    ),
    (
        "conv2d-stride",
        [],
        {"type": "conv2d", "out_channels": 2, "kernel_size": 3, "stride": 2},
        IMAGE,
        (2, 3, 3),
        56,
        972,
    ),
    (
        "conv2d-pairs",
        [],
        {
            "type": "conv2d",
            "out_channels": 4,
            "kernel_size": [3, 5],
            "stride": [2, 1],
            "padding": [1, 2],
            "bias": False,
        },
        IMAGE,
        (4, 4, 8),
        180,
        11520,
    ),
    ("maxpool2d", [], {"type": "maxpool2d", "kernel_size": 2}, IMAGE, (3, 4, 4), 0, 192),
    (
        "maxpool2d-padded",
        [],
        {"type": "maxpool2d", "kernel_size": 3, "stride": 2, "padding": 1},
        IMAGE,
        (3, 4, 4),
        0,
        432,
    ),
    ("avgpool2d", [], {"type": "avgpool2d", "kernel_size": [2, 4]}, IMAGE, (3, 4, 2), 0, 192),
    (
        "adaptive_avgpool2d",
        [],
        {"type": "adaptive_avgpool2d", "output_size": 1},
        IMAGE,
        (3, 1, 1),
        0,
        192,
    ),
    (
        "adaptive_avgpool2d-pair",
        [],
        {"type": "adaptive_avgpool2d", "output_size": [2, 3]},
        IMAGE,
        (3, 2, 3),
        0,
        192,
    ),
    ("batchnorm1d", [], {"type": "batchnorm1d"}, VECTOR, (4,), 8, 4),
    (
        "batchnorm1d-sequence",
        [EMBED4],
        {"type": "batchnorm1d", "num_features": 6},
        TOKENS,
        (6, 4),
        12,
        24,
    ),
    ("batchnorm2d", [], {"type": "batchnorm2d", "num_features": 3}, IMAGE, (3, 8, 8), 6, 192),
    ("layernorm", [], {"type": "layernorm"}, VECTOR, (4,), 8, 4),
    ("layernorm-sequence", [EMBED4], {"type": "layernorm"}, TOKENS, (6, 4), 8, 24),
    ("dropout", [], {"type": "dropout", "p": 0.25}, IMAGE, (3, 8, 8), 0, 192),
    ("relu", [], {"type": "relu"}, VECTOR, (4,), 0, 4),
    ("gelu", [], {"type": "gelu"}, VECTOR, (4,), 0, 4),
    ("tanh", [], {"type": "tanh"}, IMAGE, (3, 8, 8), 0, 192),
    ("sigmoid", [], {"type": "sigmoid"}, VECTOR, (4,), 0, 4),
    ("flatten", [], {"type": "flatten"}, IMAGE, (192,), 0, 0),
    ("embedding", [], EMBED4, TOKENS, (6, 4), 40, 0),
    (
        "embedding-bigger",
        [],
        {"type": "embedding", "embedding_dim": 4, "num_embeddings": 12},
        TOKENS,
        (6, 4),
        48,
        0,
    ),
    # recurrent: gates x (input x hidden + hidden x hidden + 2 biases x hidden) per layer/direction
    ("rnn", [EMBED4], {"type": "rnn", "hidden_size": 5}, TOKENS, (5,), 55, 540),
    ("gru", [EMBED4], {"type": "gru", "hidden_size": 5}, TOKENS, (5,), 165, 1620),
    ("lstm", [EMBED4], lstm(), TOKENS, (5,), 220, 2160),
    ("lstm-all", [EMBED4], lstm(output="all"), TOKENS, (6, 5), 220, 2160),
    ("lstm-bidirectional", [EMBED4], lstm(bidirectional=True), TOKENS, (10,), 440, 4320),
    (
        "lstm-stacked",
        [EMBED4],
        lstm(num_layers=2, bidirectional=True, output="all", dropout=0.1),
        TOKENS,
        (6, 10),
        1120,
        11520,
    ),
    (
        "transformer",
        [EMBED8],
        {"type": "transformer_encoder_layer", "nhead": 2, "dim_feedforward": 16},
        TOKENS,
        (6, 8),
        600,
        7296,
    ),
    (
        "transformer-default-ff",
        [EMBED8],
        {"type": "transformer_encoder_layer", "nhead": 4, "activation": "gelu"},
        TOKENS,
        (6, 8),
        872,
        10368,
    ),
    (
        "residual",
        [],
        {
            "type": "residual",
            "layers": [
                {"type": "conv2d", "out_channels": 3, "kernel_size": 3, "padding": 1},
                {"type": "relu"},
            ],
        },
        IMAGE,
        (3, 8, 8),
        84,
        10752,
    ),
    (
        "residual-nested",
        [],
        {
            "type": "residual",
            "layers": [
                {"type": "linear", "out_features": 4},
                {"type": "residual", "layers": [{"type": "tanh"}]},
            ],
        },
        VECTOR,
        (4,),
        20,
        44,
    ),
]


def checked(prefix, layer, dataset):
    spec = {"version": 1, "layers": [*prefix, layer, *HEAD], "training": TRAINING}
    facts = {"task": "multiclass", "num_classes": 3, **dataset}
    return spec, facts, check_spec(spec, **facts)


def sample(dataset):
    if dataset["kind"] == "tokens":
        return torch.randint(0, dataset["vocab_size"], (2, *dataset["input_shape"]))
    return torch.randn(2, *dataset["input_shape"])


@pytest.mark.parametrize(
    ("prefix", "layer", "dataset", "shape", "params", "flops"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_inferred_shape_params_and_flops_match_the_torch_module(
    prefix, layer, dataset, shape, params, flops
):
    spec, facts, report = checked(prefix, layer, dataset)
    index = len(prefix)
    row = next(r for r in report.layers if r.position == str(index + 1))
    assert (row.type, row.output_shape, row.params, row.flops) == (
        layer["type"],
        shape,
        params,
        flops,
    )
    model = build_model(spec, **facts).eval()
    assert sum(p.numel() for p in model[index].parameters()) == params
    assert sum(p.numel() for p in model.parameters()) == report.total_params
    with torch.no_grad():
        out = model[: index + 1](sample(dataset))
    assert tuple(out.shape) == (2, *shape)
    assert report.output_shape == (3,)


def test_every_layer_type_has_a_shape_inference_case():
    assert {case[2]["type"] for case in CASES} == set(LAYER_TYPES)


def test_nested_layers_are_reported_after_their_block_with_their_own_positions():
    _, _, report = checked([], CASES[-1][2], VECTOR)
    rows = [(r.position, r.type, r.input_shape, r.output_shape, r.params) for r in report.layers]
    assert rows == [
        ("1", "residual", (4,), (4,), 20),
        ("1.1", "linear", (4,), (4,), 20),
        ("1.2", "residual", (4,), (4,), 0),
        ("1.2.1", "tanh", (4,), (4,), 0),
        ("2", "flatten", (4,), (4,), 0),
        ("3", "linear", (4,), (3,), 15),
    ]
    assert report.total_params == 35


def test_built_modules_are_the_torch_classes_with_inferred_sizes():
    layers = [
        {"type": "conv2d", "out_channels": 4, "kernel_size": 3},
        {"type": "maxpool2d", "kernel_size": 2},
        {"type": "batchnorm2d"},
        {"type": "flatten"},
        {"type": "linear", "out_features": 3},
    ]
    spec = {"version": 1, "layers": layers, "training": TRAINING}
    model = build_model(spec, **IMAGE, task="multiclass", num_classes=3)
    assert isinstance(model, torch.nn.Sequential)
    conv, pool, norm, flatten, linear = model
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (3, 4, (3, 3))
    assert (pool.kernel_size, pool.stride) == (2, 2)  # stride defaults to the window
    assert norm.num_features == 4
    assert isinstance(flatten, torch.nn.Flatten)
    assert (linear.in_features, linear.out_features) == (36, 3)


def test_bidirectional_last_joins_forward_last_step_and_backward_first_step():
    spec, facts, _ = checked([EMBED4], lstm(bidirectional=True), TOKENS)
    model = build_model(spec, **facts).eval()
    tokens = sample(TOKENS)
    with torch.no_grad():
        embedded = model[0](tokens)
        steps, _ = model[1].rnn(embedded)
        last = model[1](embedded)
    assert torch.equal(last[:, :5], steps[:, -1, :5])
    assert torch.equal(last[:, 5:], steps[:, 0, 5:])


def test_recurrent_and_transformer_layers_are_batch_first():
    spec = {
        "version": 1,
        "layers": [EMBED8, {"type": "transformer_encoder_layer", "nhead": 2}, lstm(), *HEAD],
        "training": TRAINING,
    }
    model = build_model(spec, **TOKENS, task="multiclass", num_classes=3)
    assert model[1].self_attn.batch_first
    assert model[2].rnn.batch_first
    assert model[2].output == "last"


def test_a_residual_block_adds_its_layers_output_to_its_input():
    block = {"type": "residual", "layers": [{"type": "linear", "out_features": 4}]}
    spec, facts, _ = checked([], block, VECTOR)
    model = build_model(spec, **facts)
    x = torch.randn(2, 4)
    with torch.no_grad():
        assert torch.allclose(model[0](x), x + model[0].body(x))
