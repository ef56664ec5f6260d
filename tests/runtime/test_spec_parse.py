"""parse_spec: structure, every problem at once, in words a learner understands."""

# Learners read sizes like "5 by 5" with the multiplication sign, as the messages write them.
# ruff: noqa: RUF001

import copy
import json
import math

import pytest

from runtime.errors import Problem, SpecInvalid
from runtime.spec import (
    AugmentSpec,
    LayerSpec,
    ModelSpec,
    OptimizerSpec,
    ScheduleSpec,
    TrainingSpec,
    parse_spec,
)

LAYER_TYPES_TEXT = (
    "linear, conv2d, maxpool2d, avgpool2d, adaptive_avgpool2d, batchnorm1d, batchnorm2d, "
    "layernorm, dropout, relu, gelu, tanh, sigmoid, flatten, embedding, rnn, lstm, gru, "
    "transformer_encoder_layer, residual"
)


def spec(*layers, **training):
    training = {
        "optimizer": {"type": "adam", "lr": 0.01},
        "epochs": 5,
        "batch_size": 32,
        **training,
    }
    return {"version": 1, "layers": list(layers) or [{"type": "relu"}], "training": training}


def problems(document) -> list[tuple]:
    with pytest.raises(SpecInvalid) as caught:
        parse_spec(document)
    return [(p.path, p.layer, p.message) for p in caught.value.problems]


def one(document) -> tuple:
    found = problems(document)
    assert len(found) == 1, found
    return found[0]


def message(document) -> str:
    return one(document)[2]


# --- well-formed specs -----------------------------------------------------------------------


def test_a_spec_parses_with_every_default_filled_in():
    parsed = parse_spec(spec({"type": "conv2d", "out_channels": 6, "kernel_size": 5}))
    assert parsed == ModelSpec(
        version=1,
        layers=(
            LayerSpec(
                "conv2d",
                {
                    "out_channels": 6,
                    "kernel_size": 5,
                    "in_channels": None,
                    "stride": 1,
                    "padding": 0,
                    "bias": True,
                },
                position="1",
                path="layers[0]",
            ),
        ),
        training=TrainingSpec(
            optimizer=OptimizerSpec(type="adam", lr=0.01),
            schedule=ScheduleSpec(),
            loss=None,
            epochs=5,
            batch_size=32,
            augment=AugmentSpec(),
        ),
    )


def test_text_bytes_and_a_byte_order_mark_parse_the_same():
    document = spec({"type": "linear", "out_features": 2})
    parsed = parse_spec(document)
    text = json.dumps(document)
    assert parse_spec(text) == parsed
    assert parse_spec(text.encode()) == parsed
    assert parse_spec(b"\xef\xbb\xbf" + text.encode()) == parsed
    assert parse_spec(parsed) is parsed


def test_as_dict_writes_every_setting_and_reads_back_the_same_spec():
    document = spec(
        {
            "type": "residual",
            "layers": [{"type": "conv2d", "out_channels": 3, "kernel_size": [3, 1]}],
        },
        {"type": "flatten"},
        schedule={"type": "one_cycle", "max_lr": 0.1},
        augment={"normalize_mean": [0.5], "normalize_std": [0.25]},
    )
    parsed = parse_spec(document)
    written = parsed.as_dict()
    assert written["layers"][0] == {
        "type": "residual",
        "layers": [
            {
                "type": "conv2d",
                "out_channels": 3,
                "kernel_size": [3, 1],
                "stride": 1,
                "padding": 0,
                "bias": True,
            }
        ],
    }
    assert written["training"]["optimizer"] == {
        "type": "adam",
        "lr": 0.01,
        "momentum": 0.0,
        "nesterov": False,
        "weight_decay": 0.0,
        "betas": [0.9, 0.999],
    }
    assert parse_spec(json.dumps(written)) == parsed
    assert [layer.position for layer in parsed.walk()] == ["1", "1.1", "2"]


def test_whole_floats_count_as_whole_numbers_like_json_schema_says():
    parsed = parse_spec(spec({"type": "linear", "out_features": 4.0}, epochs=2.0))
    assert parsed.layers[0].options["out_features"] == 4
    assert isinstance(parsed.layers[0].options["out_features"], int)
    assert parsed.training.epochs == 2


def test_null_means_left_out_for_inferred_sizes_and_the_loss():
    parsed = parse_spec(spec({"type": "linear", "out_features": 4, "in_features": None}, loss=None))
    assert parsed.layers[0].options["in_features"] is None
    assert parsed.training.loss is None


