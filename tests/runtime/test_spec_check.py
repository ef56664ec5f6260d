"""check_spec: every message a learner can get about shapes, the task, augmentation and budget."""

# Learners read sizes like "5 by 5" with the multiplication sign, as the messages write them.
# ruff: noqa: RUF001

import json
from collections import namedtuple

import pytest

from runtime.errors import SpecInvalid
from runtime.spec import ModelBudget, build_model, check_spec, inspect_spec, parse_spec

IMAGE = {"input_shape": (3, 32, 32), "kind": "image", "task": "multiclass", "num_classes": 10}
VECTOR = {"input_shape": (2,), "kind": "vector", "task": "binary", "num_classes": 2}
TOKENS = {
    "input_shape": (20,),
    "kind": "tokens",
    "task": "multiclass",
    "num_classes": 6,
    "vocab_size": 16,
}
TEN = {"type": "linear", "out_features": 10}
ONE = {"type": "linear", "out_features": 1}
SIX = {"type": "linear", "out_features": 6}


def spec(*layers, **training):
    training = {
        "optimizer": {"type": "adam", "lr": 0.01},
        "epochs": 5,
        "batch_size": 32,
        **training,
    }
    return {"version": 1, "layers": list(layers), "training": training}


def problems(document, dataset, budget=None) -> list[tuple]:
    with pytest.raises(SpecInvalid) as caught:
        check_spec(document, **dataset, budget=budget)
    return [(p.path, p.layer, p.message) for p in caught.value.problems]


def one(document, dataset, budget=None) -> tuple:
    found = problems(document, dataset, budget)
    assert len(found) == 1, found
    return found[0]


def conv(out, k, **options):
    return {"type": "conv2d", "out_channels": out, "kernel_size": k, **options}


def pool(k, **options):
    return {"type": "maxpool2d", "kernel_size": k, **options}


FLAT = {"type": "flatten"}
RELU = {"type": "relu"}


# --- linear ----------------------------------------------------------------------------------


def test_linear_expecting_another_size_names_the_layer_before():
    document = spec(
        conv(16, 3), pool(5), RELU, FLAT, {"type": "linear", "in_features": 400, "out_features": 10}
    )
    assert one(document, IMAGE) == (
        "layers[4].in_features",
        "5",
        "layer 5 (linear) expects 400 inputs but receives 576; check the size after flatten",
    )


def test_a_first_linear_layer_is_checked_against_the_dataset():
    document = spec({"type": "linear", "in_features": 4, "out_features": 1})
    assert one(document, VECTOR) == (
        "layers[0].in_features",
        "1",
        "layer 1 (linear) expects 4 inputs but receives 2; each sample of this dataset has 2 "
        "values",
    )


def test_linear_on_an_unflattened_image():
    flat_size = spec({"type": "linear", "in_features": 3072, "out_features": 10}, FLAT, TEN)
    assert one(flat_size, IMAGE)[2] == (
        "layer 1 (linear) expects 3,072 inputs but receives [3, 32, 32]; add a flatten layer "
        "before it"
    )
    other = spec(conv(6, 5), {"type": "linear", "in_features": 100, "out_features": 10}, FLAT, TEN)
    assert one(other, IMAGE)[2] == (
        "layer 2 (linear) expects 100 inputs but receives [6, 28, 28] and works on its last "
        "dimension (28); check the size after conv2d"
    )
    first = spec({"type": "linear", "in_features": 100, "out_features": 10}, FLAT, TEN)
    assert one(first, IMAGE)[2] == (
        "layer 1 (linear) expects 100 inputs but receives [3, 32, 32] and works on its last "
        "dimension (32); add a flatten layer before it"
    )


# --- images ----------------------------------------------------------------------------------


def test_conv_after_flatten():
    dataset = {**IMAGE, "input_shape": (30, 2, 2)}
    assert one(spec(FLAT, conv(6, 1), FLAT, TEN), dataset) == (
        "layers[1]",
        "2",
        "layer 2 (conv2d) needs an image-shaped input [channels, height, width] but receives "
        "[120]; put conv layers before flatten",
    )


