"""Run diagnostics on synthetic runs in the trainer's progress format: exactly which hints each
kind of run gets, with the numbers of its evidence, and none for a healthy, cancelled, empty or
malformed one."""

import json
import math

import pytest

from runtime.diagnosis import CODE_SKILLS, CODES, Hint, diagnose

STEPS = 100  # per epoch
LR = 0.01


def point(epoch, step, loss, *, epochs, train=None, val=None, lr=LR) -> dict:
    return {
        "epoch": epoch,
        "epochs": epochs,
        "step": step,
        "steps": STEPS * epochs,
        "loss": loss,
        "train_accuracy": train,
        "val_accuracy": val,
        "lr": lr,
        "samples_per_second": 640.0,
        "elapsed": step / 10,
        "eta": (STEPS * epochs - step) / 10,
    }


def epoch_points(epoch, losses, *, epochs, train, val, lr=LR) -> list[dict]:
    """One epoch: a point per loss, evenly over its steps, the last its epoch-end point."""
    n = len(losses)
    points = [
        point(
            epoch,
            (epoch - 1) * STEPS + round(k * STEPS / n),
            loss,
            epochs=epochs,
            train=train,
            lr=lr,
        )
        for k, loss in enumerate(losses[:-1], start=1)
    ]
    points.append(
        point(epoch, epoch * STEPS, losses[-1], epochs=epochs, train=train, val=val, lr=lr)
    )
    return points


def curve(losses, train, val, *, start=None, between=3, epochs=None, lr=LR) -> list[dict]:
    """Epoch e ends with losses[e-1], train[e-1], val[e-1]; before its end `between` points go
    in a straight line from the previous epoch's loss (`start` for the first) towards it."""
    points, previous = [], losses[0] if start is None else start
    for epoch, (loss, t, v) in enumerate(zip(losses, train, val, strict=True), start=1):
        inside = [previous + (loss - previous) * k / between for k in range(between)]
        points += epoch_points(
            epoch, [*inside, loss], epochs=epochs or len(losses), train=t, val=v, lr=lr
        )
        previous = loss
    return points


def matrix_metrics(names, matrix, *, with_names=True, parameter_count=5_000) -> dict:
    right = sum(row[i] for i, row in enumerate(matrix))
    metrics = {
        "accuracy": right / sum(map(sum, matrix)),
        "per_class_accuracy": {
            n: row[i] / sum(row) for i, (n, row) in enumerate(zip(names, matrix, strict=True))
        },
        "confusion_matrix": matrix,
        "parameter_count": parameter_count,
    }
    if with_names:
        metrics["class_names"] = list(names)
    return metrics


def scores(accuracy, *, parameter_count=None) -> dict:
    """Test metrics without a confusion matrix."""
    return {"accuracy": accuracy, "per_class_accuracy": {}, "parameter_count": parameter_count}


def codes(hints: list[Hint]) -> list[str]:
    return [hint.code for hint in hints]


def completed(epochs: int) -> dict:
    return {
        "status": "completed",
        "epochs_completed": epochs,
        "steps": epochs * STEPS,
        "seconds": 12.0,
        "diagnosis": None,
    }


# The runs. Each builds the keyword arguments of diagnose beside its points.


def healthy() -> dict:
    points = curve(
        [0.9, 0.35, 0.18, 0.12, 0.1, 0.095],
        [0.75, 0.9, 0.95, 0.97, 0.98, 0.98],
        [0.8, 0.9, 0.94, 0.96, 0.97, 0.975],
        start=2.3,
    )
    return {
        "points": points,
        "outcome": completed(6),
        "target": 0.95,
        "metrics": scores(0.97, parameter_count=900),
    }


def lr_rising() -> dict:
    points = curve(
        [0.8, 0.6, 0.75, 0.95, 1.2],
        [0.7, 0.78, 0.72, 0.65, 0.55],
        [0.7, 0.77, 0.7, 0.62, 0.5],
        start=2.3,
        lr=0.5,
    )
    return {"points": points, "outcome": completed(5), "target": 0.9}


