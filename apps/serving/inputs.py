"""A prediction request's samples, from JSON numbers, base64 images or texts to the array the
model takes (its dataset's raw form: float32 images [N, C, H, W] of pixel values 0..255, float32
vectors [N, F], int64 tokens [N, T]). Texts are for a model of a text dataset, whose card holds
the tokeniser it was trained with: they become its token ids, padded with 0, exactly as in
training and grading. Every check names what is wrong and where."""

import base64
import binascii
import io
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.utils.translation import gettext as _
from PIL import Image

from runtime.datasets import DatasetInfo
from runtime.text import TextTokenizer

IMAGE_FORMATS = {"PNG", "JPEG"}
MAX_TEXT_CHARS = 10_000  # one text; the tokeniser keeps its first max_length tokens anyway


class BadInput(Exception):
    """`field` (inputs, images or non_field_errors) has the problem `message`."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


class NonFinite:
    """A NaN, Infinity or -Infinity token in the JSON body, kept so its place can be named."""

    def __init__(self, token: str):
        self.token = token


@dataclass(frozen=True)
class InputSpec:
    kind: str  # "image" | "vector" | "tokens"
    shape: tuple[int, ...]  # one sample's
    vocab_size: int | None
    # A text model's (from its card): texts are accepted and encoded with it.
    tokenizer: TextTokenizer | None = field(default=None, compare=False)

    @classmethod
    def of(cls, info: DatasetInfo, tokenizer: TextTokenizer | None = None) -> "InputSpec":
        return cls(
            kind=info.kind,
            shape=tuple(info.input_shape),
            vocab_size=info.vocab_size,
            tokenizer=tokenizer if info.kind == "tokens" else None,
        )

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def dtype(self):
        return np.int64 if self.kind == "tokens" else np.float32

    def describe(self) -> str:
        if len(self.shape) == 1:
            return str(self.size)
        return f"{self.size} ({' x '.join(map(str, self.shape))})"


def samples_decode(*, spec: InputSpec, inputs=None, images=None, texts=None) -> np.ndarray:
    """The batch as the model's input array; BadInput for the first problem found."""
    given = [
        (name, value)
        for name, value in (("inputs", inputs), ("images", images), ("texts", texts))
        if value is not None
    ]
    if len(given) != 1:
        raise BadInput("non_field_errors", _several(spec, given))
    field, batch = given[0]
    limit = settings.PREDICT_MAX_BATCH
    if len(batch) > limit:
        message = _("a batch of %(n)s is more than %(limit)s") % {"n": len(batch), "limit": limit}
        raise BadInput(field, message)
    if images is not None:
        if spec.kind != "image":
            raise BadInput(
                "images",
                _("this model takes numbers (inputs), not images: its data is %(kind)s")
                % {"kind": spec.kind},
            )
        return np.stack([_image(spec, value, f"images[{i}]") for i, value in enumerate(images)])
    if texts is not None:
        return _texts(spec, texts)
    rows = [_numbers(spec, value, f"inputs[{i}]") for i, value in enumerate(inputs)]
    return np.asarray(rows, dtype=spec.dtype).reshape((len(rows), *spec.shape))


def _several(spec: InputSpec, given: list) -> str:
    if spec.tokenizer is not None:
        if not given:
            return _("Send either texts or inputs (token ids).")
        return _("Send one of texts and inputs, not both.")
    if not given:
        return _("Send either inputs (numbers) or images (base64 PNG or JPEG).")
    if "texts" in dict(given):
        return _("Send inputs or images; this model takes no texts.")
    return _("Send inputs or images, not both.")


# --- texts --------------------------------------------------------------------------------------


def _texts(spec: InputSpec, texts: list) -> np.ndarray:
    """Texts as the token ids of the model's own tokeniser, padded to its input's steps."""
    tokenizer = spec.tokenizer
    if tokenizer is None:
        raise BadInput(
            "texts",
            _("this model takes no texts: its data is %(kind)s; send inputs") % {"kind": spec.kind},
        )
    for index, text in enumerate(texts):
        where = f"texts[{index}]"
        if not isinstance(text, str):
            raise BadInput("texts", _("%(where)s is not a string") % {"where": where})
        if len(text) > MAX_TEXT_CHARS:
            raise BadInput(
                "texts",
                _("%(where)s has %(n)s characters; a text may have at most %(max)s")
                % {"where": where, "n": len(text), "max": MAX_TEXT_CHARS},
            )
    ids, _lengths = tokenizer.encode(texts)
    if ids.shape[1:] != spec.shape:  # a card's tokeniser that does not fit its model's input
        raise BadInput(
            "texts",
            _("this model's tokeniser gives %(got)s ids a text, and the model takes %(want)s")
            % {"got": ids.shape[1], "want": spec.describe()},
        )
    return ids


# --- numbers ------------------------------------------------------------------------------------


