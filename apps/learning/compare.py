"""Two runs side by side, as the comparison page shows them: the difference of their models (a
spec as lines, layer by layer and setting by setting, aligned with the changed lines marked; code
as a unified diff), and their metrics row by row. Plain data from plain data: no queries."""

import difflib
import json
from dataclasses import dataclass
from itertools import zip_longest


def _flat(prefix: str, value) -> list[tuple[str, object]]:
    if isinstance(value, dict):
        pairs = []
        for key in sorted(value):
            pairs += _flat(f"{prefix}.{key}", value[key])
        return pairs
    return [(prefix, value)]


def spec_lines(spec: dict | None) -> list[str]:
    """A spec as the lines a reader compares: one per layer (its type and settings), then one
    per training setting (dotted names), then anything else it holds."""
    spec = spec if isinstance(spec, dict) else {}
    lines = []
    for number, layer in enumerate(spec.get("layers") or [], start=1):
        layer = layer if isinstance(layer, dict) else {"type": layer}
        settings = ", ".join(
            f"{key}={json.dumps(layer[key])}" for key in sorted(layer) if key != "type"
        )
        line = f"layer {number}: {layer.get('type')}"
        lines.append(f"{line} ({settings})" if settings else line)
    for name, value in _flat("training", spec.get("training") or {}):
        lines.append(f"{name}: {json.dumps(value)}")
    for key in sorted(set(spec) - {"layers", "training", "version"}):
        for name, value in _flat(key, spec[key]):
            lines.append(f"{name}: {json.dumps(value)}")
    return lines


@dataclass(frozen=True)
class DiffRow:
    """One row of a side-by-side diff: the line of A, the line of B (None where a side has
    none) and how they differ: "same", "changed", "removed" (only in A) or "added" (only in B)."""

    a: str | None
    b: str | None
    change: str


def side_by_side(a: list[str], b: list[str]) -> list[DiffRow]:
    rows = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, a_start, a_end, b_start, b_end in matcher.get_opcodes():
        left, right = a[a_start:a_end], b[b_start:b_end]
        if tag == "equal":
            rows += [DiffRow(line, line, "same") for line in left]
        elif tag == "delete":
            rows += [DiffRow(line, None, "removed") for line in left]
        elif tag == "insert":
            rows += [DiffRow(None, line, "added") for line in right]
        else:
            for one, other in zip_longest(left, right):
                if one is None:
                    rows.append(DiffRow(None, other, "added"))
                elif other is None:
                    rows.append(DiffRow(one, None, "removed"))
                else:
                    rows.append(DiffRow(one, other, "changed"))
    return rows


def unified(a: list[str], b: list[str], *, a_name: str, b_name: str) -> list[tuple[str, str]]:
    """A unified diff (3 lines of context) as (line, kind) with kind "added", "removed",
    "hunk", "file" or "same"; empty when the texts are equal."""
    out = []
    for line in difflib.unified_diff(a, b, fromfile=a_name, tofile=b_name, lineterm=""):
        if line.startswith(("---", "+++")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "added"
        elif line.startswith("-"):
            kind = "removed"
        else:
            kind = "same"
        out.append((line, kind))
    return out


def per_class_rows(a: dict, b: dict) -> list[tuple[str, object, object]]:
    """(class, A's accuracy on it, B's) over the classes of either, in A's order then B's."""
    a_classes, b_classes = a.get("per_class_accuracy") or {}, b.get("per_class_accuracy") or {}
    names = list(a_classes) + [name for name in b_classes if name not in a_classes]
    return [(name, a_classes.get(name), b_classes.get(name)) for name in names]