def lr_oscillating() -> dict:
    points = [
        *epoch_points(1, [1.0, 2.2, 0.9, 2.4, 1.5], epochs=2, train=0.45, val=0.44, lr=1.0),
        *epoch_points(2, [0.9, 2.3, 1.0, 2.2, 0.95], epochs=2, train=0.5, val=0.5, lr=1.0),
    ]
    return {"points": points, "outcome": completed(2), "target": 0.9}


def lr_ended_higher() -> dict:
    points = [
        *epoch_points(1, [1.2, 1.0, 1.1], epochs=2, train=0.6, val=0.6, lr=0.3),
        *epoch_points(2, [1.2, 1.3, 1.4], epochs=2, train=0.55, val=0.55, lr=0.3),
    ]
    return {"points": points, "outcome": completed(2), "target": 0.9}


def lr_too_low() -> dict:
    points = curve(
        [2.29, 2.28, 2.27, 2.26],
        [0.11, 0.12, 0.12, 0.13],
        [0.1, 0.12, 0.12, 0.13],
        start=2.3,
        lr=1e-5,
    )
    return {"points": points, "outcome": completed(4), "target": 0.9, "chance": 0.1}


def overfitting_gap() -> dict:
    points = curve(
        [0.8, 0.4, 0.2, 0.1, 0.05, 0.03],
        [0.7, 0.82, 0.88, 0.92, 0.94, 0.95],
        [0.66, 0.7, 0.71, 0.69, 0.67, 0.65],
        start=2.3,
    )
    return {"points": points, "outcome": completed(6), "target": 0.9, "metrics": scores(0.64)}


def overfitting_drop() -> dict:
    points = curve(
        [1.2, 0.9, 0.75, 0.6, 0.5],
        [0.6, 0.7, 0.75, 0.8, 0.82],
        [0.62, 0.72, 0.74, 0.7, 0.68],
        start=2.3,
    )
    return {"points": points, "outcome": completed(5)}


def underfitting() -> dict:
    points = curve(
        [1.6, 1.3, 1.2, 1.19, 1.185],
        [0.45, 0.52, 0.55, 0.56, 0.57],
        [0.45, 0.5, 0.53, 0.55, 0.55],
        start=2.3,
    )
    return {
        "points": points,
        "outcome": completed(5),
        "target": 0.9,
        "chance": 0.1,
        "metrics": scores(0.55, parameter_count=1234),
    }


def slow() -> dict:
    points = curve([1.5, 1.0, 0.7, 0.5], [0.6, 0.7, 0.78, 0.83], [0.6, 0.7, 0.77, 0.82], start=2.3)
    return {"points": points, "outcome": completed(4), "target": 0.9, "metrics": scores(0.81)}


def slow_timed_out() -> dict:
    points = curve([1.5, 1.0, 0.7], [0.6, 0.7, 0.78], [0.6, 0.7, 0.77], start=2.3, epochs=10)
    points += [point(4, 333, 0.55, epochs=10, train=0.8), point(4, 367, 0.5, epochs=10, train=0.81)]
    outcome = {
        "status": "timed_out",
        "epochs_completed": 3,
        "steps": 367,
        "seconds": 60.0,
        "diagnosis": None,
    }
    return {"points": points, "outcome": outcome, "target": 0.9}


def diverged_nan() -> dict:
    points = curve([0.9, 0.7], [0.6, 0.7], [0.6, 0.7], start=2.3, epochs=5, lr=0.5)
    points += [
        point(3, 250, 1.7, epochs=5, train=0.5, lr=0.5),
        point(3, 280, math.nan, epochs=5, train=0.3, lr=0.5),
    ]
    return {"points": points}


