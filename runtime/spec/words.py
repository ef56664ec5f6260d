"""Numbers, shapes and values written the way learner-facing messages show them."""

import difflib
import json
import math

KIND_TEXT = {"image": "images", "vector": "vectors of numbers", "tokens": "token sequences"}


def count(n: int) -> str:
    """1250000 -> "1,250,000"; a number too long to print exactly is shown by its size."""
    if n.bit_length() > 200:  # int->str is slow (and limited) for huge values
        return f"about 10^{int(n.bit_length() * math.log10(2))}"
    return f"{n:,}"


def number(x: float | int) -> str:
    if isinstance(x, int):
        return count(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "infinity" if x > 0 else "-infinity"
    return repr(x)


def plural(n: int, word: str) -> str:
    return f"{count(n)} {word}" if n == 1 else f"{count(n)} {word}s"


def shape(dims: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


def grid(hw: tuple[int, int]) -> str:
    return f"{hw[0]}\u00d7{hw[1]}"  # the multiplication sign


def either(items: list[str]) -> str:
    """["a", "b", "c"] -> "a, b or c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def all_of(items: list[str]) -> str:
    """["a", "b", "c"] -> "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def quoted(text: str) -> str:
    return json.dumps(text if len(text) <= 40 else text[:40] + "…", ensure_ascii=False)


def show(value: object, depth: int = 0) -> str:
    """A value from the document, short enough for a message whatever its size."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int | float):
        return number(value)
    if isinstance(value, str):
        return quoted(value)
    if isinstance(value, list | tuple):
        if depth or len(value) > 8:
            return f"a list of {plural(len(value), 'item')}"
        return "[" + ", ".join(show(v, depth + 1) for v in value) + "]"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def suggest(word: object, options: list[str]) -> str:
    """' (did you mean "kernel_size"?)' when a close option exists."""
    if not isinstance(word, str) or len(word) > 100:
        return ""
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {quoted(close[0])}?)" if close else ""


def size(nbytes: int) -> str:
    """Decimal units, as learners read them: 262144 -> "262.1 KB"."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f}".removesuffix(".0") + f" {unit}"
    return plural(nbytes, "byte")


def percent(part: int, whole: int) -> str:
    share = part * 100 / whole
    return "less than 1%" if share < 1 else f"{round(share):,}%"