def test_image_layers_on_a_dataset_of_vectors():
    expected = {
        "conv2d": "conv layers",
        "maxpool2d": "pooling layers",
        "avgpool2d": "pooling layers",
        "adaptive_avgpool2d": "pooling layers",
        "batchnorm2d": "batchnorm2d layers",
    }
    layers = {
        "conv2d": conv(2, 1),
        "maxpool2d": pool(1),
        "avgpool2d": {"type": "avgpool2d", "kernel_size": 1},
        "adaptive_avgpool2d": {"type": "adaptive_avgpool2d", "output_size": 1},
        "batchnorm2d": {"type": "batchnorm2d"},
    }
    for name, layer in layers.items():
        assert one(spec(layer, FLAT, ONE), VECTOR)[2] == (
            f"layer 1 ({name}) needs an image-shaped input [channels, height, width] but receives "
            f"[2]; {expected[name]} work on images, and this dataset's samples are vectors of "
            "numbers"
        )


def test_an_image_layer_after_a_sequence_layer():
    document = spec({"type": "embedding", "embedding_dim": 4}, pool(2), FLAT, SIX)
    assert one(document, TOKENS)[2] == (
        "layer 2 (maxpool2d) needs an image-shaped input [channels, height, width] but receives "
        "[20, 4]; pooling layers work on images, and this dataset's samples are token sequences"
    )


def test_conv_input_channels():
    assert one(spec(conv(6, 5, in_channels=1), FLAT, TEN), IMAGE) == (
        "layers[0].in_channels",
        "1",
        "layer 1 (conv2d) expects 1 input channel but receives 3; this dataset's images have 3 "
        "channels",
    )
    document = spec(conv(6, 5), conv(16, 5, in_channels=3), FLAT, TEN)
    assert one(document, IMAGE)[2] == (
        "layer 2 (conv2d) expects 3 input channels but receives 6; check the channels after conv2d"
    )


def test_a_window_larger_than_what_is_left_of_the_image():
    dataset = {**IMAGE, "input_shape": (3, 8, 8)}
    document = spec(pool(2), pool(2), RELU, pool(3), FLAT, TEN)
    assert one(document, dataset) == (
        "layers[3]",
        "4",
        "layer 4 (maxpool2d) would shrink the 2×2 input below 1×1: its 3×3 window needs an "
        "input of at least 3×3; use a smaller kernel_size or remove an earlier pooling layer",
    )
    document = spec(pool(4), conv(4, [5, 3], padding=1), FLAT, TEN)
    assert one(document, dataset)[2] == (
        "layer 2 (conv2d) would shrink the 2×2 input below 1×1: its 5×3 kernel with padding 1 "
        "needs an input of at least 3×1; use a smaller kernel_size, add padding, or remove an "
        "earlier pooling layer"
    )
    padded_pool = spec(
        pool(4), {"type": "avgpool2d", "kernel_size": [4, 3], "padding": [1, 0]}, FLAT, TEN
    )
    assert one(padded_pool, dataset)[2] == (
        "layer 2 (avgpool2d) would shrink the 2×2 input below 1×1: its 4×3 window with padding "
        "[1, 0] needs an input of at least 2×3; use a smaller kernel_size or remove an earlier "
        "pooling layer"
    )


def test_batch_norm_sizes_and_batches():
    assert one(spec(conv(6, 5), {"type": "batchnorm2d", "num_features": 16}, FLAT, TEN), IMAGE) == (
        "layers[1].num_features",
        "2",
        "layer 2 (batchnorm2d) expects 16 channels but receives 6; check the channels after conv2d",
    )
    assert one(spec({"type": "batchnorm2d", "num_features": 1}, FLAT, TEN), IMAGE)[2] == (
        "layer 1 (batchnorm2d) expects 1 channel but receives 3; this dataset's images have 3 "
        "channels"
    )
    assert one(spec({"type": "batchnorm1d", "num_features": 4}, ONE), VECTOR)[2] == (
        "layer 1 (batchnorm1d) expects 4 features but receives 2; each sample of this dataset has "
        "2 values"
    )
    document = spec(
        {"type": "linear", "out_features": 8}, {"type": "batchnorm1d", "num_features": 4}, ONE
    )
    assert one(document, VECTOR)[2] == (
        "layer 2 (batchnorm1d) expects 4 features but receives 8; check the size after linear"
    )
    assert one(spec({"type": "batchnorm1d"}, FLAT, TEN), IMAGE)[2] == (
        "layer 1 (batchnorm1d) needs [features] or [channels, length] but receives [3, 32, 32]; "
        "use batchnorm2d on images"
    )
    assert one(spec({"type": "batchnorm1d"}, ONE, batch_size=1), VECTOR) == (
        "training.batch_size",
        "1",
        "layer 1 (batchnorm1d) normalises each channel over the batch, so it needs batches of at "
        "least 2 samples; set training.batch_size to 2 or more",
    )
    assert check_spec(spec({"type": "batchnorm2d"}, FLAT, TEN, batch_size=1), **IMAGE)