ANIMALS = ("cat", "dog", "bird", "fish")
ANIMAL_MATRIX = [
    [12, 8, 0, 0],  # cat: 8 of 20 as dog (40%)
    [5, 15, 0, 0],  # dog: 5 of 20 as cat (25%)
    [2, 0, 3, 0],  # bird: 2 of 5 as cat is 40%, but too few examples to mean much
    [0, 0, 4, 36],  # fish: 4 of 40 as bird is only 10%
]


def confused(*, with_names=True) -> dict:
    run = healthy()
    run.pop("target")
    run["metrics"] = matrix_metrics(ANIMALS, ANIMAL_MATRIX, with_names=with_names)
    return run


RUNS = {
    "healthy": (healthy, []),
    "lr_rising": (lr_rising, ["lr_too_high"]),
    "lr_oscillating": (lr_oscillating, ["lr_too_high"]),
    "lr_ended_higher": (lr_ended_higher, ["lr_too_high"]),
    "lr_too_low": (lr_too_low, ["lr_too_low"]),
    "overfitting_gap": (overfitting_gap, ["overfitting"]),
    "overfitting_drop": (overfitting_drop, ["overfitting"]),
    "underfitting": (underfitting, ["underfitting"]),
    "slow": (slow, ["slow_convergence"]),
    "slow_timed_out": (slow_timed_out, ["slow_convergence"]),
    "diverged_nan": (diverged_nan, ["divergence"]),
    "confused": (confused, ["confused_classes"]),
}


def only(run: dict) -> Hint:
    hints = diagnose(**run)
    assert len(hints) == 1, codes(hints)
    return hints[0]


@pytest.mark.parametrize("name", RUNS)
def test_each_run_gets_exactly_its_hints(name):
    build, expected = RUNS[name]
    assert codes(diagnose(**build())) == expected


@pytest.mark.parametrize("name", [name for name, (_, expected) in RUNS.items() if expected])
def test_every_hint_is_well_formed_and_json_serialisable(name):
    hints = diagnose(**RUNS[name][0]())
    assert hints
    for hint in hints:
        assert hint.code in CODES
        assert hint.skills
        assert hint.severity in ("problem", "suggestion")
        assert hint.title and hint.message
        json.dumps(hint.evidence, allow_nan=False)
        assert json.loads(json.dumps(hint.as_dict()))["skills"] == list(hint.skills)


def test_the_codes_and_their_skills():
    assert CODES == (
        "divergence",
        "lr_too_high",
        "lr_too_low",
        "underfitting",
        "overfitting",
        "slow_convergence",
        "confused_classes",
    )
    assert CODE_SKILLS["overfitting"] == ("generalisation", "training")
    assert CODE_SKILLS["underfitting"] == ("mlp", "cnn", "training")
    assert all(
        CODE_SKILLS[code] == ("training",)
        for code in ("divergence", "lr_too_high", "lr_too_low", "slow_convergence")
    )


def test_a_healthy_run_without_a_target_gets_nothing_either():
    run = healthy()
    run.pop("target")
    assert diagnose(**run) == []


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "NaN"])
def test_a_non_finite_loss_is_divergence_with_where_and_at_what_rate(bad):
    run = diverged_nan()
    run["points"][-1]["loss"] = bad
    hint = only(run)
    assert hint.code == "divergence" and hint.severity == "problem"
    assert hint.evidence == {"step": 280, "epoch": 3, "lr": 0.5, "last_finite_loss": 1.7}
    for text in ("step 280", "epoch 3", "learning rate of 0.5", "loss was 1.7"):
        assert text in hint.message


