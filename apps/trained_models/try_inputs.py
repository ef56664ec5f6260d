"""What the try-your-model page asks for, from the model's dataset: the input widget, and how its
pixels, points, numbers or tokens become the raw tensor the exported model takes (the same
values the dataset holds; the training's preprocessing is inside the ONNX graph).

    draw     a canvas for handwritten digits (8x8 digits as 64 values 0..1, MNIST 28x28 0..255)
    upload   an image file, resized to the dataset's H x W (colour or grey, values 0..255)
    plane    points clicked on the plane of a two-feature dataset, over its training data's range
    numbers  the values of one input, typed
    tokens   a token sequence, typed in the dataset's vocabulary
    text     a text, for a model of a text dataset: sent to the server (a form), encoded there
             with the model's own tokeniser (texts.py) and run on the inference pool as the
             prediction API runs texts; the browser never tokenises
"""

from functools import cache

from django.conf import settings
from django.utils.translation import gettext as _

from runtime.datasets import DatasetInfo, load_dataset

# Vector datasets whose features are the pixels of a small grey image: (height, width, the value
# of full ink). sklearn's digits are 8x8 with values 0..16, stored divided by 16.
DRAWN_VECTORS = {"digits": (8, 8, 1.0)}
DRAWN_IMAGES = {"mnist"}
# Token names per dataset (index = token id); others name tokens by their ids.
VOCABULARIES = {"sequences": ("A", "B", "C", *(str(i) for i in range(3, 16)))}
PLANE_MARGIN = 0.1


def try_input_for(info: DatasetInfo, *, tokenizer=None) -> dict:
    """The page's input description (try-model.js reads it) for a model of dataset `info`;
    `tokenizer`: a text model's (its card's), which makes the input a text."""
    shape = list(info.input_shape)
    base = {"shape": shape, "dtype": "int64" if info.kind == "tokens" else "float32"}
    if info.kind == "tokens" and tokenizer is not None:
        return {**base, "widget": "text", "layout": "vector", "tokenizer": tokenizer.kind}
    if info.name in DRAWN_VECTORS:
        height, width, ink = DRAWN_VECTORS[info.name]
        return {
            **base,
            "widget": "draw",
            "layout": "vector",
            "grid": [height, width],
            "max_value": ink,
        }
    if info.kind == "image":
        channels, height, width = shape
        widget = "draw" if info.name in DRAWN_IMAGES else "upload"
        return {
            **base,
            "widget": widget,
            "layout": "image",
            "grid": [height, width],
            "channels": channels,
            "max_value": 255.0,
        }
    if info.kind == "vector" and shape == [2]:
        return {**base, "widget": "plane", "layout": "vector", "plane": plane_of(info.name)}
    if info.kind == "tokens":
        vocabulary = VOCABULARIES.get(info.name) or tuple(str(i) for i in range(info.vocab_size))
        return {**base, "widget": "tokens", "layout": "vector", "vocabulary": list(vocabulary)}
    return {**base, "widget": "numbers", "layout": "vector"}


@cache
def plane_of(dataset: str) -> dict:
    """The range of a two-feature dataset's training inputs, with a margin on each side."""
    x = load_dataset(dataset, data_dir=settings.DATA_DIR, device="cpu").train.x
    ranges = {}
    for axis, name in enumerate(("x", "y")):
        low, high = float(x[:, axis].min()), float(x[:, axis].max())
        margin = (high - low) * PLANE_MARGIN or 1.0
        ranges[name] = [round(low - margin, 3), round(high + margin, 3)]
    return ranges


def example_for(info: DatasetInfo, widget: dict) -> str:
    """A typed input to start from: the first test input of the dataset (its values only). A
    teacher's dataset is split with an assignment's secret, which the page does not hold: none."""
    if widget["widget"] not in ("numbers", "tokens") or ":" in info.name:
        return ""
    sample = load_dataset(info.name, data_dir=settings.DATA_DIR, device="cpu").test.x[0]
    if widget["widget"] == "tokens":
        return " ".join(widget["vocabulary"][int(token)] for token in sample)
    return " ".join(f"{float(value):g}" for value in sample)


def page_text() -> dict:
    """The script's words, translated; "{name}" marks where it puts a value."""
    return {
        "running": _("Running the model…"),
        "answer": _("The model says {label} (probability {p})."),
        "draw": _("Draw a digit in the box, then lift the pen."),
        "download_failed": _("The model file could not be downloaded (HTTP {status})."),
        "server_failed": _("The server could not run the model (HTTP {status})."),
        "not_an_image": _("{name} is not an image this browser can read."),
        "unknown_token": _('"{token}" is not a token of this model; its tokens are: {vocabulary}.'),
        "not_a_number": _('"{value}" is not a number.'),
        "wrong_count": _("This is {given} values; the model takes {wanted}."),
    }