# --- the document as a whole -----------------------------------------------------------------


def test_a_document_over_the_size_limit_is_refused_before_it_is_read():
    huge = b" " * (50 * 1024 * 1024)
    assert one(huge) == ("", None, "the spec is 52.4 MB, over the limit of 256 KB")
    assert message("x" * 256_001) == "the spec is 256,001 bytes, over the limit of 256,000 bytes"
    assert message("x" * 300_000) == "the spec is 300 KB, over the limit of 256 KB"
    assert message("é" * 300_000) == "the spec is at least 300 KB, over the limit of 256 KB"
    # under the limit in characters, over it in UTF-8 bytes
    assert message("é" * 200_000) == "the spec is 400 KB, over the limit of 256 KB"


def test_json_syntax_errors_say_where():
    assert one('{"version": 1,\n  "layers": [}') == (
        "",
        None,
        "the spec is not valid JSON: Expecting value at line 2, column 14",
    )
    assert message("") == "the spec is not valid JSON: Expecting value at line 1, column 1"
    assert message("[" * 100_000) == "the spec is nested too deeply to read"
    assert message('{"version": ' + "9" * 5000 + "}") == "the spec has a number too long to read"
    assert message(b'{"version": "\xff"}') == "the spec is not UTF-8 text: byte 14 cannot be read"


@pytest.mark.parametrize(
    ("document", "shown"),
    [([], "[]"), ("[1, 2]", "[1, 2]"), ('"spec"', '"spec"'), (None, "null"), (7, "7")],
)
def test_the_spec_must_be_an_object(document, shown):
    assert one(document) == (
        "",
        None,
        f"the spec must be a JSON object with version, layers and training, but is {shown}",
    )


def test_unknown_parts_and_a_missing_or_wrong_version():
    document = spec()
    document["layer"] = []
    del document["version"]
    assert problems(document) == [
        (
            "layer",
            None,
            'the spec has no part "layer" (did you mean "layers"?); its parts are version, '
            "layers and training",
        ),
        ("version", None, "the spec needs version, which must be 1"),
    ]
    for wrong, shown in ((2, "2"), (True, "true"), ("1", '"1"')):
        assert one({**spec(), "version": wrong}) == (
            "version",
            None,
            f"version must be 1, but is {shown}",
        )


# --- layers ----------------------------------------------------------------------------------


def test_the_layer_list_itself():
    no_layers = spec()
    del no_layers["layers"]
    assert one(no_layers) == ("layers", None, "the spec needs layers, a list of at least one layer")
    assert (
        message({**spec(), "layers": {"type": "relu"}})
        == "layers must be a list of layers, but is an object"
    )
    assert message({**spec(), "layers": []}) == "layers must list at least one layer"


def test_more_than_200_layers_counting_nested_ones_is_refused_without_reading_them():
    relus = [{"type": "relu"}] * 150
    nested = {"type": "residual", "layers": [{"type": "relu"}] * 60}
    expected = (
        "layers",
        None,
        "the model has more than 200 layers, counting those inside residual blocks; use at most "
        "200",
    )
    assert one(spec(*relus, nested)) == expected
    # a million bad layers still give one problem, not a million
    assert one({**spec(), "layers": [{"type": "bogus"}] * 1_000_000}) == expected
    assert parse_spec(spec(*relus, {"type": "residual", "layers": relus[:49]}))


def test_residual_blocks_nest_at_most_four_deep():
    def nest(depth):
        layer = {"type": "relu"}
        for _ in range(depth):
            layer = {"type": "residual", "layers": [layer]}
        return layer

    assert parse_spec(spec(nest(4))).layers[0].layers[0].layers[0].layers[0].layers[0].position == (
        "1.1.1.1.1"
    )
    assert one(spec(nest(5))) == (
        "layers[0].layers[0].layers[0].layers[0].layers[0]",
        "1.1.1.1.1",
        "layer 1.1.1.1.1 (residual) is inside 4 other residual blocks; residual blocks can be "
        "nested at most 4 deep",
    )
    assert message(spec(nest(100))) == message(spec(nest(5)))  # and no deeper look
    assert message(json.dumps(spec(nest(100)))) == message(spec(nest(5)))


