"""Run diagnostics: what went wrong (or could go better) in a finished training run, read from its
progress points and final metrics, each finding a `Hint` that quotes its evidence and names the
skills whose lesson helps. No Django here: the services feed it the stored events and metrics.

Inputs, as the trainer and the evaluation write them:
- `points`: the progress events in order, as runtime.progress.ProgressPoint defines them.
  Intermediate points carry the means since the previous point; each completed epoch has one
  epoch-end point (`epoch_end`) carrying the epoch's means and the validation loss and accuracy.
  Points stored before `epoch_end` existed are recognised by their `val_accuracy`, or, for a run
  without a validation split, by their step being `epoch * steps / epochs` (intermediate points
  never fall on an epoch's last step). A timed-out run may end with intermediate points of a
  partial epoch.
- `outcome`: the run's status ("completed", "cancelled", "timed_out", "diverged") and counts.
- `metrics`: the evaluation on the hidden test split (accuracy, per-class accuracy, confusion
  matrix with rows the true class).

The loss of each epoch is its epoch-end loss, or for a partial epoch the mean of its points'.
"Short of the goal" for an accuracy: below `target` when one is given (at or above it never is),
within CHANCE_MARGIN of chance, or without a target below LOW_ACCURACY. Relative changes of the
loss are taken against max(loss, LOSS_FLOOR), so the noise of a loss near zero is no signal.

The rules, in the order the hints come out (most important first):
- divergence: the outcome says "diverged" or a point has a NaN or infinite loss. The model is
  then broken and nothing else is said of the run.
- lr_too_high: the epoch loss rose by LR_HIGH_EPOCH_RISE or more for LR_HIGH_RISING_EPOCHS
  epochs in a row; or the last loss is LR_HIGH_END_RISE or more above the first; or consecutive
  losses differ by a median of more than LR_HIGH_SWING (at least LR_HIGH_MIN_SWINGS changes).
- lr_too_low: over LR_LOW_MIN_EPOCHS or more completed epochs the loss fell by less than
  LR_LOW_DECREASE from the first point to the last epoch, and the training accuracy is short of
  the goal.
- underfitting: the training accuracy is short of the goal although the loss has levelled off
  (it fell by STILL_FALLING or less over the last epoch, and its slope, fitted over the last
  SLOPE_EPOCHS epoch losses, is LEVELLED_OFF or less of its level per epoch; yet it fell by
  LR_LOW_DECREASE or more over the run: it learned, then stopped), so the model lacks capacity.
  The advice and the skills follow the model's kind (`model_kind`: "mlp", "cnn", "rnn", from
  the spec or the exercise): a CNN is told to widen or deepen its convolutions, never to "add
  convolutions". Not with lr_too_high/lr_too_low, which explain a low accuracy better; it
  excludes overfitting.
- overfitting: at the last epoch end the training accuracy exceeds the validation accuracy by
  OVERFIT_GAP or more, or the validation accuracy fell OVERFIT_VAL_DROP or more below its best
  while the training accuracy kept rising, or the validation loss rose OVERFIT_VAL_LOSS_RISE or
  more above its lowest while the training loss kept falling. A "suggestion" when the run still
  reached its target.
- slow_convergence: the loss is still falling: by more than STILL_FALLING over the last epoch
  (a timed-out run's partial epoch counts), or at a fitted slope of more than LEVELLED_OFF of its
  level per epoch over the last SLOPE_EPOCHS epochs (a CNN's loss falling 5% an epoch has not
  levelled off: it needs more epochs, not more capacity); and the accuracy reached (on the
  test split, else the last validation accuracy) is short of the goal or unknown, and so is
  the training accuracy (a model that fits its training data gains nothing from more). Not with
  another convergence hint, nor with overfitting (more epochs would widen the gap).
- confused_classes: in the test confusion matrix, true classes of which CONFUSION_FRACTION or
  more (and CONFUSION_MIN_COUNT or more examples) were predicted as one other class, the largest
  CONFUSION_MAX_PAIRS. Not when the test accuracy is within CHANCE_MARGIN of chance.
A cancelled run is not judged on its convergence (lr_too_high, lr_too_low, underfitting,
slow_convergence): it stopped early by choice. Whatever the input, `diagnose` does not raise:
missing keys, None, NaN and malformed values are skipped, and what can be said is said.
"""

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import mean, median
from typing import Any

