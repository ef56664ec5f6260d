"""The typed settings of a spec: each checks one JSON value and describes itself for JSON Schema."""

import math
from dataclasses import dataclass, field
from typing import Any

from .limits import MAX_LAYERS
from .words import all_of, count, either, number, quoted


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


class BadValue(Exception):
    """The value does not fit the field; the caller words the message from `expectation`."""


def whole(value: object) -> int:
    """A JSON integer. JSON true is not 1, but 5.0 is 5, as JSON Schema's "integer" agrees."""
    if isinstance(value, bool):
        raise BadValue
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise BadValue


def real(value: object) -> float | int:
    """A finite JSON number; NaN and infinity (which Python's json accepts) are not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadValue
    if isinstance(value, float) and not math.isfinite(value):
        raise BadValue
    return value


@dataclass(frozen=True)
class Field:
    """One setting: `doc` for the schema, `default` (REQUIRED when it must be given; None
    when left out means "inferred" or "off", and then JSON null is accepted too)."""

    doc: str
    default: Any = field(default=REQUIRED, kw_only=True)

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def check(self, value: object) -> Any:
        if value is None and self.default is None:
            return None
        return self.convert(value)

    def convert(self, value: object) -> Any:
        raise NotImplementedError

    def expectation(self) -> str:
        raise NotImplementedError

    def schema(self) -> dict:
        out = {"description": self.doc, **self.value_schema()}
        if self.default is not REQUIRED and self.default is not None:
            out["default"] = list(self.default) if isinstance(self.default, tuple) else self.default
        return out

    def value_schema(self) -> dict:
        raise NotImplementedError

    def _types(self, name: str) -> str | list[str]:
        return [name, "null"] if self.default is None else name


@dataclass(frozen=True)
class Int(Field):
    lo: int
    hi: int

    def convert(self, value: object) -> int:
        n = whole(value)
        if not self.lo <= n <= self.hi:
            raise BadValue
        return n

    def expectation(self) -> str:
        return f"a whole number from {count(self.lo)} to {count(self.hi)}"

    def value_schema(self) -> dict:
        return {"type": self._types("integer"), "minimum": self.lo, "maximum": self.hi}


@dataclass(frozen=True)
class IntPair(Int):
    """A size that may differ by direction: 5 or [height, width]."""

    def convert(self, value: object) -> int | tuple[int, int]:
        if isinstance(value, list | tuple):
            if len(value) != 2:
                raise BadValue
            return (super().convert(value[0]), super().convert(value[1]))
        return super().convert(value)

    def expectation(self) -> str:
        return super().expectation() + ", or a pair [height, width] of them"

    def value_schema(self) -> dict:
        one = {"type": "integer", "minimum": self.lo, "maximum": self.hi}
        pair = {"type": "array", "items": one, "minItems": 2, "maxItems": 2}
        options = [one, pair] + ([{"type": "null"}] if self.default is None else [])
        return {"anyOf": options}


@dataclass(frozen=True)
class Num(Field):
    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False

    def convert(self, value: object) -> float:
        x = real(value)
        low_ok = x > self.lo if self.lo_open else x >= self.lo
        high_ok = x < self.hi if self.hi_open else x <= self.hi
        if not (low_ok and high_ok):
            raise BadValue
        return float(x)

    def bounds(self) -> str:
        if not (self.lo_open or self.hi_open):
            return f"from {number(self.lo)} to {number(self.hi)}"
        low = "greater than" if self.lo_open else "at least"
        high = "less than" if self.hi_open else "at most"
        return f"{low} {number(self.lo)} and {high} {number(self.hi)}"

    def expectation(self) -> str:
        return f"a number {self.bounds()}"

    def bounds_schema(self) -> dict:
        return {
            "exclusiveMinimum" if self.lo_open else "minimum": self.lo,
            "exclusiveMaximum" if self.hi_open else "maximum": self.hi,
        }

    def value_schema(self) -> dict:
        return {"type": self._types("number"), **self.bounds_schema()}


@dataclass(frozen=True)
class Nums(Num):
    """A list of numbers, such as one per image channel."""

    min_len: int = 1
    max_len: int = 1

    def convert(self, value: object) -> tuple[float, ...]:
        if not isinstance(value, list | tuple) or not self.min_len <= len(value) <= self.max_len:
            raise BadValue
        return tuple(super(Nums, self).convert(v) for v in value)

    def expectation(self) -> str:
        n = str(self.min_len)
        if self.max_len != self.min_len:
            n = f"{self.min_len} to {self.max_len}"
        return f"a list of {n} numbers, each {self.bounds()}"

    def value_schema(self) -> dict:
        items = {"type": "number", **self.bounds_schema()}
        limits = {"minItems": self.min_len, "maxItems": self.max_len}
        return {"type": self._types("array"), "items": items, **limits}


@dataclass(frozen=True)
class Bool(Field):
    def convert(self, value: object) -> bool:
        if not isinstance(value, bool):
            raise BadValue
        return value

    def expectation(self) -> str:
        return "true or false"

    def value_schema(self) -> dict:
        return {"type": "boolean"}


@dataclass(frozen=True)
class Choice(Field):
    options: tuple[str, ...]

    def convert(self, value: object) -> str:
        if not isinstance(value, str) or value not in self.options:
            raise BadValue
        return value

    def expectation(self) -> str:
        return "one of " + either([quoted(o) for o in self.options])

    def value_schema(self) -> dict:
        return {"enum": [*self.options, *([None] if self.default is None else [])]}


@dataclass(frozen=True)
class Layers(Field):
    """A nested stack of layers (residual blocks); the parser walks it itself."""

    def expectation(self) -> str:
        return "a list of at least one layer"

    def value_schema(self) -> dict:
        items = {"$ref": "#/$defs/layer"}
        return {"type": "array", "items": items, "minItems": 1, "maxItems": MAX_LAYERS}


@dataclass(frozen=True)
class Section(Field):
    """A nested object of settings (training.optimizer); `name` is its $defs entry."""

    name: str
    fields: dict[str, Field]

    def expectation(self) -> str:
        required = [name for name, f in self.fields.items() if f.required]
        return "an object with " + all_of(required) if required else "an object"

    def value_schema(self) -> dict:
        return {"$ref": f"#/$defs/{self.name}"}