def test_a_diverged_outcome_is_divergence_alone_not_also_a_rising_loss():
    run = lr_rising()  # a loss rising for three epochs, then NaN (not in the points)
    run["points"] = curve(
        [0.8, 0.6, 0.75, 0.95, 1.2],
        [0.7, 0.78, 0.72, 0.65, 0.55],
        [0.7, 0.78, 0.72, 0.65, 0.55],
        start=2.3,
        lr=0.5,
        epochs=8,
    )
    run["outcome"] = {
        "status": "diverged",
        "epochs_completed": 5,
        "steps": 530,
        "seconds": 9.0,
        "diagnosis": "The loss became NaN ...",
    }
    hint = only(run)
    assert hint.code == "divergence"
    assert hint.evidence == {"step": 530, "epoch": 6, "lr": 0.5, "last_finite_loss": 1.2}
    assert "step 530 (epoch 6)" in hint.message


def test_a_loss_rising_for_epochs_is_a_learning_rate_too_high():
    hint = only(lr_rising())
    assert hint.evidence == {
        "pattern": "rising",
        "from_epoch": 2,
        "to_epoch": 5,
        "from_step": 200,
        "to_step": 500,
        "from_loss": 0.6,
        "to_loss": 1.2,
        "lr": 0.5,
    }
    assert hint.severity == "problem"
    for text in ("rose for 3 epochs in a row", "from 0.6", "to 1.2", "learning rate of 0.5"):
        assert text in hint.message


def test_a_loss_jumping_around_is_a_learning_rate_too_high():
    hint = only(lr_oscillating())
    # Consecutive changes; the median is 2.2 -> 0.9, 1.3 / 2.2.
    assert hint.evidence == {
        "pattern": "oscillating",
        "median_change": 0.5909,
        "lowest_loss": 0.9,
        "highest_loss": 2.4,
        "lr": 1.0,
    }
    for text in ("median of 59.1%", "between 0.9 and 2.4", "learning rate of 1."):
        assert text in hint.message


def test_a_loss_that_ends_above_where_it_started_is_a_learning_rate_too_high():
    hint = only(lr_ended_higher())
    assert hint.evidence == {
        "pattern": "ended_higher",
        "from_step": 33,
        "to_step": 200,
        "from_loss": 1.2,
        "to_loss": 1.4,
        "lr": 0.3,
    }
    assert "1.4 at step 200 against 1.2 at step 33 at a learning rate of 0.3" in hint.message


def test_a_loss_near_zero_jumping_about_is_noise_not_a_learning_rate_too_high():
    points = [
        *epoch_points(1, [0.001, 0.003, 0.001, 0.004, 0.002], epochs=2, train=0.999, val=0.99),
        *epoch_points(2, [0.001, 0.004, 0.001, 0.003, 0.002], epochs=2, train=0.999, val=0.99),
    ]
    assert diagnose(points, target=0.95) == []


def test_a_loss_that_barely_moves_near_chance_is_a_learning_rate_too_low():
    hint = only(lr_too_low())
    assert hint.code == "lr_too_low"
    assert hint.evidence == {
        "epochs": 4,
        "first_loss": 2.3,
        "last_loss": 2.26,
        "decrease": 0.0174,
        "train_accuracy": 0.13,
        "lr": 1e-05,
    }
    for text in (
        "Over 4 epochs",
        "from 2.3 to 2.26",
        "down 1.74%",
        "at most 1e-05",
        "13%",
        "close to chance (10%)",
    ):
        assert text in hint.message


def test_two_flat_epochs_are_too_few_to_blame_the_learning_rate_or_the_model():
    run = lr_too_low()
    run["points"] = curve([2.29, 2.28], [0.11, 0.12], [0.1, 0.12], start=2.3, lr=1e-5)
    assert diagnose(**run) == []


def test_a_large_train_validation_gap_is_overfitting_and_not_slow_convergence():
    run = overfitting_gap()  # its loss still falls 40% in the last epoch
    hint = only(run)
    assert hint.evidence == {
        "epoch": 6,
        "train_accuracy": 0.95,
        "val_accuracy": 0.65,
        "gap": 0.3,
        "best_val_accuracy": 0.71,
        "best_val_epoch": 3,
        "val_drop": 0.06,
    }
    assert hint.severity == "problem"
    for text in (
        "epoch 6",
        "95%",
        "only 65%",
        "gap of 30 percentage points",
        "best at epoch 3 (71%)",
    ):
        assert text in hint.message
    # The same gap in a run that still reached its target is a suggestion.
    run["target"], run["metrics"]["accuracy"] = 0.6, 0.64
    assert only(run).severity == "suggestion"