# Relative changes of the loss are divided by at least this: a cross-entropy loss going from
# 0.001 to 0.002 doubles, yet the model is as good as before.
LOSS_FLOOR = 0.02
# The epoch loss rising by this fraction or more, for LR_HIGH_RISING_EPOCHS epochs in a row, is
# the learning rate throwing the weights about rather than noise.
LR_HIGH_EPOCH_RISE = 0.10
LR_HIGH_RISING_EPOCHS = 2
# The last loss this fraction or more above the first: training made things worse.
LR_HIGH_END_RISE = 0.10
# A median change of more than this between consecutive points (a healthy run's are a few per
# cent), over at least LR_HIGH_MIN_SWINGS changes, is a loss jumping around.
LR_HIGH_SWING = 0.50
LR_HIGH_MIN_SWINGS = 4
# A loss that fell by less than this fraction over LR_LOW_MIN_EPOCHS or more completed epochs
# has barely moved; fewer epochs are too few to tell.
LR_LOW_DECREASE = 0.05
LR_LOW_MIN_EPOCHS = 3
# A loss that fell by more than this fraction over the last epoch is still falling steeply;
# by this or less, it has levelled off.
STILL_FALLING = 0.10
# The least-squares slope of the last SLOPE_EPOCHS epoch losses, relative to their mean: a loss
# falling by more than LEVELLED_OFF of its level per epoch is still improving (more epochs
# help); by that or less it has levelled off.
SLOPE_EPOCHS = 3
LEVELLED_OFF = 0.02
# Within a single epoch the trend compares the means of the first and last halves of its
# points, which needs at least this many.
MIN_TREND_POINTS = 4
# Training accuracy above validation accuracy by this much (0.15 = 15 percentage points) is the
# model memorising its training data.
OVERFIT_GAP = 0.15
# Validation accuracy this far below its best while training accuracy kept rising.
OVERFIT_VAL_DROP = 0.05
# Validation loss this fraction or more above its lowest while the training loss kept falling.
OVERFIT_VAL_LOSS_RISE = 0.10
# An accuracy within this of chance (1 / number of classes) has learned next to nothing.
CHANCE_MARGIN = 0.10
# Without a target, an accuracy below this is short of any reasonable goal.
LOW_ACCURACY = 0.70
# A true class of which this fraction or more, and at least CONFUSION_MIN_COUNT examples, was
# predicted as one other class; at most CONFUSION_MAX_PAIRS such pairs are reported.
CONFUSION_FRACTION = 0.20
CONFUSION_MIN_COUNT = 3
CONFUSION_MAX_PAIRS = 3

# The model kinds the advice knows (`diagnose(model_kind=...)`).
MODEL_KINDS = ("mlp", "cnn", "rnn")
# What gives each kind of model more capacity, for underfitting.
CAPACITY_ADVICE = {
    "mlp": "wider hidden layers, or one more hidden layer with a non-linearity",
    "cnn": "more filters in each convolution, one more convolution block, or a wider dense "
    "layer before the output",
    "rnn": "a larger hidden size, or a second recurrent layer",
    None: "wider or more layers, or convolutions for images",
}

# The skills whose lesson helps with each finding, most useful first. The order of the codes is
# the order of importance in which `diagnose` returns its hints.
CODE_SKILLS: dict[str, tuple[str, ...]] = {
    "divergence": ("training",),
    "lr_too_high": ("training",),
    "lr_too_low": ("training",),
    "underfitting": ("mlp", "cnn", "training"),
    "overfitting": ("generalisation", "training"),
    "slow_convergence": ("training",),
    "confused_classes": ("training",),
}
CODES = tuple(CODE_SKILLS)

PROBLEM = "problem"
SUGGESTION = "suggestion"


@dataclass(frozen=True)
class Hint:
    code: str  # one of CODES
    title: str
    message: str  # the evidence in words, and what to try
    evidence: dict  # the numbers quoted in the message; JSON-serialisable
    skills: tuple[str, ...]  # CODE_SKILLS[code]
    severity: str  # PROBLEM or SUGGESTION

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "title": self.title,
            "message": self.message,
            "evidence": self.evidence,
            "skills": list(self.skills),
            "severity": self.severity,
        }