def test_a_layer_must_be_an_object_with_a_known_type():
    assert problems(spec(5, {"kind": "relu"}, {"type": "conv"}, {"type": ["relu"]})) == [
        ("layers[0]", "1", 'layer 1 must be an object such as {"type": "relu"}, but is 5'),
        (
            "layers[1].type",
            "2",
            f"layer 2 needs a type, one of: {LAYER_TYPES_TEXT}",
        ),
        (
            "layers[2].type",
            "3",
            f'layer 3 has an unknown type "conv" (did you mean "conv2d"?); the layer types are: '
            f"{LAYER_TYPES_TEXT}",
        ),
        (
            "layers[3].type",
            "4",
            f'layer 4 has an unknown type ["relu"]; the layer types are: {LAYER_TYPES_TEXT}',
        ),
    ]


def test_unknown_settings_are_named_with_a_suggestion():
    conv = {"type": "conv2d", "out_channels": 6, "kernal_size": 5, "kernel_size": 5}
    assert problems(spec(conv, {"type": "relu", "inplace": True})) == [
        (
            "layers[0].kernal_size",
            "1",
            'layer 1 (conv2d) has no setting "kernal_size" (did you mean "kernel_size"?); its '
            "settings are: out_channels, kernel_size, in_channels, stride, padding, bias",
        ),
        ("layers[1].inplace", "2", 'layer 2 (relu) has no settings, so remove "inplace"'),
    ]


def test_a_missing_setting_says_what_it_needs():
    assert one(spec({"type": "conv2d", "out_channels": 6})) == (
        "layers[0].kernel_size",
        "1",
        "layer 1 (conv2d) needs kernel_size, a whole number from 1 to 64, or a pair "
        "[height, width] of them",
    )


LINEAR_UNITS = "a whole number from 1 to 65,536"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "0"),
        (-3, "-3"),
        (10**12, "1,000,000,000,000"),
        (10**400, "about 10^400"),
        (True, "true"),
        (2.5, "2.5"),
        ("12", '"12"'),
        (None, "null"),
        ([12], "[12]"),
        (float("nan"), "NaN"),
    ],
)
def test_a_bad_size_says_what_is_allowed_and_what_it_got(value, shown):
    assert one(spec({"type": "linear", "out_features": value})) == (
        "layers[0].out_features",
        "1",
        f"layer 1 (linear): out_features must be {LINEAR_UNITS}, but is {shown}",
    )


@pytest.mark.parametrize(
    ("layer", "path", "expected"),
    [
        (
            {"type": "conv2d", "out_channels": 6, "kernel_size": [3, 3, 3]},
            "kernel_size",
            "layer 1 (conv2d): kernel_size must be a whole number from 1 to 64, or a pair "
            "[height, width] of them, but is [3, 3, 3]",
        ),
        (
            {"type": "conv2d", "out_channels": 6, "kernel_size": 3, "padding": -1},
            "padding",
            "layer 1 (conv2d): padding must be a whole number from 0 to 64, or a pair "
            "[height, width] of them, but is -1",
        ),
        (
            {"type": "linear", "out_features": 2, "bias": 1},
            "bias",
            "layer 1 (linear): bias must be true or false, but is 1",
        ),
        (
            {"type": "dropout", "p": 1},
            "p",
            "layer 1 (dropout): p must be a number at least 0 and less than 1, but is 1",
        ),
        (
            {"type": "lstm", "hidden_size": 8, "output": "first"},
            "output",
            'layer 1 (lstm): output must be one of "last" or "all", but is "first"',
        ),
        (
            {"type": "adaptive_avgpool2d", "output_size": 2000},
            "output_size",
            "layer 1 (adaptive_avgpool2d): output_size must be a whole number from 1 to 1,024, "
            "or a pair [height, width] of them, but is 2,000",
        ),
        (
            {"type": "embedding", "embedding_dim": 4, "num_embeddings": 10**7},
            "num_embeddings",
            "layer 1 (embedding): num_embeddings must be a whole number from 1 to 1,000,000, "
            "but is 10,000,000",
        ),
    ],
)
def test_each_kind_of_setting_explains_itself(layer, path, expected):
    assert one(spec(layer)) == (f"layers[0].{path}", "1", expected)


