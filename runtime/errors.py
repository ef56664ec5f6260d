"""Errors the runtime reports to learners: each says what is wrong and where."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a submission.

    path: where in the document, e.g. "layers[4].in_features" or "training.optimizer.lr".
    layer: the 1-based position of the layer at fault ("3" or "3.2" inside a residual block),
    or None when the problem is not about a layer. message: a sentence a learner understands.
    """

    path: str
    message: str
    layer: str | None = None

    def as_dict(self) -> dict:
        return {"path": self.path, "layer": self.layer, "message": self.message}


class SpecInvalid(Exception):
    """The spec cannot run as written; `problems` lists every reason found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))