def _hint(
    code: str,
    title: str,
    message: str,
    evidence: dict,
    severity: str,
    skills: tuple[str, ...] | None = None,
) -> Hint:
    return Hint(code, title, message, evidence, skills or CODE_SKILLS[code], severity)


# Reading the input: anything malformed becomes None (or is skipped) rather than raising.


def _number(value: Any) -> float | None:
    """A float, NaN and infinities included; None for anything that is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:  # an int too large for a float
            return None
    if isinstance(value, str):  # "NaN" or "Infinity" from a JSON that spelt them so
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _finite(value: Any) -> float | None:
    number = _number(value)
    return number if number is not None and math.isfinite(number) else None


def _integer(value: Any) -> int | None:
    number = _finite(value)
    return int(number) if number is not None else None


def _positive(value: Any) -> float | None:
    number = _finite(value)
    return number if number is not None and number > 0 else None


def _is_finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


@dataclass(frozen=True)
class _Point:
    epoch: int | None
    step: int | None
    loss: float | None  # may be NaN or infinite
    train: float | None
    val: float | None
    val_loss: float | None
    lr: float | None
    epoch_end: bool


@dataclass(frozen=True)
class _Epoch:
    epoch: int
    loss: float  # the epoch-end loss, or the mean of a partial epoch's points
    step: int | None
    lr: float | None
    complete: bool  # it has its epoch-end point
    train: float | None
    val: float | None
    val_loss: float | None


@dataclass(frozen=True)
class _Trend:
    """How much the loss fell lately: over the last epoch, or within a single epoch."""

    before: float
    after: float
    decrease: float  # relative; negative when the loss rose
    over: str  # in words: "the last epoch", "the second half of the epoch"


def _read_points(raw: Any) -> list[_Point]:
    if raw is None or isinstance(raw, str | bytes | Mapping):
        return []
    try:
        items = list(raw)
    except TypeError:
        return []
    points = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        epoch, step = _integer(item.get("epoch")), _integer(item.get("step"))
        epochs, steps = _integer(item.get("epochs")), _integer(item.get("steps"))
        val = _finite(item.get("val_accuracy"))
        # steps = steps per epoch * epochs, so an epoch ends on a multiple of steps / epochs.
        last_step = (
            epoch is not None
            and step is not None
            and epochs
            and steps
            and steps % epochs == 0
            and step == epoch * (steps // epochs)
        )
        marked = item.get("epoch_end")
        point = _Point(
            epoch=epoch,
            step=step,
            loss=_number(item.get("loss")),
            train=_finite(item.get("train_accuracy")),
            val=val,
            val_loss=_finite(item.get("val_loss")),
            lr=_positive(item.get("lr")),
            epoch_end=marked if isinstance(marked, bool) else val is not None or bool(last_step),
        )
        points.append(point)
    return points


def _epoch_table(points: list[_Point]) -> list[_Epoch]:
    grouped: dict[int, list[_Point]] = {}
    for point in points:
        if point.epoch is not None:
            grouped.setdefault(point.epoch, []).append(point)
    table = []
    for epoch in sorted(grouped):
        group = grouped[epoch]
        ends = [p for p in group if p.epoch_end]
        inside = [p.loss for p in group if not p.epoch_end and _is_finite(p.loss)]
        last = ends[-1] if ends else group[-1]
        if ends and _is_finite(last.loss):
            loss = last.loss
        elif inside:
            loss = mean(inside)
        else:
            continue
        table.append(
            _Epoch(epoch, loss, last.step, last.lr, bool(ends), last.train, last.val, last.val_loss)
        )
    return table


def _class_names(metrics: Mapping, count: int) -> list[str]:
    names = metrics.get("class_names")
    if not isinstance(names, list | tuple):
        per_class = metrics.get("per_class_accuracy")
        names = list(per_class) if isinstance(per_class, Mapping) else []
    names = [str(name) for name in names]
    return names + [f"class {i}" for i in range(len(names), count)]


def _confusion_matrix(metrics: Mapping) -> list[list[int]]:
    """The matrix's rows with each cell a non-negative int (0 for a malformed one)."""
    raw = metrics.get("confusion_matrix")
    if not isinstance(raw, list | tuple):
        return []
    rows = []
    for row in raw:
        cells = row if isinstance(row, list | tuple) else []
        rows.append([max(0, _integer(cell) or 0) for cell in cells])
    return rows