# --- tokens and sequences --------------------------------------------------------------------


def test_token_ids_need_an_embedding_first():
    for layer in ({"type": "lstm", "hidden_size": 8}, SIX, {"type": "dropout"}):
        assert one(spec(layer, FLAT, SIX), TOKENS) == (
            "layers[0]",
            "1",
            f"layer 1 ({layer['type']}) receives token ids [20] but needs vectors of numbers; "
            "add an embedding layer first",
        )


def test_embedding_belongs_first_on_a_token_dataset():
    embedding = {"type": "embedding", "embedding_dim": 4}
    assert one(spec(embedding, FLAT, TEN), IMAGE) == (
        "layers[0]",
        "1",
        "layer 1 (embedding) needs token ids, but this dataset's samples are images; use "
        "embedding only on token datasets",
    )
    assert one(spec(embedding, embedding, FLAT, SIX), TOKENS)[2] == (
        "layer 2 (embedding) needs token ids, so it must come first; it receives [20, 4] from "
        "layer 1 (embedding)"
    )


def test_embedding_vocabulary():
    small = {"type": "embedding", "embedding_dim": 4, "num_embeddings": 10}
    assert one(spec(small, FLAT, SIX), TOKENS) == (
        "layers[0].num_embeddings",
        "1",
        "layer 1 (embedding) has num_embeddings 10, but this dataset has 16 different tokens; "
        "set num_embeddings to at least 16 or leave it out",
    )
    unknown = {**TOKENS, "vocab_size": None}
    assert one(spec({"type": "embedding", "embedding_dim": 4}, FLAT, SIX), unknown)[2] == (
        "layer 1 (embedding) needs num_embeddings, because this dataset does not say how many "
        "tokens it has"
    )
    assert (
        check_spec(spec({**small, "num_embeddings": 16}, FLAT, SIX), **unknown).total_params
        == 64 + 486
    )


def test_recurrent_and_transformer_layers_need_sequences():
    assert one(spec({"type": "gru", "hidden_size": 4}, ONE), VECTOR) == (
        "layers[0]",
        "1",
        "layer 1 (gru) needs a sequence [steps, features] but receives [2]; recurrent layers "
        "work on sequences, such as the output of an embedding layer",
    )
    stacked = spec(
        {"type": "embedding", "embedding_dim": 4},
        {"type": "lstm", "hidden_size": 8},
        {"type": "transformer_encoder_layer", "nhead": 2},
        SIX,
    )
    assert one(stacked, TOKENS)[2] == (
        "layer 3 (transformer_encoder_layer) needs a sequence [steps, features] but receives [8]; "
        'set output to "all" on layer 2 (lstm) to pass on every step'
    )


def test_attention_heads_must_divide_the_features():
    document = spec(
        {"type": "embedding", "embedding_dim": 64},
        {"type": "transformer_encoder_layer", "nhead": 3},
        {"type": "transformer_encoder_layer", "nhead": 5},
        FLAT,
        SIX,
    )
    assert problems(document, TOKENS) == [
        (
            "layers[1].nhead",
            "2",
            "layer 2 (transformer_encoder_layer) has nhead 3, which does not divide its 64 input "
            "features; choose a number of heads that divides 64, such as 1, 2, 4 or 8",
        ),
        (
            "layers[2].nhead",
            "3",
            "layer 3 (transformer_encoder_layer) has nhead 5, which does not divide its 64 input "
            "features; choose a number of heads that divides 64, such as 1, 2, 4 or 8",
        ),
    ]


# --- residual blocks -------------------------------------------------------------------------