def _numbers(spec: InputSpec, value, where: str) -> list:
    """One sample as a flat list, flat or nested as the model's shape is."""
    if not isinstance(value, list):
        raise BadInput("inputs", _("%(where)s is not a list of numbers") % {"where": where})
    if len(value) == spec.size and not any(isinstance(v, list) for v in value):
        flat, places = value, None
    elif len(spec.shape) > 1 and len(value) == spec.shape[0] and isinstance(value[0], list):
        flat, places = [], []
        _flatten(value, spec.shape, where, flat, places)
    else:
        count = _count(value)
        raise BadInput(
            "inputs",
            _("%(where)s has %(count)s numbers; this model takes %(size)s")
            % {"where": where, "count": count, "size": spec.describe()},
        )
    if not _all_fine(spec, flat):  # then find the first problem, and say where it is
        for index, number in enumerate(flat):
            _check_number(spec, number, places[index] if places else f"{where}[{index}]")
    return flat


def _all_fine(spec: InputSpec, flat: list) -> bool:
    """True when every number passes _check_number (checked at once, in numpy); False when one
    may not, for the loop to name it."""
    kinds = set(map(type, flat))  # bool and NonFinite are types of their own
    tokens = spec.kind == "tokens"
    if not flat or not kinds <= ({int} if tokens else {int, float}):
        return False
    try:
        values = np.asarray(flat, dtype=np.int64 if tokens else np.float64)
    except OverflowError:  # an integer too large for int64 or float64
        return False
    if tokens:
        return bool(values.min() >= 0 and values.max() <= (spec.vocab_size or 1) - 1)
    return bool(np.all(np.abs(values) <= 3.4e38))  # False for inf and NaN too


def _flatten(value, shape, where, flat, places) -> None:
    if len(shape) == 0:
        flat.append(value)
        places.append(where)
        return
    if not isinstance(value, list) or len(value) != shape[0]:
        got = _("%(n)s items") % {"n": len(value)} if isinstance(value, list) else _("a number")
        raise BadInput(
            "inputs",
            _("%(where)s has %(got)s; this model's sample shape %(shape)s needs %(want)s there")
            % {"where": where, "got": got, "shape": list(shape), "want": shape[0]},
        )
    for index, item in enumerate(value):
        _flatten(item, shape[1:], f"{where}[{index}]", flat, places)


def _count(value) -> int:
    return sum(_count(v) for v in value) if isinstance(value, list) else 1


def _check_number(spec: InputSpec, number, where: str) -> None:
    if isinstance(number, NonFinite) or (isinstance(number, float) and not math.isfinite(number)):
        shown = number.token if isinstance(number, NonFinite) else repr(number)
        message = _("%(where)s is %(value)s; numbers must be finite")
        raise BadInput("inputs", message % {"where": where, "value": shown})
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise BadInput("inputs", _("%(where)s is not a number") % {"where": where})
    if spec.kind == "tokens":
        top = (spec.vocab_size or 1) - 1
        if not isinstance(number, int) or not 0 <= number <= top:
            raise BadInput(
                "inputs",
                _("%(where)s is %(value)s; this model's tokens are whole numbers from 0 to %(top)s")
                % {"where": where, "value": number, "top": top},
            )
    elif abs(number) > 3.4e38:
        raise BadInput("inputs", _("%(where)s is too large for float32") % {"where": where})


# --- images -------------------------------------------------------------------------------------


def _image(spec: InputSpec, value, where: str) -> np.ndarray:
    if not isinstance(value, str):
        raise BadInput("images", _("%(where)s is not a base64 string") % {"where": where})
    if value.startswith("data:") and "," in value:  # a data URL, as browsers make them
        value = value.split(",", 1)[1]
    cap = settings.PREDICT_MAX_IMAGE_BYTES
    if len(value) > 4 * math.ceil(cap / 3):
        raise BadInput(
            "images",
            _("%(where)s is more than %(kib)s KiB; an image may have at most that")
            % {"where": where, "kib": cap // 1024},
        )
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput("images", _("%(where)s is not valid base64") % {"where": where}) from None
    channels, height, width = spec.shape
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))  # reads the header only
            if image.format not in IMAGE_FORMATS:
                raise BadInput(
                    "images",
                    _("%(where)s is %(format)s; send PNG or JPEG")
                    % {"where": where, "format": image.format},
                )
            pixels = image.width * image.height
            if pixels > settings.PREDICT_MAX_IMAGE_PIXELS:
                raise BadInput(
                    "images",
                    _("%(where)s is %(w)s x %(h)s pixels; at most %(max)s pixels are read")
                    % {
                        "where": where,
                        "w": image.width,
                        "h": image.height,
                        "max": settings.PREDICT_MAX_IMAGE_PIXELS,
                    },
                )
            image.load()
    except BadInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadInput("images", _("%(where)s has too many pixels") % {"where": where}) from None
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow's ways of saying "unreadable"
        raise BadInput(
            "images",
            _("%(where)s is not a readable PNG or JPEG (%(reason)s)")
            % {"where": where, "reason": exc},
        ) from None
    image = image.convert("L" if channels == 1 else "RGB")
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.float32)
    return array[np.newaxis] if channels == 1 else array.transpose(2, 0, 1)