def test_pooling_padding_is_at_most_half_the_window():
    assert one(spec({"type": "maxpool2d", "kernel_size": 3, "padding": 2})) == (
        "layers[0].padding",
        "1",
        "layer 1 (maxpool2d) has padding 2, but its 3×3 window allows at most 1",
    )
    assert message(spec({"type": "avgpool2d", "kernel_size": [2, 4], "padding": [0, 3]})) == (
        "layer 1 (avgpool2d) has padding [0, 3], but its 2×4 window allows at most [1, 2]"
    )


def test_recurrent_dropout_needs_stacked_layers():
    assert one(spec({"type": "gru", "hidden_size": 8, "dropout": 0.2})) == (
        "layers[0].dropout",
        "1",
        "layer 1 (gru) has dropout 0.2 but only one layer; dropout acts between stacked layers, "
        "so set num_layers to 2 or more, or dropout to 0",
    )


def test_residual_blocks_need_a_list_of_layers():
    assert problems(
        spec(
            {"type": "residual"},
            {"type": "residual", "layers": {"type": "relu"}},
            {"type": "residual", "layers": []},
        )
    ) == [
        ("layers[0].layers", "1", "layer 1 (residual) needs layers, a list of at least one layer"),
        (
            "layers[1].layers",
            "2",
            "layer 2 (residual): layers must be a list of layers, but is an object",
        ),
        ("layers[2].layers", "3", "layer 3 (residual): layers must list at least one layer"),
    ]


def test_nested_problems_name_the_nested_position_and_path():
    block = {
        "type": "residual",
        "layers": [{"type": "relu"}, {"type": "maxpool2d", "kernel_size": 0}],
    }
    assert one(spec({"type": "flatten"}, {"type": "relu"}, block)) == (
        "layers[2].layers[1].kernel_size",
        "3.2",
        "layer 3.2 (maxpool2d): kernel_size must be a whole number from 1 to 64, or a pair "
        "[height, width] of them, but is 0",
    )


# --- training --------------------------------------------------------------------------------


def test_training_and_its_required_settings():
    no_training = spec()
    del no_training["training"]
    assert one(no_training) == (
        "training",
        None,
        "the spec needs training, an object with optimizer, epochs and batch_size",
    )
    assert message({**spec(), "training": []}) == (
        "training must be an object with optimizer, epochs and batch_size, but is []"
    )
    assert problems({**spec(), "training": {"optimizer": {}}}) == [
        (
            "training.optimizer.type",
            None,
            'training.optimizer needs type, one of "sgd", "adam", "adamw" or "rmsprop"',
        ),
        (
            "training.optimizer.lr",
            None,
            "training.optimizer needs lr, a number greater than 0 and at most 10",
        ),
        ("training.epochs", None, "training needs epochs, a whole number from 1 to 1,000"),
        ("training.batch_size", None, "training needs batch_size, a whole number from 1 to 65,536"),
    ]


@pytest.mark.parametrize(
    ("lr", "shown"),
    [
        (0, "0"),
        (-0.1, "-0.1"),
        (11, "11"),
        (float("nan"), "NaN"),
        (float("inf"), "infinity"),
        (True, "true"),
    ],
)
def test_the_learning_rate_is_a_finite_number_in_range(lr, shown):
    document = spec()
    document["training"]["optimizer"]["lr"] = lr
    assert one(document) == (
        "training.optimizer.lr",
        None,
        f"training.optimizer.lr must be a number greater than 0 and at most 10, but is {shown}",
    )


def test_nan_and_infinity_in_json_text_are_refused_where_they_are():
    text = json.dumps(spec()).replace('"lr": 0.01', '"lr": NaN')
    assert (
        message(text)
        == "training.optimizer.lr must be a number greater than 0 and at most 10, but is NaN"
    )
    text = json.dumps(spec()).replace('"epochs": 5', '"epochs": Infinity')
    assert (
        message(text) == "training.epochs must be a whole number from 1 to 1,000, but is infinity"
    )


