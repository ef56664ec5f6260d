"""SPEC_JSON_SCHEMA: the spec document as JSON Schema 2020-12, made from the validator's tables."""

from .fields import Field, Layers, Section
from .layers import LAYERS, LayerType
from .limits import MAX_LAYERS
from .training import TRAINING, USED_BY

SCHEMA_ID = "https://aula.invalid/schemas/model-spec-1.json"


def _object(title: str, description: str, fields: dict[str, Field], defs: dict) -> dict:
    for spec_field in fields.values():
        if isinstance(spec_field, Section):
            defs[spec_field.name] = _object(
                spec_field.name, spec_field.doc, spec_field.fields, defs
            )
    required = [name for name, spec_field in fields.items() if spec_field.required]
    out = {
        "title": title,
        "description": description,
        "type": "object",
        "properties": {name: spec_field.schema() for name, spec_field in fields.items()},
        "additionalProperties": False,
    }
    if required:
        out["required"] = required
    return out


def _layer(kind: LayerType, defs: dict) -> dict:
    out = _object(kind.title, kind.description, kind.fields, defs)
    out["properties"] = {"type": {"const": kind.type}, **out["properties"]}
    out["required"] = ["type", *out.get("required", [])]
    return out


def _schema() -> dict:
    defs: dict = {}
    for name, kind in LAYERS.items():
        defs[f"layer_{name}"] = _layer(kind, defs)
    defs["layer"] = {
        "description": "One layer, chosen by its type.",
        "oneOf": [{"$ref": f"#/$defs/layer_{name}"} for name in LAYERS],
    }
    defs["training"] = _object("training", TRAINING.doc, TRAINING.fields, defs)
    # An annotation (not a constraint): which optimizer or schedule types take each setting,
    # so the builder drops a setting when the type changes to one that refuses it.
    for section, names in USED_BY.items():
        defs[section]["x-used-by"] = {name: list(users) for name, users in names.items()}
    layers = Layers(f"The model, first layer first; at most {MAX_LAYERS} layers in all.")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Aula model spec",
        "description": "A neural network as a stack of layers, and how to train it.",
        "type": "object",
        "properties": {
            "version": {"description": "The spec format's version.", "const": 1},
            "layers": layers.schema(),
            "training": {"$ref": "#/$defs/training"},
        },
        "required": ["version", "layers", "training"],
        "additionalProperties": False,
        "$defs": defs,
    }


# The document's shape (types, ranges, known keys), from the same field tables parse_spec uses;
# parse_spec and check_spec add what a schema cannot say well: nesting depth, settings only some
# optimizers use, shapes.
SPEC_JSON_SCHEMA: dict = _schema()