def test_a_residual_block_must_keep_the_shape():
    dataset = {**IMAGE, "input_shape": (16, 8, 8)}
    block = {"type": "residual", "layers": [conv(32, 3, padding=1), RELU]}
    assert one(spec(block, FLAT, TEN), dataset) == (
        "layers[0]",
        "1",
        "layer 1 (residual) cannot add its layers' output to its input: its layers turn "
        "[16, 8, 8] into [32, 8, 8]; the output must match the input to be added",
    )


def test_a_problem_inside_a_block_is_reported_once_at_its_nested_position():
    block = {
        "type": "residual",
        "layers": [RELU, {"type": "residual", "layers": [conv(3, 3, in_channels=4)]}],
    }
    assert problems(spec(conv(3, 1), block, FLAT, TEN), IMAGE) == [
        (
            "layers[1].layers[1].layers[0].in_channels",
            "2.2.1",
            "layer 2.2.1 (conv2d) expects 4 input channels but receives 3; check the channels "
            "after relu",
        ),
        (
            "layers[1].layers[1]",
            "2.2",
            "layer 2.2 (residual) cannot add its layers' output to its input: its layers turn "
            "[3, 32, 32] into [3, 30, 30]; the output must match the input to be added",
        ),
    ]
    broken = {"type": "residual", "layers": [FLAT, conv(3, 3)]}
    assert problems(spec(broken, FLAT, TEN), IMAGE) == [
        (
            "layers[0].layers[1]",
            "1.2",
            "layer 1.2 (conv2d) needs an image-shaped input [channels, height, width] but receives "
            "[3072]; put conv layers before flatten",
        )
    ]


# --- hard caps whatever the exercise ---------------------------------------------------------


def test_outputs_and_models_too_big_to_build_are_refused():
    wide = {"type": "linear", "out_features": 65536}
    document = spec(conv(65536, 1), FLAT, TEN)
    assert one(document, {**IMAGE, "input_shape": (3, 200, 200)}) == (
        "layers[0]",
        "1",
        "layer 1 (conv2d) would produce 2,621,440,000 values per sample ([65536, 200, 200]), "
        "more than the limit of 2,147,483,648; make it smaller",
    )
    assert one(spec(FLAT, wide, wide, TEN), IMAGE) == (
        "layers[2]",
        "3",
        "layer 3 (linear) would bring the model to 4,496,424,960 parameters, more than the limit "
        "of 2,147,483,648; make it smaller",
    )


# --- the end of the model, the loss and the task ---------------------------------------------


def test_a_multiclass_model_ends_with_one_score_per_class():
    document = spec(FLAT, {"type": "linear", "out_features": 84})
    assert one(document, IMAGE) == (
        "layers[1]",
        "2",
        "the last layer gives 84 outputs but the task has 10 classes; end with a linear layer "
        "with out_features 10",
    )
    assert one(spec(conv(16, 5)), IMAGE)[2] == (
        "the model's output is [16, 28, 28] per sample but the task needs [10]; end with a "
        "flatten layer and a linear layer with out_features 10"
    )
    assert one(spec(FLAT, ONE, {"type": "sigmoid"}, loss="mse"), IMAGE)[2] == (
        "the last layer gives 1 output but the task has 10 classes; end with a linear layer "
        "with out_features 10"
    )


def test_a_binary_model_ends_with_one_score_or_two_with_cross_entropy():
    two = {"type": "linear", "out_features": 2}
    assert one(spec(two), VECTOR) == (
        "layers[0]",
        "1",
        "the last layer gives 2 outputs but a two-class task with binary_cross_entropy needs 1, "
        "the score of the second class; end with a linear layer with out_features 1",
    )
    assert one(spec(two, loss="mse"), VECTOR)[2] == (
        "the last layer gives 2 outputs but a two-class task with mse needs 1, the score of the "
        "second class; end with a linear layer with out_features 1"
    )
    assert one(spec(ONE, loss="cross_entropy"), VECTOR)[2] == (
        "the last layer gives 1 output but cross_entropy on a two-class task needs 2, one score "
        "per class; end with a linear layer with out_features 2"
    )
    for ok in (
        spec(two, loss="cross_entropy"),
        spec(ONE),
        spec(ONE, {"type": "sigmoid"}, loss="mse"),
    ):
        assert check_spec(ok, **VECTOR).output_shape in {(1,), (2,)}


