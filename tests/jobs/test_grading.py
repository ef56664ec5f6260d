"""The grading scheme: linear between the exercise's thresholds, then the parameter and late
penalties, with the feedback a learner reads. Plain objects, no database."""

from decimal import Decimal

import pytest

from apps.courses.models import Assignment, Exercise
from apps.jobs.grading import grade_compute


def _exercise(**fields) -> Exercise:
    values = {"metric": "accuracy", "min_metric": 0.5, "target_metric": 0.9} | fields
    return Exercise(**values)


def _grade(exercise, accuracy=None, *, is_late=False, assignment=None, **metrics):
    if accuracy is not None:
        metrics["accuracy"] = accuracy
    return grade_compute(
        exercise=exercise,
        assignment=assignment or Assignment(late_policy="refuse"),
        metrics=metrics,
        is_late=is_late,
    )


@pytest.mark.parametrize(
    "accuracy, low, high, max_score, score",
    [
        (0.7, 0.5, 0.9, 100, "50.00"),
        (0.8, 0.5, 0.9, 100, "75.00"),
        (0.7, 0.5, 0.8, 100, "66.67"),  # 66.666... rounds half up to the cent
        (0.77, 0.5, 0.95, 100, "60.00"),
        (0.7, 0.5, 0.9, 10, "5.00"),
        (0.6, 0.5, 0.9, Decimal("20.00"), "5.00"),
    ],
)
def test_the_score_is_linear_between_the_thresholds(accuracy, low, high, max_score, score):
    result = _grade(_exercise(min_metric=low, target_metric=high, max_score=max_score), accuracy)
    assert str(result.score) == score
    assert result.metric_value == accuracy


def test_the_feedback_says_the_metric_the_thresholds_and_the_score():
    result = _grade(_exercise(), 0.8)
    assert result.feedback == (
        "Test accuracy: 80.0% (0 points at 50.0%, full marks at 90.0%).\nScore: 75.00 / 100.00."
    )
    assert (str(result.score), str(result.max_score)) == ("75.00", "100.00")


@pytest.mark.parametrize("accuracy", [0.0, 0.3, 0.5])
def test_at_or_below_the_minimum_the_score_is_zero(accuracy):
    result = _grade(_exercise(), accuracy)
    assert str(result.score) == "0.00"
    assert result.feedback.endswith("\nScore: 0.00 / 100.00.")


@pytest.mark.parametrize("accuracy", [0.9, 0.95, 1.0])
def test_at_or_above_the_target_the_score_is_the_maximum(accuracy):
    # max_score as a new exercise has it (the model default, not read back from the database).
    result = _grade(_exercise(), accuracy)
    assert str(result.score) == "100.00"
    assert result.feedback.endswith("\nScore: 100.00 / 100.00.")


def test_over_the_parameter_budget_the_score_loses_its_share():
    exercise = _exercise(param_budget=1000, param_penalty=0.5)
    result = _grade(exercise, 0.95, parameter_count=1500)
    assert str(result.score) == "75.00"  # 50% over at 0.5 per 100% over: minus 25%
    assert result.feedback == (
        "Test accuracy: 95.0% (0 points at 50.0%, full marks at 90.0%).\n"
        "1,500 parameters is 50% over the budget of 1,000: minus 25.0% of the score.\n"
        "Score: 75.00 / 100.00."
    )


def test_the_parameter_penalty_is_capped_at_the_whole_score():
    exercise = _exercise(param_budget=1000, param_penalty=0.5)
    result = _grade(exercise, 0.95, parameter_count=5000)
    assert str(result.score) == "0.00"
    assert result.feedback.splitlines()[1] == (
        "5,000 parameters is 400% over the budget of 1,000: minus 100.0% of the score."
    )


def test_within_the_parameter_budget_there_is_no_penalty():
    exercise = _exercise(param_budget=1000, param_penalty=0.5)
    result = _grade(exercise, 0.8, parameter_count=1000)
    assert str(result.score) == "75.00"
    assert len(result.feedback.splitlines()) == 2


def test_a_code_submission_without_a_parameter_count_is_not_penalised():
    exercise = _exercise(param_budget=1000, param_penalty=0.5)
    result = _grade(exercise, 0.8)
    assert str(result.score) == "75.00"
    assert result.feedback.splitlines()[1] == (
        "The parameter count of a code submission is not measured; no penalty."
    )


def test_a_late_submission_under_the_penalty_policy_loses_the_late_penalty():
    assignment = Assignment(late_policy="penalty", late_penalty=0.2)
    result = _grade(
        _exercise(min_metric=0.5, target_metric=0.8), 0.7, is_late=True, assignment=assignment
    )
    assert str(result.score) == "53.33"  # 66.666... x 0.8
    assert result.feedback == (
        "Test accuracy: 70.0% (0 points at 50.0%, full marks at 80.0%).\n"
        "Submitted after the due date: minus 20%.\n"
        "Score: 53.33 / 100.00."
    )


def test_both_penalties_multiply():
    exercise = _exercise(param_budget=1000, param_penalty=0.5)
    assignment = Assignment(late_policy="penalty", late_penalty=0.2)
    result = _grade(exercise, 0.95, parameter_count=1500, is_late=True, assignment=assignment)
    assert str(result.score) == "60.00"  # 100 x 0.75 x 0.8
    assert len(result.feedback.splitlines()) == 4


@pytest.mark.parametrize(
    "policy, penalty, is_late",
    [("accept", 0.0, True), ("penalty", 0.2, False), ("penalty", 0.0, True)],
)
def test_no_late_penalty_otherwise(policy, penalty, is_late):
    assignment = Assignment(late_policy=policy, late_penalty=penalty)
    result = _grade(_exercise(), 0.8, is_late=is_late, assignment=assignment)
    assert str(result.score) == "75.00"
    assert "due date" not in result.feedback


def test_balanced_accuracy_is_the_mean_of_the_measured_classes():
    exercise = _exercise(metric="balanced_accuracy")
    result = _grade(
        exercise, 0.95, per_class_accuracy={"0": 0.9, "1": 0.5, "2": None}
    )  # class 2 absent from the test split: not counted
    assert result.metric_value == pytest.approx(0.7, abs=1e-12)
    assert str(result.score) == "50.00"
    assert result.feedback == (
        "Test balanced accuracy (mean per-class accuracy): 70.0% (0 points at 50.0%, "
        "full marks at 90.0%).\nScore: 50.00 / 100.00."
    )
