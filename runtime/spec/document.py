"""The parsed spec: immutable dataclasses, with training fields exactly as in docs/runtime.md."""

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class OptimizerSpec:
    type: str  # "sgd" | "adam" | "adamw" | "rmsprop"
    lr: float
    momentum: float = 0.0  # sgd, rmsprop
    nesterov: bool = False  # sgd, needs momentum > 0
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)  # adam, adamw


@dataclass(frozen=True)
class ScheduleSpec:
    type: str = "constant"  # "constant" | "step" | "cosine" | "one_cycle"
    step_size: int = 1  # step: epochs between decays
    gamma: float = 0.1  # step: factor
    max_lr: float | None = None  # one_cycle: peak (default: 10 x optimizer lr)


@dataclass(frozen=True)
class AugmentSpec:  # image datasets only
    random_crop_padding: int = 0  # 0 = off; crop back to the input size
    horizontal_flip: bool = False
    normalize_mean: tuple[float, ...] | None = None  # one per channel
    normalize_std: tuple[float, ...] | None = None


@dataclass(frozen=True)
class TrainingSpec:
    optimizer: OptimizerSpec
    schedule: ScheduleSpec
    loss: str | None  # "cross_entropy" | "binary_cross_entropy" | "mse"; None: from the task
    epochs: int
    batch_size: int
    augment: AugmentSpec
    seed: int = 0


@dataclass(frozen=True)
class LayerSpec:
    """One layer as written, with defaults filled in; inferred sizes left out are None.

    position: "3", or "3.2" for the second layer inside the residual block at 3.
    path: where it is in the document, e.g. "layers[2].layers[1]".
    """

    type: str
    options: dict[str, Any] = field(hash=False)
    layers: tuple["LayerSpec", ...] = ()  # residual blocks only
    position: str = "1"
    path: str = "layers[0]"

    def as_dict(self) -> dict:
        out = {"type": self.type}
        out.update({k: _jsonable(v) for k, v in self.options.items() if v is not None})
        if self.type == "residual":
            out["layers"] = [child.as_dict() for child in self.layers]
        return out


@dataclass(frozen=True)
class ModelSpec:
    version: int
    layers: tuple[LayerSpec, ...]
    training: TrainingSpec

    def as_dict(self) -> dict:
        """The document with every default written out; parse_spec reads it back unchanged."""
        training = {k: _jsonable(v) for k, v in asdict(self.training).items() if v is not None}
        return {
            "version": self.version,
            "layers": [layer.as_dict() for layer in self.layers],
            "training": training,
        }

    def walk(self):
        """Every layer, nested ones right after their residual block."""
        stack = list(reversed(self.layers))
        while stack:
            layer = stack.pop()
            yield layer
            stack.extend(reversed(layer.layers))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if v is not None}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value