def test_cross_entropy_wants_raw_scores():
    assert one(spec(FLAT, TEN, {"type": "sigmoid"}), IMAGE) == (
        "layers[2]",
        "3",
        "layer 3 (sigmoid) ends the model, but cross_entropy expects raw scores and applies "
        "softmax itself; remove the final sigmoid layer",
    )
    two = {"type": "linear", "out_features": 2}
    assert one(spec(two, {"type": "sigmoid"}, loss="cross_entropy"), VECTOR)[2].startswith(
        "layer 2 (sigmoid) ends the model"
    )


def test_binary_cross_entropy_is_for_two_classes():
    assert one(spec(FLAT, TEN, loss="binary_cross_entropy"), IMAGE) == (
        "training.loss",
        None,
        "binary_cross_entropy is for two-class tasks, but this task has 10 classes; use "
        "cross_entropy",
    )


def test_mse_on_a_multiclass_task_compares_one_output_per_class():
    assert check_spec(spec(FLAT, TEN, loss="mse"), **IMAGE).output_shape == (10,)


# --- augmentation ----------------------------------------------------------------------------


def test_augmentation_is_for_images_with_one_value_per_channel():
    flip = {"horizontal_flip": True}
    assert one(spec(ONE, augment=flip), VECTOR) == (
        "training.augment",
        None,
        "augmentations work on images, but this dataset's samples are vectors of numbers; "
        "remove training.augment",
    )
    embedded = spec(
        {"type": "embedding", "embedding_dim": 2}, FLAT, SIX, augment={"random_crop_padding": 2}
    )
    assert one(embedded, TOKENS)[2].endswith("samples are token sequences; remove training.augment")
    normalize = {"normalize_mean": [0.5], "normalize_std": [0.5]}
    assert problems(spec(FLAT, TEN, augment=normalize), IMAGE) == [
        (
            f"training.augment.normalize_{name}",
            None,
            f"training.augment.normalize_{name} has 1 value but the images have 3 channels; "
            "give one value per channel",
        )
        for name in ("mean", "std")
    ]
    gray = {**IMAGE, "input_shape": (1, 28, 28)}
    mean3 = {"normalize_mean": [0.5] * 3, "normalize_std": [0.5] * 3}
    assert [p[0] for p in problems(spec(FLAT, TEN, augment=mean3), gray)] == [
        "training.augment.normalize_mean",
        "training.augment.normalize_std",
    ]


def test_augmentation_left_at_its_defaults_is_fine_anywhere():
    assert check_spec(spec(ONE, augment={"horizontal_flip": False}), **VECTOR)


# --- all independent problems at once --------------------------------------------------------


def test_inference_stops_at_a_broken_shape_but_independent_checks_go_on():
    document = spec(
        conv(6, 5, in_channels=1),  # wrong but the shape is still known
        pool(40),  # shape unknown from here
        {"type": "batchnorm2d", "num_features": 99},  # not looked at
        FLAT,
        TEN,
        {"type": "sigmoid"},
        augment={"normalize_mean": [0.5], "normalize_std": [0.5]},
    )
    assert [(path, layer) for path, layer, _ in problems(document, IMAGE)] == [
        ("layers[0].in_channels", "1"),
        ("layers[1]", "2"),
        ("layers[5]", "6"),
        ("training.augment.normalize_mean", None),
        ("training.augment.normalize_std", None),
    ]


def test_inspect_spec_reports_what_is_known_without_raising():
    document = spec(
        conv(6, 5), pool(2), FLAT, {"type": "linear", "in_features": 5, "out_features": 10}
    )
    report = inspect_spec(document, **IMAGE)
    assert not report.ok
    assert [p.path for p in report.problems] == ["layers[3].in_features"]
    assert report.total_params == 456 + 11770
    broken = inspect_spec(spec(conv(6, 5), pool(50), FLAT, TEN), **IMAGE)
    assert [(r.position, r.output_shape) for r in broken.layers] == [("1", (6, 28, 28))]
    assert (broken.output_shape, broken.total_params, broken.total_flops, broken.memory_bytes) == (
        None,
        None,
        None,
        None,
    )
    as_dict = json.loads(json.dumps(broken.as_dict()))
    assert as_dict["layers"] == [
        {
            "position": "1",
            "type": "conv2d",
            "input_shape": [3, 32, 32],
            "output_shape": [6, 28, 28],
            "params": 456,
            "flops": 705600,
        }
    ]
    assert as_dict["problems"][0]["path"] == "layers[1]"


