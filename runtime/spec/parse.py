"""parse_spec: the document's size, JSON syntax and structure, with every problem found at once."""

import json
from functools import partial

from ..errors import Problem, SpecInvalid
from .document import AugmentSpec, LayerSpec, ModelSpec, OptimizerSpec, ScheduleSpec, TrainingSpec
from .fields import BadValue, Field, Layers, Section, whole
from .layers import LAYERS
from .limits import MAX_DEPTH, MAX_DOCUMENT_BYTES, MAX_LAYERS, MAX_PROBLEMS, MAX_SETTINGS
from .training import TRAINING, training_problems
from .words import count, plural, show, size, suggest

MISSING = object()
PARTS = ("version", "layers", "training")
TYPE_LIST = ", ".join(LAYERS)


class Problems(list):
    """The problems found so far. Past MAX_PROBLEMS they are only counted, and a message may be
    a callable, worded only when kept: a hostile document with a million mistakes stays cheap."""

    def __init__(self):
        super().__init__()
        self.found = 0

    def add(self, path: str, message, layer: str | None = None) -> None:
        self.found += 1
        if len(self) < MAX_PROBLEMS:
            text = message() if callable(message) else message
            self.append(Problem(path, text, layer))

    def capped(self) -> list[Problem]:
        if self.found <= MAX_PROBLEMS:
            return list(self)
        rest = self.found - MAX_PROBLEMS + 1
        return [*self[: MAX_PROBLEMS - 1], Problem("", f"and {count(rest)} more problems")]


def parse_spec(document: dict | str | bytes | ModelSpec) -> ModelSpec:
    """The spec from a JSON document (text, bytes or already decoded); raises SpecInvalid
    listing every problem found. A ModelSpec is returned as it is."""
    if isinstance(document, ModelSpec):
        return document
    data = _load(document)
    problems = Problems()
    spec = _spec(data, problems)
    if problems:
        raise SpecInvalid(problems.capped())
    return spec


def _load(document: object) -> object:
    """Decode JSON text, after checking its size: a huge document is refused unread."""
    if isinstance(document, str):
        # n characters are at least n bytes, so only a short text is ever encoded to measure it
        # (isascii() is O(1) in CPython)
        ascii_only = document.isascii()
        short = len(document) <= MAX_DOCUMENT_BYTES
        nbytes = len(document) if ascii_only or not short else len(document.encode())
        _check_size(nbytes, at_least=not (ascii_only or short))
        text = document
    elif isinstance(document, bytes | bytearray):
        _check_size(len(document), at_least=False)
        try:
            text = bytes(document).decode("utf-8-sig")
        except UnicodeDecodeError as error:
            message = f"the spec is not UTF-8 text: byte {count(error.start + 1)} cannot be read"
            raise SpecInvalid([Problem("", message)]) from None
    else:
        return document
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        message = f"the spec is not valid JSON: {error.msg} at {where}"
    except RecursionError:
        message = "the spec is nested too deeply to read"
    except ValueError:  # an integer with thousands of digits
        message = "the spec has a number too long to read"
    raise SpecInvalid([Problem("", message)])


def _check_size(nbytes: int, at_least: bool) -> None:
    if nbytes > MAX_DOCUMENT_BYTES:
        amount, limit = size(nbytes), size(MAX_DOCUMENT_BYTES)
        if amount == limit:  # rounded to the same KB: be exact
            amount, limit = plural(nbytes, "byte"), plural(MAX_DOCUMENT_BYTES, "byte")
        amount = ("at least " if at_least else "") + amount
        message = f"the spec is {amount}, over the limit of {limit}"
        raise SpecInvalid([Problem("", message)])


