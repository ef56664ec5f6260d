"""A text model's tokeniser: the one its run trained on the assignment's train part, kept in its
model card (`card["tokenizer"]`, runtime.text.tokenizer_card: the tokeniser's JSON and its
sha256, never a pickle). The try page and the prediction API encode texts with it, so a text
becomes the same token ids as in the model's training and grading."""

import logging
import threading
from collections import OrderedDict

from runtime.text import TextTokenizer, TokenizerInvalid, tokenizer_from_card

log = logging.getLogger(__name__)

KEPT = 16  # tokenisers read back and kept per process, by sha256 (the last used)
_kept: OrderedDict[str, TextTokenizer] = OrderedDict()
_lock = threading.Lock()


def model_tokenizer(model) -> TextTokenizer | None:
    """The tokeniser of `model` (a TrainedModel), None when its card holds none (a model of
    images, numbers or built-in tokens) or one that does not check (logged: cards are written
    by the trusted side, so it is a defect, and the model then takes token ids only)."""
    entry = (model.card or {}).get("tokenizer")
    if entry is None:
        return None
    digest = entry.get("sha256") if isinstance(entry, dict) else None
    with _lock:
        if digest in _kept:
            _kept.move_to_end(digest)
            return _kept[digest]
    try:
        tokenizer = tokenizer_from_card(entry)
    except TokenizerInvalid as exc:
        log.error("model %s: its card's tokeniser is not usable: %s", model.pk, exc)
        return None
    with _lock:
        _kept[digest] = tokenizer
        while len(_kept) > KEPT:
            _kept.popitem(last=False)
    return tokenizer


# --- Trying a text model on the try page ----------------------------------------------------------
# The page's form sends a text; it is encoded and run as the prediction API does it, on the
# inference pool. That is the serving app's, above this one in the layers: it plugs its runner
# in when it is ready (apps/serving/apps.py), and the page calls it.


class TryFailed(Exception):
    """The text could not be run; `message` says why, for the page."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


_try_runner = None


def try_runner_connect(runner) -> None:
    """`runner(model, texts) -> float32 [N, classes]` probabilities, raising TryFailed."""
    global _try_runner
    _try_runner = runner


def texts_try(model, texts: list[str]):
    """The model's class probabilities for `texts`, run as the prediction API runs them."""
    if _try_runner is None:
        raise TryFailed("The inference pool is not connected in this process.")
    return _try_runner(model, texts)
