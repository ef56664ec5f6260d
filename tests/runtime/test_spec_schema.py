"""SPEC_JSON_SCHEMA: a valid 2020-12 schema that agrees with parse_spec on examples."""

import json

import pytest
from jsonschema import Draft202012Validator

from runtime.errors import SpecInvalid
from runtime.spec import LAYER_TYPES, SPEC_JSON_SCHEMA, parse_spec
from runtime.templates import TEMPLATES
from tests.runtime.test_spec_layers import CASES, HEAD, TRAINING
from tests.runtime.test_spec_reference import CIFAR_CNN, RNN_CLASSIFIER, XOR_NET

VALIDATOR = Draft202012Validator(SPEC_JSON_SCHEMA)

VALID = {
    "cifar10 cnn": CIFAR_CNN,
    "rnn classifier": RNN_CLASSIFIER,
    "xor": XOR_NET,
    **{
        name: {"version": 1, "layers": [*prefix, layer, *HEAD], "training": TRAINING}
        for name, prefix, layer, *_ in CASES
    },
    "every training setting": {
        "version": 1,
        "layers": [{"type": "flatten"}],
        "training": {
            "optimizer": {"type": "adamw", "lr": 0.1, "weight_decay": 0.01, "betas": [0.8, 0.9]},
            "schedule": {"type": "one_cycle", "max_lr": 1},
            "loss": None,
            "epochs": 3,
            "batch_size": 8,
            "augment": {"random_crop_padding": 2, "normalize_mean": [0], "normalize_std": [1]},
            "seed": 7,
        },
    },
}


def broken(**changes):
    document = json.loads(json.dumps(XOR_NET))
    for path, value in changes.items():
        target = document
        *parents, last = [int(k) if k.isdigit() else k for k in path.split("__")]
        for key in parents:
            target = target[key]
        target[last] = value
    return document


INVALID = {
    "unknown layer type": broken(layers__1__type="leaky_relu"),
    "negative size": broken(layers__0__out_features=-2),
    "bool for int": broken(layers__0__out_features=True),
    "unknown layer setting": broken(layers__1__inplace=True),
    "dropout p of 1": broken(layers__1={"type": "dropout", "p": 1}),
    "zero learning rate": broken(training__optimizer__lr=0),
    "unknown optimizer": broken(training__optimizer__type="lbfgs"),
    "wrong version": broken(version=2),
    "unknown part": broken(comment="hi"),
    "no layers": broken(layers=[]),
    "three betas": broken(training__optimizer__betas=[0.9, 0.99, 0.999]),
    "residual without layers": broken(layers__1={"type": "residual"}),
}


def test_the_schema_is_a_valid_2020_12_schema():
    Draft202012Validator.check_schema(SPEC_JSON_SCHEMA)
    assert SPEC_JSON_SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    json.dumps(SPEC_JSON_SCHEMA)  # the API serves it as JSON


@pytest.mark.parametrize("document", list(VALID.values()), ids=list(VALID))
def test_valid_specs_validate_against_the_schema(document):
    parse_spec(document)
    assert list(VALIDATOR.iter_errors(document)) == []


@pytest.mark.parametrize("document", list(INVALID.values()), ids=list(INVALID))
def test_invalid_specs_fail_both_the_schema_and_the_parser(document):
    assert list(VALIDATOR.iter_errors(document)) != []
    with pytest.raises(SpecInvalid):
        parse_spec(document)


def test_every_layer_type_is_described_from_the_registry():
    defs = SPEC_JSON_SCHEMA["$defs"]
    assert [ref["$ref"] for ref in defs["layer"]["oneOf"]] == [
        f"#/$defs/layer_{name}" for name in LAYER_TYPES
    ]
    for name in LAYER_TYPES:
        layer = defs[f"layer_{name}"]
        assert layer["title"] and layer["description"]
        assert layer["properties"]["type"] == {"const": name}
        assert layer["additionalProperties"] is False
        assert all(
            prop.get("description") for key, prop in layer["properties"].items() if key != "type"
        )
    assert defs["layer_conv2d"]["required"] == ["type", "out_channels", "kernel_size"]
    assert defs["layer_linear"]["properties"]["out_features"] == {
        "description": "number of outputs",
        "type": "integer",
        "minimum": 1,
        "maximum": 65536,
    }
    assert defs["layer_residual"]["properties"]["layers"]["items"] == {"$ref": "#/$defs/layer"}


def test_training_defaults_in_the_schema_match_the_dataclasses():
    defs = SPEC_JSON_SCHEMA["$defs"]
    optimizer = defs["optimizer"]["properties"]
    assert optimizer["betas"]["default"] == [0.9, 0.999]
    assert optimizer["momentum"]["default"] == 0.0
    assert optimizer["lr"]["exclusiveMinimum"] == 0
    assert defs["schedule"]["properties"]["type"]["default"] == "constant"
    assert defs["training"]["required"] == ["optimizer", "epochs", "batch_size"]
    assert defs["training"]["properties"]["loss"]["enum"] == [
        "cross_entropy",
        "binary_cross_entropy",
        "mse",
        None,
    ]
    assert set(defs["augment"]["properties"]) == {
        "random_crop_padding",
        "horizontal_flip",
        "normalize_mean",
        "normalize_std",
    }


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop"])
def test_the_used_by_annotation_is_enough_to_switch_optimizers(optimizer):
    """The builder switches an optimizer by keeping only the settings `x-used-by` gives the new
    type: from the CNN starter (SGD with momentum 0.9) that leaves a spec parse_spec accepts."""
    used_by = SPEC_JSON_SCHEMA["$defs"]["optimizer"]["x-used-by"]
    assert used_by == {
        "momentum": ["sgd", "rmsprop"],
        "nesterov": ["sgd"],
        "betas": ["adam", "adamw"],
    }
    document = json.loads(json.dumps(TEMPLATES["cifar-cnn"].spec))
    switched = {"type": optimizer}
    for name, value in document["training"]["optimizer"].items():
        if name != "type" and optimizer in used_by.get(name, [optimizer]):
            switched[name] = value
    document["training"]["optimizer"] = switched
    assert parse_spec(document).training.optimizer.type == optimizer
    # Without the drop, Adam refuses the starter's momentum: the dead end the builder avoids.
    if optimizer in ("adam", "adamw"):
        stale = {
            **document,
            "training": {**document["training"], "optimizer": {**switched, "momentum": 0.9}},
        }
        with pytest.raises(SpecInvalid):
            parse_spec(stale)