def _spec(data: object, problems: Problems) -> ModelSpec | None:
    if not isinstance(data, dict):
        message = (
            f"the spec must be a JSON object with version, layers and training, but is {show(data)}"
        )
        problems.add("", message)
        return None
    if len(data) > MAX_SETTINGS:
        message = (
            f"the spec has {count(len(data))} parts; its parts are version, layers and training"
        )
        problems.add("", message)
        return None
    for key in data:
        if key not in PARTS:
            hint = suggest(key, list(PARTS))
            message = (
                f"the spec has no part {show(key)}{hint}; "
                "its parts are version, layers and training"
            )
            problems.add(str(key), message)
    _version(data.get("version", MISSING), problems)
    layers = _layers(data.get("layers", MISSING), problems)
    training = _training(data.get("training", MISSING), problems)
    return None if problems else ModelSpec(1, layers, training)


def _version(value: object, problems: Problems) -> None:
    if value is MISSING:
        problems.add("version", "the spec needs version, which must be 1")
        return
    try:
        ok = whole(value) == 1
    except BadValue:
        ok = False
    if not ok:
        problems.add("version", f"version must be 1, but is {show(value)}")


def _layers(value: object, problems: Problems) -> tuple[LayerSpec, ...]:
    if value is MISSING:
        problems.add("layers", "the spec needs layers, a list of at least one layer")
        return ()
    if not _stack_ok(value, "layers", "layers", problems):
        return ()
    if _count(value) > MAX_LAYERS:
        message = (
            f"the model has more than {MAX_LAYERS} layers, counting those inside residual "
            f"blocks; use at most {MAX_LAYERS}"
        )
        problems.add("layers", message)
        return ()
    parsed = (_layer(item, f"layers[{i}]", str(i + 1), 0, problems) for i, item in enumerate(value))
    return tuple(layer for layer in parsed if layer is not None)


def _stack_ok(value: object, path: str, subject: str, problems: Problems, layer=None) -> bool:
    if not isinstance(value, list | tuple):
        problems.add(path, f"{subject} must be a list of layers, but is {show(value)}", layer)
        return False
    if not value:
        problems.add(path, f"{subject} must list at least one layer", layer)
        return False
    return True


def _count(items: list | tuple, depth: int = 0) -> int:
    """Layers in a stack, nested ones included; stops early once over the limit."""
    total = len(items)
    if total > MAX_LAYERS or depth > MAX_DEPTH:
        return total
    for item in items:
        nested = item.get("layers") if isinstance(item, dict) else None
        if item_is_residual(item) and isinstance(nested, list | tuple):
            total += _count(nested, depth + 1)
            if total > MAX_LAYERS:
                break
    return total


def item_is_residual(item: object) -> bool:
    return isinstance(item, dict) and item.get("type") == "residual"


def _layer(
    item: object, path: str, position: str, depth: int, problems: Problems
) -> LayerSpec | None:
    """One layer; `depth` counts the residual blocks around it."""
    if not isinstance(item, dict):
        message = (
            f'layer {position} must be an object such as {{"type": "relu"}}, but is {show(item)}'
        )
        problems.add(path, message, position)
        return None
    type_ = item.get("type", MISSING)
    if not isinstance(type_, str) or type_ not in LAYERS:
        problems.add(f"{path}.type", _bad_type(type_, position), position)
        return None
    kind, subject = LAYERS[type_], f"layer {position} ({type_})"
    before = problems.found
    options = _read(item, kind.fields, path, subject, problems, position, skip=("type",))
    children = ()
    if type_ == "residual":
        children = _children(item, path, position, depth, subject, problems)
    if options is not None and problems.found == before:
        for name, tail in kind.validate(options):
            problems.add(f"{path}.{name}", f"{subject} {tail}", position)
    return LayerSpec(type_, options or {}, children, position, path)


def _bad_type(type_: object, position: str) -> str:
    if type_ is MISSING:
        return f"layer {position} needs a type, one of: {TYPE_LIST}"
    hint = suggest(type_, list(LAYERS))
    unknown = f"layer {position} has an unknown type {show(type_)}{hint}"
    return f"{unknown}; the layer types are: {TYPE_LIST}"