@pytest.mark.parametrize(
    ("training", "path", "expected"),
    [
        (
            {"epochs": 0},
            "training.epochs",
            "training.epochs must be a whole number from 1 to 1,000, but is 0",
        ),
        (
            {"batch_size": 10**6},
            "training.batch_size",
            "training.batch_size must be a whole number from 1 to 65,536, but is 1,000,000",
        ),
        (
            {"seed": -1},
            "training.seed",
            "training.seed must be a whole number from 0 to 2,147,483,647, but is -1",
        ),
        (
            {"loss": "hinge"},
            "training.loss",
            'training.loss must be one of "cross_entropy", "binary_cross_entropy" or "mse", but '
            'is "hinge"',
        ),
        (
            {"schedule": {"type": "linear"}},
            "training.schedule.type",
            'training.schedule.type must be one of "constant", "step", "cosine" or "one_cycle", '
            'but is "linear"',
        ),
        (
            {"schedule": "cosine"},
            "training.schedule",
            'training.schedule must be an object, but is "cosine"',
        ),
        (
            {"augment": {"horizontal_flip": "yes"}},
            "training.augment.horizontal_flip",
            'training.augment.horizontal_flip must be true or false, but is "yes"',
        ),
        (
            {"augment": {"random_crop_padding": 100}},
            "training.augment.random_crop_padding",
            "training.augment.random_crop_padding must be a whole number from 0 to 64, but is 100",
        ),
        (
            {"augment": {"normalize_mean": [0.5], "normalize_std": [0]}},
            "training.augment.normalize_std",
            "training.augment.normalize_std must be a list of 1 to 64 numbers, each greater than "
            "0 and at most 100, but is [0]",
        ),
        (
            {"augment": {"random_crop": {"padding": 4}}},
            "training.augment.random_crop",
            'training.augment has no setting "random_crop" (did you mean "random_crop_padding"?); '
            "its settings are: random_crop_padding, horizontal_flip, normalize_mean, normalize_std",
        ),
        (
            {"optimizer": {"type": "adam", "learning_rate": 0.1, "lr": 0.1}},
            "training.optimizer.learning_rate",
            'training.optimizer has no setting "learning_rate"; its settings are: type, lr, '
            "momentum, nesterov, weight_decay, betas",
        ),
        (
            {"optimizer": {"type": "adam", "lr": 0.1, "betas": [0.9]}},
            "training.optimizer.betas",
            "training.optimizer.betas must be a list of 2 numbers, each at least 0 and less than "
            "1, but is [0.9]",
        ),
        (
            {"optimizer": {"type": "sgd", "lr": 0.1, "weight_decay": 2}},
            "training.optimizer.weight_decay",
            "training.optimizer.weight_decay must be a number from 0 to 1, but is 2",
        ),
        (
            {"schedule": {"type": "step", "gamma": 0}},
            "training.schedule.gamma",
            "training.schedule.gamma must be a number greater than 0 and at most 1, but is 0",
        ),
        (
            {"extra": 1},
            "training.extra",
            'training has no setting "extra"; its settings are: optimizer, schedule, loss, '
            "epochs, batch_size, augment, seed",
        ),
    ],
)
def test_each_training_setting_explains_itself(training, path, expected):
    assert one(spec(**training)) == (path, None, expected)


@pytest.mark.parametrize(
    ("training", "path", "expected"),
    [
        (
            {"optimizer": {"type": "adam", "lr": 0.1, "momentum": 0.9}},
            "training.optimizer.momentum",
            "training.optimizer.momentum is a setting of the sgd and rmsprop optimizers, not of "
            "adam; remove it",
        ),
        (
            {"optimizer": {"type": "sgd", "lr": 0.1, "betas": [0.8, 0.9]}},
            "training.optimizer.betas",
            "training.optimizer.betas is a setting of the adam and adamw optimizers, not of sgd; "
            "remove it",
        ),
        (
            {"optimizer": {"type": "rmsprop", "lr": 0.1, "nesterov": True, "momentum": 0.5}},
            "training.optimizer.nesterov",
            "training.optimizer.nesterov is a setting of the sgd optimizer, not of rmsprop; "
            "remove it",
        ),
        (
            {"optimizer": {"type": "sgd", "lr": 0.1, "nesterov": True}},
            "training.optimizer.nesterov",
            "training.optimizer.nesterov needs momentum above 0; set training.optimizer.momentum "
            "(for example to 0.9) or turn nesterov off",
        ),
        (
            {"schedule": {"type": "cosine", "step_size": 3}},
            "training.schedule.step_size",
            "training.schedule.step_size is a setting of the step schedule, not of cosine; remove "
            "it",
        ),
        (
            {"schedule": {"type": "step", "max_lr": 0.5}},
            "training.schedule.max_lr",
            "training.schedule.max_lr is a setting of the one_cycle schedule, not of step; remove "
            "it",
        ),
        (
            {"optimizer": {"type": "sgd", "lr": 2}, "schedule": {"type": "one_cycle"}},
            "training.schedule.max_lr",
            "one_cycle peaks at 10 times lr = 20.0 unless told otherwise, above the limit of 10; "
            "set training.schedule.max_lr",
        ),
        (
            {"augment": {"normalize_mean": [0.5, 0.5, 0.5]}},
            "training.augment.normalize_std",
            "training.augment.normalize_std is missing; normalize_mean and normalize_std go "
            "together",
        ),
        (
            {"augment": {"normalize_std": [0.5]}},
            "training.augment.normalize_mean",
            "training.augment.normalize_mean is missing; normalize_mean and normalize_std go "
            "together",
        ),
        (
            {"augment": {"normalize_mean": [0.5], "normalize_std": [0.2, 0.2, 0.2]}},
            "training.augment.normalize_std",
            "training.augment.normalize_mean has 1 value but training.augment.normalize_std has "
            "3; give both one value per channel",
        ),
    ],
)
def test_settings_that_do_not_go_together(training, path, expected):
    assert one(spec(**training)) == (path, None, expected)