def test_a_validation_accuracy_falling_from_its_best_while_training_rises_is_overfitting():
    hint = only(overfitting_drop())
    assert hint.evidence["gap"] == 0.14  # below the gap threshold
    assert (hint.evidence["best_val_accuracy"], hint.evidence["best_val_epoch"]) == (0.74, 3)
    assert hint.evidence["val_drop"] == 0.06
    assert "peaked at 74% in epoch 3 and fell to 68% by epoch 5" in hint.message
    assert "training accuracy rose to 82%" in hint.message


def test_a_low_training_accuracy_on_a_levelled_loss_is_underfitting():
    hint = only(underfitting())
    assert hint.evidence == {
        "train_accuracy": 0.57,
        "val_accuracy": 0.55,
        "recent_decrease": 0.0042,
        "target": 0.9,
        "chance": 0.1,
        "parameter_count": 1234,
        "slope": 0.0063,
        "model_kind": None,
    }
    for text in (
        "ended at 57%",
        "below the goal of 90%",
        "down 0.42% over the last epoch",
        "1,234 parameters",
    ):
        assert text in hint.message


@pytest.mark.parametrize(
    ("target", "chance", "final_train", "reason"),
    [
        (None, 0.1, 0.17, "close to chance (10%)"),
        (None, None, 0.6, "below 70%"),
        (0.95, None, 0.93, "below the goal of 95%"),
    ],
)
def test_what_counts_as_a_low_training_accuracy(target, chance, final_train, reason):
    accuracy = [0.15, 0.16, final_train]
    points = curve([2.1, 2.05, 2.04], accuracy, accuracy, start=2.3)
    hint = only({"points": points, "target": target, "chance": chance})
    assert hint.code == "underfitting"
    assert reason in hint.message
    # At or above the target there is nothing to say.
    if target is not None:
        assert diagnose(points, target=final_train) == []


def test_underfitting_and_overfitting_exclude_each_other():
    points = curve([1.6, 1.3, 1.29, 1.285], [0.5, 0.55, 0.6, 0.6], [0.4, 0.42, 0.4, 0.4], start=2.3)
    hints = diagnose(points, target=0.9)  # a gap of 0.2, but the training data is not fitted
    assert codes(hints) == ["underfitting"]


def test_a_loss_still_falling_short_of_the_target_is_slow_convergence():
    hint = only(slow())
    assert hint.severity == "suggestion"
    assert hint.evidence == {
        "status": "completed",
        "epochs_completed": 4,
        "recent_decrease": 0.2857,
        "from_loss": 0.7,
        "to_loss": 0.5,
        "slope": 0.3409,
        "accuracy": 0.81,
        "target": 0.9,
        "lr": 0.01,
    }
    for text in (
        "Training ended",
        "down 28.6% over the last epoch",
        "from 0.7 to 0.5",
        "reached 81%, below the goal of 90%",
        "(it was 0.01)",
    ):
        assert text in hint.message
    # Having reached the target, more epochs are not needed.
    run = slow()
    run["metrics"]["accuracy"] = 0.92
    assert diagnose(**run) == []


def test_a_run_that_timed_out_while_the_loss_fell_is_slow_convergence():
    hint = only(slow_timed_out())
    # The partial epoch 4 (mean 0.525) against epoch 3 (0.7).
    assert hint.evidence == {
        "status": "timed_out",
        "epochs_completed": 3,
        "recent_decrease": 0.25,
        "from_loss": 0.7,
        "to_loss": 0.525,
        "slope": 0.3202,
        "accuracy": 0.77,
        "target": 0.9,
        "lr": 0.01,
    }
    assert hint.message.startswith("The run reached its time limit")
    assert "down 25% over the last, unfinished epoch" in hint.message
    assert "larger learning rate (it was 0.01), or a smaller model" in hint.message