@dataclass(frozen=True)
class _Run:
    points: list[_Point]
    epochs: list[_Epoch]
    status: str | None
    outcome_steps: int | None
    epochs_completed: int | None
    test_accuracy: float | None
    matrix: list[list[int]]
    class_names: list[str]
    parameter_count: int | None
    target: float | None
    chance: float | None
    model_kind: str | None = None

    @classmethod
    def read(cls, points, outcome, metrics, target, chance, model_kind=None) -> "_Run":
        outcome = outcome if isinstance(outcome, Mapping) else {}
        metrics = metrics if isinstance(metrics, Mapping) else {}
        parsed = _read_points(points)
        matrix = _confusion_matrix(metrics)
        names = _class_names(metrics, len(matrix))
        chance = _finite(chance)
        if chance is None and len(names) >= 2:
            chance = 1 / len(names)
        status = outcome.get("status")
        return cls(
            points=parsed,
            epochs=_epoch_table(parsed),
            status=status if isinstance(status, str) else None,
            outcome_steps=_integer(outcome.get("steps")),
            epochs_completed=_integer(outcome.get("epochs_completed")),
            test_accuracy=_finite(metrics.get("accuracy")),
            matrix=matrix,
            class_names=names,
            parameter_count=_integer(metrics.get("parameter_count")),
            target=_finite(target),
            chance=chance,
            model_kind=model_kind if model_kind in MODEL_KINDS else None,
        )

    @property
    def complete_epochs(self) -> list[_Epoch]:
        return [e for e in self.epochs if e.complete]

    @property
    def finite_points(self) -> list[_Point]:
        return [p for p in self.points if _is_finite(p.loss)]

    @property
    def train_accuracy(self) -> float | None:
        """At the last epoch end, else the last one any point has."""
        for epoch in reversed(self.complete_epochs):
            if epoch.train is not None:
                return epoch.train
        return next((p.train for p in reversed(self.points) if p.train is not None), None)

    @property
    def val_accuracy(self) -> float | None:
        return next((e.val for e in reversed(self.epochs) if e.val is not None), None)

    @property
    def reached(self) -> float | None:
        """The accuracy the run reached: on the test split (what the target grades), else the
        last validation accuracy."""
        return self.test_accuracy if self.test_accuracy is not None else self.val_accuracy

    @property
    def lr(self) -> float | None:
        """The learning rate at the end of the run."""
        return next((p.lr for p in reversed(self.points) if p.lr is not None), None)

    def shortfall(self, accuracy: float) -> str | None:
        """Why `accuracy` is short of the goal, in words; None when it is not."""
        if self.target is not None and accuracy >= self.target:
            return None
        if self.chance is not None and accuracy < self.chance + CHANCE_MARGIN:
            return f"close to chance ({_pct(self.chance)})"
        if self.target is not None:
            return f"below the goal of {_pct(self.target)}"
        if accuracy < LOW_ACCURACY:
            return f"below {_pct(LOW_ACCURACY)}"
        return None

    def trend(self) -> _Trend | None:
        if len(self.epochs) >= 2:
            before, after = self.epochs[-2].loss, self.epochs[-1].loss
            over = "the last epoch" if self.epochs[-1].complete else "the last, unfinished epoch"
        else:
            losses = [p.loss for p in self.finite_points if not p.epoch_end]
            if len(losses) < MIN_TREND_POINTS:
                return None
            half = len(losses) // 2
            before, after = mean(losses[:half]), mean(losses[-half:])
            over = "the second half of the epoch"
        return _Trend(_loss(before), _loss(after), _ratio(-_change(before, after)), over)

    def slope(self) -> float | None:
        """How fast the loss still falls per epoch, relative to its level: the least-squares
        slope of the last SLOPE_EPOCHS epoch losses over their mean, positive while it falls;
        None with fewer epochs."""
        losses = [e.loss for e in self.epochs[-SLOPE_EPOCHS:]]
        if len(losses) < SLOPE_EPOCHS:
            return None
        xs = range(len(losses))
        x_mean, y_mean = mean(xs), mean(losses)
        fitted = sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, losses, strict=True)) / sum(
            (x - x_mean) ** 2 for x in xs
        )
        return _ratio(-fitted / max(abs(y_mean), LOSS_FLOOR))

    def still_falling(self, trend: _Trend) -> bool:
        slope = self.slope()
        return trend.decrease > STILL_FALLING or (slope is not None and slope > LEVELLED_OFF)


