"""Model specs: parse the JSON document, check it against a dataset, build the torch model."""

from .check import build_model, check_spec, inspect_spec
from .document import (
    AugmentSpec,
    LayerSpec,
    ModelSpec,
    OptimizerSpec,
    ScheduleSpec,
    TrainingSpec,
)
from .layers import LAYERS
from .limits import MAX_DOCUMENT_BYTES
from .parse import parse_spec
from .report import LayerReport, ModelBudget, SpecReport
from .schema import SPEC_JSON_SCHEMA

LAYER_TYPES: tuple[str, ...] = tuple(LAYERS)

__all__ = [
    "LAYER_TYPES",
    "MAX_DOCUMENT_BYTES",
    "SPEC_JSON_SCHEMA",
    "AugmentSpec",
    "LayerReport",
    "LayerSpec",
    "ModelBudget",
    "ModelSpec",
    "OptimizerSpec",
    "ScheduleSpec",
    "SpecReport",
    "TrainingSpec",
    "build_model",
    "check_spec",
    "inspect_spec",
    "parse_spec",
]