def cnn_still_falling() -> dict:
    """The shapes CNN after five epochs: its loss falls 5-9% an epoch, under STILL_FALLING's 10%
    over the last epoch alone, but steadily."""
    points = curve(
        [2.0, 1.7, 1.5, 1.38, 1.3],
        [0.3, 0.38, 0.45, 0.5, 0.53],
        [0.3, 0.37, 0.44, 0.49, 0.52],
        start=2.3,
    )
    return {
        "points": points,
        "outcome": completed(5),
        "target": 0.9,
        "chance": 0.1,
        "metrics": scores(0.52, parameter_count=62_006),
        "model_kind": "cnn",
    }


def test_a_cnn_whose_loss_still_falls_is_told_to_train_longer_not_that_it_levelled_off():
    hint = only(cnn_still_falling())
    assert hint.code == "slow_convergence"
    assert hint.skills == ("training",)
    assert hint.evidence["slope"] == 0.0718  # (1.5 - 1.3) / 2 epochs over a mean of 1.393
    assert hint.title == "Training stopped while still improving"
    assert "Train for more epochs" in hint.message
    assert "levelled off" not in hint.message and "convolutions" not in hint.message


@pytest.mark.parametrize(
    "kind, advice, skills",
    [
        (
            "cnn",
            "more filters in each convolution, one more convolution block, or a wider "
            "dense layer before the output",
            ("cnn", "training"),
        ),
        (
            "mlp",
            "wider hidden layers, or one more hidden layer with a non-linearity",
            ("mlp", "training"),
        ),
        ("rnn", "a larger hidden size, or a second recurrent layer", ("rnn", "training")),
        (None, "wider or more layers, or convolutions for images", ("mlp", "cnn", "training")),
        (
            "transformer",
            "wider or more layers, or convolutions for images",
            ("mlp", "cnn", "training"),
        ),
    ],
)
def test_underfitting_advice_and_skills_follow_the_model_kind(kind, advice, skills):
    hint = only({**underfitting(), "model_kind": kind})
    assert hint.code == "underfitting"
    assert hint.message.endswith(f"Give it more capacity: {advice}.")
    assert hint.skills == skills
    assert hint.evidence["model_kind"] == (kind if kind != "transformer" else None)


@pytest.mark.parametrize("name", ["slow", "underfitting", "lr_rising", "lr_too_low"])
def test_a_cancelled_run_is_not_judged_on_its_convergence(name):
    run = RUNS[name][0]()
    run["outcome"] = {
        "status": "cancelled",
        "epochs_completed": 3,
        "steps": 300,
        "seconds": 5.0,
        "diagnosis": None,
    }
    assert diagnose(**run) == []


def test_a_cancelled_run_can_still_overfit():
    run = overfitting_gap()
    run["outcome"] = {"status": "cancelled", "epochs_completed": 6, "steps": 600}
    assert codes(diagnose(**run)) == ["overfitting"]


def test_a_single_epoch_is_judged_on_the_halves_of_its_points():
    points = epoch_points(1, [2.3, 1.2, 0.6, 0.35, 0.3], epochs=1, train=0.92, val=0.93)
    assert diagnose(points, target=0.9) == []
    hint = only({"points": points, "target": 0.95})
    assert hint.code == "slow_convergence"
    # Means of (2.3, 1.2) and (0.6, 0.35); the validation accuracy stands in for the test's.
    assert (hint.evidence["from_loss"], hint.evidence["to_loss"]) == (1.75, 0.475)
    assert hint.evidence["accuracy"] == 0.93
    assert "over the second half of the epoch" in hint.message