# Numbers: evidence holds them rounded, and messages print the rounded values, so the two agree.


def _loss(value: float) -> float:
    """A loss or a learning rate: 3 significant digits."""
    return float(f"{value:.3g}")


def _ratio(value: float) -> float:
    """An accuracy, a gap or a relative change: 4 decimals."""
    return round(value, 4)


def _pct(value: float) -> str:
    return f"{value * 100:.3g}%"


def _change(before: float, after: float) -> float:
    """The relative change from `before` to `after` (positive: a rise)."""
    return (after - before) / max(abs(before), LOSS_FLOOR)


def _fall(trend: _Trend) -> str:
    return f"down {_pct(trend.decrease)}" if trend.decrease > 0 else "not falling"


def _at_lr(lr: float | None) -> str:
    return f" at a learning rate of {lr:g}" if lr is not None else ""


# The rules.


def _divergence(run: _Run) -> Hint | None:
    broken = [i for i, p in enumerate(run.points) if p.loss is not None and not _is_finite(p.loss)]
    bad = broken[0] if broken else None
    if bad is None and run.status != "diverged":
        return None
    before = run.points if bad is None else run.points[:bad]
    last_lr = next((p.lr for p in reversed(before) if p.lr is not None), None)
    if bad is not None:
        point = run.points[bad]
        step, epoch, lr = point.step, point.epoch, point.lr or last_lr
    else:
        last = run.points[-1] if run.points else None
        step = run.outcome_steps if run.outcome_steps is not None else last and last.step
        epoch = (
            run.epochs_completed + 1 if run.epochs_completed is not None else last and last.epoch
        )
        lr = last_lr
    last_loss = next((p.loss for p in reversed(before) if _is_finite(p.loss)), None)
    evidence = {
        "step": step,
        "epoch": epoch,
        "lr": _loss(lr) if lr is not None else None,
        "last_finite_loss": _loss(last_loss) if last_loss is not None else None,
    }
    where = "".join(
        [
            f" at step {step}" if step is not None else "",
            f" (epoch {epoch})" if epoch is not None else "",
            _at_lr(evidence["lr"]),
        ]
    )
    last_words = (
        f" The last finite loss was {evidence['last_finite_loss']:g}."
        if last_loss is not None
        else ""
    )
    message = (
        f"The loss became NaN or infinite{where}, so training stopped.{last_words} Try a "
        "learning rate ten times smaller, or add normalisation layers."
    )
    return _hint("divergence", "Training diverged", message, evidence, PROBLEM)


def _rising_epochs(run: _Run) -> tuple[dict, str] | None:
    epochs = run.complete_epochs
    # rises[k]: epoch k + 1's loss is LR_HIGH_EPOCH_RISE or more above epoch k's.
    rises = [_change(a.loss, b.loss) >= LR_HIGH_EPOCH_RISE for a, b in itertools.pairwise(epochs)]
    i = 0
    while i < len(rises):
        j = i  # the rising run from epochs[i] ends at epochs[j]
        while j < len(rises) and rises[j]:
            j += 1
        if j - i >= LR_HIGH_RISING_EPOCHS:
            first, last = epochs[i], epochs[j]
            evidence = {
                "pattern": "rising",
                "from_epoch": first.epoch,
                "to_epoch": last.epoch,
                "from_step": first.step,
                "to_step": last.step,
                "from_loss": _loss(first.loss),
                "to_loss": _loss(last.loss),
                "lr": _loss(last.lr) if last.lr else None,
            }
            words = (
                f"The training loss rose for {j - i} epochs in a row, from "
                f"{evidence['from_loss']:g} at the end of epoch {first.epoch} to "
                f"{evidence['to_loss']:g} at the end of epoch {last.epoch}{_at_lr(evidence['lr'])}."
            )
            return evidence, words
        i = j + 1
    return None