# --- budget ----------------------------------------------------------------------------------


def vector_model(hidden: int) -> dict:
    return spec({"type": "linear", "out_features": hidden}, ONE)


def test_over_the_parameter_budget_says_by_how_much():
    # 624,877 x 2 embedding weights, then [20 x 2] -> 6: 40 x 6 + 6
    embedding = {"type": "embedding", "embedding_dim": 2, "num_embeddings": 624_877}
    document = spec(embedding, FLAT, SIX)
    assert check_spec(document, **TOKENS).total_params == 1_250_000
    assert one(document, TOKENS, ModelBudget(max_params=1_000_000)) == (
        "layers",
        None,
        "the model has 1,250,000 parameters, 250,000 (25%) over this exercise's limit of 1,000,000",
    )
    assert one(vector_model(4), VECTOR, ModelBudget(max_params=16))[2] == (
        "the model has 17 parameters, 1 (6%) over this exercise's limit of 16"
    )
    assert one(vector_model(1000), VECTOR, ModelBudget(max_params=3999))[2] == (
        "the model has 4,001 parameters, 2 (less than 1%) over this exercise's limit of 3,999"
    )


def test_over_the_flops_and_memory_budget():
    document = vector_model(4)  # FLOPs: 2*2*4 + 2*4*1 = 24
    report = check_spec(document, **VECTOR)
    assert (report.total_params, report.total_flops) == (17, 24)
    # 17 x 16 bytes + (2 + 4 + 1 values) x 32 samples x 8 bytes
    assert report.memory_bytes == 17 * 16 + 7 * 32 * 8 == 2064
    assert problems(document, VECTOR, ModelBudget(max_flops=20, max_memory_bytes=1000)) == [
        (
            "layers",
            None,
            "the model needs about 24 FLOPs per sample, 4 (20%) over this exercise's limit of 20",
        ),
        (
            "training.batch_size",
            None,
            "training needs about 2.1 KB of memory, 1.1 KB (106%) over this exercise's limit of "
            "1 KB; a smaller batch_size or model needs less",
        ),
    ]
    assert check_spec(document, **VECTOR, budget=ModelBudget(17, 24, 2064)).ok


def test_budgets_must_be_positive():
    with pytest.raises(ValueError, match="max_params"):
        ModelBudget(max_params=0)
    with pytest.raises(ValueError, match="max_flops"):
        ModelBudget(max_flops=True)


# --- the dataset, given either way -----------------------------------------------------------

Info = namedtuple("Info", "name kind task input_shape num_classes vocab_size")


def test_a_dataset_info_can_stand_for_the_keywords():
    info = Info("sequences", "tokens", "multiclass", (20,), 6, 16)
    document = spec(
        {"type": "embedding", "embedding_dim": 4}, {"type": "gru", "hidden_size": 8}, SIX
    )
    assert check_spec(document, info) == check_spec(document, **TOKENS)
    assert build_model(document, info)[1].rnn.input_size == 4


@pytest.mark.parametrize(
    "dataset",
    [
        {**IMAGE, "kind": "audio"},
        {**IMAGE, "task": "regression"},
        {**IMAGE, "input_shape": (32, 32)},
        {**IMAGE, "input_shape": (3, 0, 32)},
        {**VECTOR, "num_classes": 3},
        {**IMAGE, "num_classes": 1},
        {**TOKENS, "vocab_size": 0},
    ],
)
def test_impossible_dataset_facts_are_a_programming_error(dataset):
    with pytest.raises(ValueError):
        check_spec(spec(FLAT, TEN), **dataset)


def test_build_model_checks_first_and_builds_nothing_on_a_broken_spec():
    with pytest.raises(SpecInvalid) as caught:
        build_model(spec(FLAT, {"type": "linear", "out_features": 84}), **IMAGE)
    assert caught.value.problems[0].path == "layers[1]"


def test_check_spec_takes_the_document_or_the_parsed_spec():
    document = spec(FLAT, TEN)
    assert check_spec(json.dumps(document), **IMAGE) == check_spec(parse_spec(document), **IMAGE)