@pytest.mark.parametrize("with_names", [True, False])
def test_classes_predicted_as_another_class_are_reported(with_names):
    hint = only(confused(with_names=with_names))
    assert hint.severity == "suggestion"
    assert hint.evidence == {
        "pairs": [
            {"true": "cat", "predicted": "dog", "count": 8, "total": 20, "fraction": 0.4},
            {"true": "dog", "predicted": "cat", "count": 5, "total": 20, "fraction": 0.25},
        ]
    }
    assert '8 of the 20 "cat" test examples (40%) were predicted as "dog"' in hint.message
    assert '5 of the 20 "dog" test examples (25%) were predicted as "cat"' in hint.message


def test_at_most_three_confused_pairs_the_largest_first():
    names = ["a", "b", "c", "d", "e"]
    matrix = [
        [10, 0, 0, 0, 10],  # a as e: 50%
        [6, 14, 0, 0, 0],  # b as a: 30%
        [0, 0, 12, 8, 0],  # c as d: 40%
        [0, 5, 0, 15, 0],  # d as b: 25%
        [0, 0, 0, 0, 20],
    ]
    run = healthy()
    run.pop("target")
    run["metrics"] = matrix_metrics(names, matrix)
    hints = diagnose(**run)
    assert codes(hints) == ["confused_classes"]
    pairs = [(p["true"], p["predicted"], p["fraction"]) for p in hints[0].evidence["pairs"]]
    assert pairs == [("a", "e", 0.5), ("c", "d", 0.4), ("b", "a", 0.3)]


def test_a_model_at_chance_has_no_particular_confusions():
    run = healthy()
    run.pop("target")
    run["metrics"] = matrix_metrics(ANIMALS, [[10, 0, 0, 0]] * 4)  # everything a cat: 25%
    assert diagnose(**run) == []


def test_hints_come_most_important_first():
    run = overfitting_gap()
    run["metrics"] = matrix_metrics(ANIMALS, ANIMAL_MATRIX)
    assert codes(diagnose(**run)) == ["overfitting", "confused_classes"]
    # A broken model gets nothing but the divergence.
    run["outcome"] = {"status": "diverged", "epochs_completed": 6, "steps": 612}
    assert codes(diagnose(**run)) == ["divergence"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"points": []},
        {"points": None},
        {"points": "not points"},
        {"points": iter([])},
        {"points": [None, 3, "x", []]},
        {"points": [{}, {"epoch": "one"}, {"loss": "low"}, {"loss": True}]},
        {"points": [{"epoch": 1, "loss": None, "lr": None}] * 20},  # all-None losses
        {"points": [{"epoch": 1, "step": 10**400, "loss": 10**400}]},
        {"points": [], "outcome": "completed", "metrics": [1, 2], "target": "high"},
        {"points": [], "metrics": {"confusion_matrix": "x", "class_names": 5}},
        {"points": [], "metrics": {"confusion_matrix": [[1, "a", None], None, [-3, 2.5]]}},
        {"points": [], "metrics": {"confusion_matrix": [[0, 0], [0, 0]]}},
        {"points": [], "outcome": {"status": "timed_out"}, "target": math.nan, "chance": math.inf},
    ],
)
def test_empty_or_malformed_input_gives_no_hints_and_never_raises(kwargs):
    assert diagnose(**kwargs) == []


def with_val_losses(points: list[dict], val_losses: list[float]) -> list[dict]:
    """The points as the trainer now writes them: epoch ends marked, with the validation loss."""
    ends = iter(val_losses)
    marked = []
    for p in points:
        end = p["val_accuracy"] is not None
        marked.append({**p, "epoch_end": end, "val_loss": next(ends) if end else None})
    return marked