def _ended_higher(run: _Run) -> tuple[dict, str] | None:
    points = run.finite_points
    if len(points) < 3:
        return None
    first, last = points[0], points[-1]
    if _change(first.loss, last.loss) < LR_HIGH_END_RISE:
        return None
    evidence = {
        "pattern": "ended_higher",
        "from_step": first.step,
        "to_step": last.step,
        "from_loss": _loss(first.loss),
        "to_loss": _loss(last.loss),
        "lr": _loss(last.lr) if last.lr else None,
    }
    words = (
        f"The training loss ended higher than it started: {evidence['to_loss']:g} at step "
        f"{last.step} against {evidence['from_loss']:g} at step {first.step}"
        f"{_at_lr(evidence['lr'])}."
    )
    return evidence, words


def _oscillating(run: _Run) -> tuple[dict, str] | None:
    losses = [p.loss for p in run.finite_points]
    changes = [abs(_change(a, b)) for a, b in itertools.pairwise(losses)]
    if len(changes) < LR_HIGH_MIN_SWINGS or median(changes) <= LR_HIGH_SWING:
        return None
    lr = run.lr
    evidence = {
        "pattern": "oscillating",
        "median_change": _ratio(median(changes)),
        "lowest_loss": _loss(min(losses)),
        "highest_loss": _loss(max(losses)),
        "lr": _loss(lr) if lr else None,
    }
    words = (
        f"The training loss jumped around: consecutive measurements differed by a median of "
        f"{_pct(evidence['median_change'])}, between {evidence['lowest_loss']:g} and "
        f"{evidence['highest_loss']:g}{_at_lr(evidence['lr'])}."
    )
    return evidence, words


def _lr_too_high(run: _Run) -> Hint | None:
    found = _rising_epochs(run) or _ended_higher(run) or _oscillating(run)
    if found is None:
        return None
    evidence, words = found
    message = f"{words} Try a learning rate about ten times smaller."
    return _hint("lr_too_high", "The learning rate looks too high", message, evidence, PROBLEM)


def _total_decrease(run: _Run) -> tuple[float, float, float] | None:
    """(first loss, last epoch loss, relative decrease between them)."""
    points, epochs = run.finite_points, run.complete_epochs
    if not points or not epochs:
        return None
    first, last = points[0].loss, epochs[-1].loss
    return first, last, -_change(first, last)


def _lr_too_low(run: _Run) -> Hint | None:
    epochs, total = run.complete_epochs, _total_decrease(run)
    accuracy = run.train_accuracy
    if len(epochs) < LR_LOW_MIN_EPOCHS or total is None or accuracy is None:
        return None
    first, last, decrease = total
    shortfall = run.shortfall(accuracy)
    if decrease >= LR_LOW_DECREASE or shortfall is None:
        return None
    lr = max((p.lr for p in run.points if p.lr is not None), default=None)
    evidence = {
        "epochs": len(epochs),
        "first_loss": _loss(first),
        "last_loss": _loss(last),
        "decrease": _ratio(decrease),
        "train_accuracy": _ratio(accuracy),
        "lr": _loss(lr) if lr is not None else None,
    }
    first_loss, last_loss = evidence["first_loss"], evidence["last_loss"]
    down = evidence["decrease"]
    if decrease > 0:
        moved = f"only fell from {first_loss:g} to {last_loss:g} (down {_pct(down)})"
    else:
        moved = f"did not fall ({first_loss:g}, then {last_loss:g})"
    highest = f" with a learning rate of at most {evidence['lr']:g}" if lr is not None else ""
    message = (
        f"Over {len(epochs)} epochs the training loss {moved}{highest}, and the training "
        f"accuracy stayed at {_pct(evidence['train_accuracy'])}, {shortfall}. Try a learning "
        "rate ten times larger."
    )
    return _hint("lr_too_low", "The learning rate looks too low", message, evidence, PROBLEM)


def _underfitting(run: _Run) -> Hint | None:
    accuracy, trend, total = run.train_accuracy, run.trend(), _total_decrease(run)
    if accuracy is None or trend is None or total is None:
        return None
    shortfall = run.shortfall(accuracy)
    # Levelled off after learning something; a loss that never moved is not a capacity problem.
    if shortfall is None or run.still_falling(trend) or total[2] < LR_LOW_DECREASE:
        return None
    val = run.val_accuracy
    chance = run.chance
    evidence = {
        "train_accuracy": _ratio(accuracy),
        "val_accuracy": _ratio(val) if val is not None else None,
        "recent_decrease": trend.decrease,
        "target": run.target,
        "chance": _ratio(chance) if chance is not None else None,
        "parameter_count": run.parameter_count,
        "slope": run.slope(),
        "model_kind": run.model_kind,
    }
    count = run.parameter_count
    size = f" with {count:,} parameters" if count is not None else ""
    message = (
        f"The training accuracy ended at {_pct(evidence['train_accuracy'])}, {shortfall}, and "
        f"the training loss has levelled off ({_fall(trend)} over {trend.over}): the "
        f"model{size} cannot fit even its training data. Give it more "
        f"capacity: {CAPACITY_ADVICE[run.model_kind]}."
    )
    skills = (run.model_kind, "training") if run.model_kind else None
    return _hint("underfitting", "The model is underfitting", message, evidence, PROBLEM, skills)