def test_settings_left_at_their_default_are_fine_for_any_optimizer():
    document = spec(optimizer={"type": "adam", "lr": 0.1, "momentum": 0, "nesterov": False})
    assert parse_spec(document).training.optimizer.momentum == 0.0
    sgd = spec(optimizer={"type": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True})
    assert parse_spec(sgd).training.optimizer.nesterov is True


# --- everything at once ----------------------------------------------------------------------


def test_every_independent_problem_is_reported_in_one_go():
    document = spec(
        {"type": "linear", "out_features": -1},
        {"type": "relu"},
        {"type": "conv3d"},
        {"type": "residual", "layers": [{"type": "dropout", "p": 2}]},
        epochs=0,
    )
    document["training"]["optimizer"]["lr"] = 0
    with pytest.raises(SpecInvalid) as caught:
        parse_spec(document)
    assert [(p.path, p.layer) for p in caught.value.problems] == [
        ("layers[0].out_features", "1"),
        ("layers[2].type", "3"),
        ("layers[3].layers[0].p", "4.1"),
        ("training.optimizer.lr", None),
        ("training.epochs", None),
    ]
    assert str(caught.value).startswith("layer 1 (linear): out_features must be")


def test_a_flood_of_problems_is_summarised_after_the_first_99():
    layers = [{"type": "relu", "a": 1, "b": 2, "c": 3}] * 60
    found = problems(spec(*layers))
    assert len(found) == 100
    assert found[98] == ("layers[32].c", "33", 'layer 33 (relu) has no settings, so remove "c"')
    assert found[99] == ("", None, "and 81 more problems")


def test_an_object_with_absurdly_many_keys_is_refused_whole():
    assert one(spec({"type": "relu", **{f"x{i}": i for i in range(40)}})) == (
        "layers[0]",
        "1",
        "layer 1 (relu) has 41 settings, more than any part of a spec can have (32)",
    )
    assert one({**spec(), **{f"x{i}": i for i in range(40)}}) == (
        "",
        None,
        "the spec has 43 parts; its parts are version, layers and training",
    )
    training = {**spec()["training"], **{f"x{i}": i for i in range(40)}}
    assert one({**spec(), "training": training})[2] == (
        "training has 43 settings, more than any part of a spec can have (32)"
    )


def test_problems_serialise_for_the_api():
    with pytest.raises(SpecInvalid) as caught:
        parse_spec(spec({"type": "linear"}))
    assert [p.as_dict() for p in caught.value.problems] == [
        {
            "path": "layers[0].out_features",
            "layer": "1",
            "message": "layer 1 (linear) needs out_features, a whole number from 1 to 65,536",
        }
    ]
    assert isinstance(caught.value.problems[0], Problem)


def test_parsing_leaves_the_document_untouched():
    document = spec({"type": "residual", "layers": [{"type": "linear", "out_features": 2}]})
    before = copy.deepcopy(document)
    parse_spec(document)
    assert document == before


def test_training_dataclass_defaults_match_the_contract():
    assert OptimizerSpec("sgd", 0.1) == OptimizerSpec("sgd", 0.1, 0.0, False, 0.0, (0.9, 0.999))
    assert ScheduleSpec() == ScheduleSpec("constant", 1, 0.1, None)
    assert AugmentSpec() == AugmentSpec(0, False, None, None)
    training = parse_spec(spec()).training
    assert training.seed == 0
    assert math.isclose(training.optimizer.lr, 0.01)