def overfitting_on_losses() -> dict:
    """Accuracies close together (no gap, no drop), but the validation loss turns up from epoch
    3 while the training loss keeps falling."""
    points = curve(
        [0.9, 0.6, 0.45, 0.35, 0.3],
        [0.7, 0.78, 0.82, 0.85, 0.87],
        [0.72, 0.78, 0.8, 0.8, 0.79],
        start=2.3,
    )
    points = with_val_losses(points, [0.85, 0.62, 0.55, 0.6, 0.68])
    return {"points": points, "outcome": completed(5)}


def test_a_validation_loss_rising_while_the_training_loss_falls_is_overfitting():
    hint = only(overfitting_on_losses())
    assert hint.evidence == {
        "epoch": 5,
        "train_accuracy": 0.87,
        "val_accuracy": 0.79,
        "gap": 0.08,
        "best_val_accuracy": 0.8,
        "best_val_epoch": 3,
        "val_drop": 0.01,
        "best_val_loss": 0.55,
        "best_val_loss_epoch": 3,
        "val_loss": 0.68,
        "val_loss_rise": 0.2364,
        "train_loss_then": 0.45,
        "train_loss": 0.3,
    }
    assert hint.message == (
        "The validation loss was lowest (0.55) at the end of epoch 3 and rose 23.6% to 0.68 by "
        "epoch 5, while the training loss fell from 0.45 to 0.3. The model is memorising its "
        "training data: try dropout, weight decay or data augmentation, a smaller model, or "
        "fewer epochs."
    )
    assert hint.severity == "problem"
    # Without the validation losses (points stored before they existed) nothing is said.
    run = overfitting_on_losses()
    run["points"] = [{**p, "val_loss": None} for p in run["points"]]
    assert diagnose(**run) == []


def test_a_validation_loss_rising_with_the_training_loss_is_not_overfitting():
    run = overfitting_on_losses()
    run["points"] = with_val_losses(
        curve(
            [0.9, 0.6, 0.45, 0.46, 0.47],
            [0.7, 0.78, 0.82, 0.82, 0.82],
            [0.72, 0.78, 0.8, 0.8, 0.79],
            start=2.3,
        ),
        [0.85, 0.62, 0.55, 0.6, 0.68],
    )
    assert "overfitting" not in codes(diagnose(**run))
    # A rise under the threshold (10%) is noise.
    run = overfitting_on_losses()
    run["points"] = with_val_losses(
        [{k: v for k, v in p.items() if k not in ("epoch_end", "val_loss")} for p in run["points"]],
        [0.85, 0.62, 0.55, 0.58, 0.6],
    )
    assert diagnose(**run) == []


def test_an_epoch_end_is_read_from_its_mark_when_the_epochs_do_not_divide_the_steps():
    # 3 epochs of 7 steps over "22 steps" (a stored point whose counts no rule could infer
    # from) and no validation split: only the epoch_end mark says where the epochs end.
    points = [
        {
            "epoch": e,
            "epochs": 3,
            "step": s,
            "steps": 22,
            "loss": loss,
            "epoch_end": end,
            "train_accuracy": 0.9,
            "val_accuracy": None,
            "val_loss": None,
            "lr": LR,
        }
        for e, s, loss, end in [
            (1, 3, 1.0, False),
            (1, 7, 0.8, True),
            (2, 10, 0.7, False),
            (2, 14, 0.6, True),
            (3, 18, 0.55, False),
            (3, 21, 0.5, True),
        ]
    ]
    run = {"points": points, "outcome": completed(3)}
    # The last epoch still fell 1 - 0.5 / 0.6 = 16.7% (> 10%): slow convergence, measured
    # between the epoch-end losses 0.6 and 0.5 (without the marks, the epochs' means).
    hint = only({**run, "target": 0.95, "metrics": scores(0.9)})
    assert hint.code == "slow_convergence"
    assert (hint.evidence["from_loss"], hint.evidence["to_loss"]) == (0.6, 0.5)
    assert hint.evidence["epochs_completed"] == 3