def _rising_val_loss(run: _Run) -> tuple[dict, str] | None:
    """The validation loss OVERFIT_VAL_LOSS_RISE or more above its lowest at the last epoch end,
    while the training loss fell since that lowest."""
    ends = [e for e in run.complete_epochs if e.val_loss is not None]
    if len(ends) < 2:
        return None
    last, best = ends[-1], min(ends, key=lambda e: e.val_loss)  # the earliest of equals
    rise = _ratio(_change(best.val_loss, last.val_loss))
    if rise < OVERFIT_VAL_LOSS_RISE or not last.loss < best.loss:
        return None
    evidence = {
        "best_val_loss": _loss(best.val_loss),
        "best_val_loss_epoch": best.epoch,
        "val_loss": _loss(last.val_loss),
        "val_loss_rise": rise,
        "train_loss_then": _loss(best.loss),
        "train_loss": _loss(last.loss),
    }
    words = (
        f"the validation loss was lowest ({evidence['best_val_loss']:g}) at the end of epoch "
        f"{best.epoch} and rose {_pct(rise)} to {evidence['val_loss']:g} by epoch {last.epoch}, "
        f"while the training loss fell from {evidence['train_loss_then']:g} to "
        f"{evidence['train_loss']:g}"
    )
    return evidence, words


def _overfitting(run: _Run) -> Hint | None:
    ends = [e for e in run.complete_epochs if e.train is not None and e.val is not None]
    losses = _rising_val_loss(run)
    if not ends and losses is None:
        return None
    gap = drop = 0.0
    dropped = False
    if ends:
        last = ends[-1]
        best = max(ends, key=lambda e: e.val)  # the earliest of equals
        gap, drop = _ratio(last.train - last.val), _ratio(best.val - last.val)
        dropped = drop >= OVERFIT_VAL_DROP and last.train > best.train
    if gap < OVERFIT_GAP and not dropped and losses is None:
        return None
    evidence, sentences = {}, []
    if ends:
        evidence = {
            "epoch": last.epoch,
            "train_accuracy": _ratio(last.train),
            "val_accuracy": _ratio(last.val),
            "gap": gap,
            "best_val_accuracy": _ratio(best.val),
            "best_val_epoch": best.epoch,
            "val_drop": drop,
        }
        train, val = _pct(evidence["train_accuracy"]), _pct(evidence["val_accuracy"])
        best_val = _pct(evidence["best_val_accuracy"])
    if gap >= OVERFIT_GAP:
        words = (
            f"At the end of epoch {last.epoch} the training accuracy was {train} but the "
            f"validation accuracy only {val}, a gap of {gap * 100:.3g} percentage points"
        )
        if best is not last:
            words += f"; validation accuracy was best at epoch {best.epoch} ({best_val})"
        sentences.append(words)
    elif dropped:
        sentences.append(
            f"The validation accuracy peaked at {best_val} in epoch {best.epoch} and fell "
            f"to {val} by epoch {last.epoch}, while the training accuracy rose to {train}"
        )
    if losses is not None:
        loss_evidence, words = losses
        evidence.update(loss_evidence)
        sentences.append(words[0].upper() + words[1:])
    message = (
        f"{'. '.join(sentences)}. The model is memorising its training data: try dropout, "
        "weight decay or data augmentation, a smaller model, or fewer epochs."
    )
    reached = run.reached
    met = run.target is not None and reached is not None and reached >= run.target
    return _hint(
        "overfitting", "The model is overfitting", message, evidence, SUGGESTION if met else PROBLEM
    )