def _children(item: dict, path: str, position: str, depth: int, subject: str, problems: Problems):
    if depth >= MAX_DEPTH:
        message = (
            f"{subject} is inside {depth} other residual blocks; residual blocks can be nested "
            f"at most {MAX_DEPTH} deep"
        )
        problems.add(path, message, position)
        return ()
    value = item.get("layers", MISSING)
    if value is MISSING:
        problems.add(
            f"{path}.layers", f"{subject} needs layers, a list of at least one layer", position
        )
        return ()
    if not _stack_ok(value, f"{path}.layers", f"{subject}: layers", problems, position):
        return ()
    children = (
        _layer(child, f"{path}.layers[{j}]", f"{position}.{j + 1}", depth + 1, problems)
        for j, child in enumerate(value)
    )
    return tuple(child for child in children if child is not None)


def _read(
    data: dict,
    fields: dict[str, Field],
    path: str,
    subject: str,
    problems: Problems,
    position: str | None = None,
    skip: tuple[str, ...] = (),
) -> dict | None:
    """The fields of one object with defaults filled in, or None after reporting problems.

    Layer messages read "layer 3 (conv2d): kernel_size must be ..."; section messages name
    the full path, "training.optimizer.lr must be ...".
    """
    if len(data) > MAX_SETTINGS:  # refused whole: no need to look at each of a million keys
        message = (
            f"{subject} has {count(len(data))} settings, more than any part of a spec can have "
            f"({MAX_SETTINGS})"
        )
        problems.add(path, message, position)
        return None
    before = problems.found
    for key in data:
        if key not in fields and key not in skip:
            problems.add(f"{path}.{key}", partial(_unknown, key, fields, subject), position)
    values = {}
    for name, spec_field in fields.items():
        where = f"{path}.{name}"
        value = data.get(name, MISSING)
        if isinstance(spec_field, Layers):
            continue
        if value is MISSING and spec_field.required:
            problems.add(where, f"{subject} needs {name}, {spec_field.expectation()}", position)
        elif isinstance(spec_field, Section):
            values[name] = _section(value, spec_field, where, problems)
        elif value is MISSING:
            values[name] = spec_field.default
        else:
            values[name] = _value(value, spec_field, where, subject, name, problems, position)
    return values if problems.found == before else None


def _value(value, spec_field: Field, where, subject, name, problems: Problems, position):
    try:
        return spec_field.check(value)
    except BadValue:
        label = f"{subject}: {name}" if position else where
        problems.add(
            where, f"{label} must be {spec_field.expectation()}, but is {show(value)}", position
        )
        return None


def _section(value: object, section: Section, path: str, problems: Problems) -> dict | None:
    if value is MISSING:
        value = section.default
    if not isinstance(value, dict):
        problems.add(path, f"{path} must be {section.expectation()}, but is {show(value)}")
        return None
    return _read(value, section.fields, path, path, problems)


def _unknown(key: object, fields: dict[str, Field], subject: str) -> str:
    if not fields:
        return f"{subject} has no settings, so remove {show(key)}"
    names = list(fields)
    hint = suggest(key, names)
    return f"{subject} has no setting {show(key)}{hint}; its settings are: {', '.join(names)}"


def _training(value: object, problems: Problems) -> TrainingSpec | None:
    if value is MISSING:
        problems.add("training", f"the spec needs training, {TRAINING.expectation()}")
        return None
    raw = _section(value, TRAINING, "training", problems)
    if raw is None:
        return None
    training = TrainingSpec(
        optimizer=OptimizerSpec(**raw["optimizer"]),
        schedule=ScheduleSpec(**raw["schedule"]),
        loss=raw["loss"],
        epochs=raw["epochs"],
        batch_size=raw["batch_size"],
        augment=AugmentSpec(**raw["augment"]),
        seed=raw["seed"],
    )
    for path, message in training_problems(training):
        problems.add(path, message)
    return training
