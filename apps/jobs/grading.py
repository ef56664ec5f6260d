"""The grading scheme: from an exercise's thresholds and a run's metrics to a score with reasons.

The score rises linearly from 0 at the exercise's `min_metric` to `max_score` at `target_metric`.
Over the parameter budget, it loses `param_penalty` of itself per 100% over (at most all of it);
a late submission under the "penalty" policy loses the assignment's `late_penalty` of it.
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from apps.courses.models import LatePolicy, Metric

CENT = Decimal("0.01")


@dataclass(frozen=True)
class GradeResult:
    score: Decimal
    max_score: Decimal
    metric_value: float
    feedback: str


def metric_value(metric: str, metrics: dict) -> float:
    if metric == Metric.BALANCED_ACCURACY:
        per_class = [v for v in metrics["per_class_accuracy"].values() if v is not None]
        return sum(per_class) / len(per_class)
    return float(metrics["accuracy"])


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def grade_compute(*, exercise, assignment, metrics: dict, is_late: bool) -> GradeResult:
    value = metric_value(exercise.metric, metrics)
    # To the cent: the score is min(max_score, ...) and must print as 100.00, never as 100.
    max_score = Decimal(exercise.max_score).quantize(CENT)
    low, high = exercise.min_metric, exercise.target_metric
    fraction = min(1.0, max(0.0, (value - low) / (high - low)))
    name = Metric(exercise.metric).label.lower()
    lines = [
        f"Test {name}: {_percent(value)} (0 points at {_percent(low)}, full marks at "
        f"{_percent(high)})."
    ]
    score = float(max_score) * fraction
    params = metrics.get("parameter_count")
    if exercise.param_budget and exercise.param_penalty:
        if params is None:
            lines.append("The parameter count of a code submission is not measured; no penalty.")
        elif params > exercise.param_budget:
            over = (params - exercise.param_budget) / exercise.param_budget
            penalty = min(1.0, exercise.param_penalty * over)
            score *= 1 - penalty
            lines.append(
                f"{params:,} parameters is {over * 100:.0f}% over the budget of "
                f"{exercise.param_budget:,}: minus {penalty * 100:.1f}% of the score."
            )
    if is_late and assignment.late_policy == LatePolicy.PENALTY and assignment.late_penalty:
        score *= 1 - assignment.late_penalty
        lines.append(f"Submitted after the due date: minus {assignment.late_penalty * 100:.0f}%.")
    rounded = min(max_score, Decimal(str(score)).quantize(CENT, rounding=ROUND_HALF_UP))
    lines.append(f"Score: {rounded} / {max_score}.")
    return GradeResult(rounded, max_score, value, "\n".join(lines))