def _slow_convergence(run: _Run) -> Hint | None:
    trend = run.trend()
    if trend is None or not run.still_falling(trend):
        return None
    reached = run.reached
    shortfall = run.shortfall(reached) if reached is not None else None
    if reached is not None and shortfall is None:
        return None  # it reached the goal: nothing to gain
    train = run.train_accuracy
    if train is not None and run.shortfall(train) is None:
        return None  # it already fits its training data: more epochs will not generalise it
    lr = run.lr
    evidence = {
        "status": run.status,
        "epochs_completed": len(run.complete_epochs),
        "recent_decrease": trend.decrease,
        "from_loss": trend.before,
        "to_loss": trend.after,
        "slope": run.slope(),
        "accuracy": _ratio(reached) if reached is not None else None,
        "target": run.target,
        "lr": _loss(lr) if lr is not None else None,
    }
    accuracy = (
        f"the accuracy reached {_pct(evidence['accuracy'])}, {shortfall}"
        if reached is not None
        else "the accuracy was not measured"
    )
    was = f" (it was {evidence['lr']:g})" if lr is not None else ""
    larger = f"a somewhat larger learning rate{was}"
    if run.status == "timed_out":
        stopped = "The run reached its time limit"
        advice = f"Try {larger}, or a smaller model that trains faster."
    else:
        stopped = "Training ended"
        advice = f"Train for more epochs, or try {larger}."
    message = (
        f"{stopped} while the training loss was still falling: down "
        f"{_pct(trend.decrease)} over {trend.over}, from {trend.before:g} to {trend.after:g}, "
        f"and {accuracy}. {advice}"
    )
    return _hint(
        "slow_convergence", "Training stopped while still improving", message, evidence, SUGGESTION
    )


def _confused_classes(run: _Run) -> Hint | None:
    accuracy, chance = run.test_accuracy, run.chance
    if accuracy is not None and chance is not None and accuracy < chance + CHANCE_MARGIN:
        return None  # nothing learned: every class is confused with every other
    pairs = []
    for true, row in enumerate(run.matrix):
        total = sum(row)
        for predicted, count in enumerate(row):
            fraction = _ratio(count / total) if total else 0.0
            confused = count >= CONFUSION_MIN_COUNT and fraction >= CONFUSION_FRACTION
            if predicted != true and confused:
                pairs.append((-fraction, -count, true, predicted, total))
    if not pairs:
        return None
    pairs.sort()
    names = run.class_names
    evidence = {
        "pairs": [
            {
                "true": names[true],
                "predicted": names[predicted],
                "count": -count,
                "total": total,
                "fraction": -fraction,
            }
            for fraction, count, true, predicted, total in pairs[:CONFUSION_MAX_PAIRS]
        ]
    }
    each = "; ".join(
        f'{p["count"]} of the {p["total"]} "{p["true"]}" test examples ({_pct(p["fraction"])}) '
        f'were predicted as "{p["predicted"]}"'
        for p in evidence["pairs"]
    )
    message = (
        f"{each}. More (or augmented) examples of these classes, or a model that can see what "
        "tells them apart, would help."
    )
    return _hint(
        "confused_classes", "Some classes are often confused", message, evidence, SUGGESTION
    )


def diagnose(
    points: Any,
    *,
    outcome: Mapping | None = None,
    metrics: Mapping | None = None,
    target: float | None = None,
    chance: float | None = None,
    model_kind: str | None = None,
) -> list[Hint]:
    """The hints for a finished run, most important first (the order of CODES); [] when
    nothing is wrong or nothing can be said. `chance` defaults to 1 / the number of classes in
    `metrics`; `model_kind` (one of MODEL_KINDS, else unknown) picks the advice for capacity.
    Never raises on malformed input."""
    run = _Run.read(points, outcome, metrics, target, chance, model_kind)
    divergence = _divergence(run)
    if divergence is not None:
        return [divergence]
    judged = run.status != "cancelled"  # a cancelled run's convergence is not judged
    high = _lr_too_high(run) if judged else None
    low = _lr_too_low(run) if judged and high is None else None
    under = _underfitting(run) if judged and high is None and low is None else None
    over = _overfitting(run) if under is None else None
    # More epochs help neither a learning rate problem, nor a model that cannot fit, nor one
    # that already fits its training data too well.
    slow = _slow_convergence(run) if judged and not (high or low or under or over) else None
    hints = [high, low, under, over, slow, _confused_classes(run)]
    return [hint for hint in hints if hint is not None]
