"""Grades: the scheme that turns a run's metrics into a score with reasons (`grade_compute`), the
run's diagnosis that goes with it (`run_diagnosis`), and the one place grades are written: a
finished run's automatic grade (`grade_write_automatic`) and a teacher's override
(`grade_override`). Each write tells the apps above (`signals.grade_given`).

The score rises linearly from 0 at the exercise's `min_metric` to `max_score` at `target_metric`.
Over the parameter budget, it loses `param_penalty` of itself per 100% over (at most all of it);
a late submission under the "penalty" policy loses the assignment's `late_penalty` of it.
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.courses.models import LatePolicy, Metric, ScoresShown
from apps.jobs.models import Grade, GradeRevision, GradeSource, Job, JobEvent
from apps.jobs.signals import grade_given
from runtime.diagnosis import Hint, diagnose

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


_CONVOLUTIONS = frozenset({"conv1d", "conv2d"})
_RECURRENT = frozenset({"rnn", "lstm", "gru"})


def model_kind(*, submission, exercise) -> str | None:
    """What the run trained, for the diagnosis's advice: from the spec's layers ("cnn" with a
    convolution, "rnn" with a recurrent layer, else "mlp"); for code, from the skills the
    exercise practises; None when neither tells."""
    layers = (submission.spec or {}).get("layers") if isinstance(submission.spec, dict) else None
    if isinstance(layers, list):
        types = {layer.get("type") for layer in layers if isinstance(layer, dict)}
        if types & _CONVOLUTIONS:
            return "cnn"
        return "rnn" if types & _RECURRENT else "mlp"
    slugs = set(exercise.skills.values_list("slug", flat=True))
    return next((kind for kind in ("cnn", "rnn", "mlp") if kind in slugs), None)


def run_diagnosis(*, job: Job, metrics: dict | None = None) -> list[Hint]:
    """The hints for the job's finished run (runtime.diagnosis), from its last attempt's progress
    events, its outcome and its metrics (the grade's when not given; none of an assignment that
    keeps its grade until the due date). Writes nothing: learning stores it once
    (`apps.learning.services.run_diagnose`)."""
    points = list(
        JobEvent.objects.filter(job=job, type="progress", attempt=job.attempt)
        .order_by("seq")
        .values_list("payload", flat=True)
    )
    if metrics is None:
        grade = getattr(job.submission, "grade", None)
        metrics = grade.metrics if grade is not None else None
    assignment = job.submission.assignment
    if metrics and "public" in metrics and assignment.scores_shown != ScoresShown.GRADE_LIVE:
        # The grade is kept until the due date, but the learner reads the diagnosis now: it
        # quotes no test figure (the validation figures say what is needed).
        metrics = {}
    exercise = assignment.exercise
    outcome = dict(job.outcome or {})
    if job.failure_kind == "diverged":
        outcome["status"] = "diverged"
    return diagnose(
        points,
        outcome=outcome or None,
        metrics=metrics,
        target=exercise.target_metric,
        model_kind=model_kind(submission=job.submission, exercise=exercise),
    )


def grade_write_automatic(*, job: Job, metrics: dict) -> Grade:
    """A finished run's grade (call with the job locked, its outcome set, before its final
    state): the score from the exercise's scheme, the feedback with the run's diagnosis, and
    its first revision."""
    submission = job.submission
    result = grade_compute(
        exercise=submission.assignment.exercise,
        assignment=submission.assignment,
        metrics=metrics,
        is_late=submission.is_late,
    )
    feedback = result.feedback
    hints = run_diagnosis(job=job, metrics=metrics)
    if hints:
        feedback += "\n\n" + "\n".join(f"{hint.title}: {hint.message}" for hint in hints)
    grade = Grade.objects.create(
        tenant_id=job.tenant_id,
        submission=submission,
        score=result.score,
        max_score=result.max_score,
        automatic_score=result.score,
        metrics=metrics,
        feedback=feedback,
        source=GradeSource.AUTOMATIC,
    )
    GradeRevision.objects.create(
        tenant_id=job.tenant_id, grade=grade, score=grade.score, source=GradeSource.AUTOMATIC
    )
    grade_given.send(
        sender=Grade, grade=grade, automatic=True, job=job, metrics=metrics, hints=hints
    )
    return grade


def grade_override(*, grade: Grade, by, score, reason: str) -> Grade:
    """A teacher's grade replaces the current one; the automatic score and every revision stay."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Say why the grade is overridden."]})
    if score < 0 or score > grade.max_score:
        raise ValidationError({"score": [f"The score must be between 0 and {grade.max_score}."]})
    with transaction.atomic():
        grade = Grade.objects.select_for_update().get(id=grade.id)
        before = {"score": grade.score, "source": grade.source}
        grade.score = score
        grade.source = GradeSource.TEACHER
        grade.override_reason = reason
        grade.overridden_by = by
        grade.overridden_at = timezone.now()
        grade.full_clean()
        grade.save()
        GradeRevision.objects.create(
            tenant_id=grade.tenant_id,
            grade=grade,
            score=score,
            source=GradeSource.TEACHER,
            reason=reason,
            author=by,
        )
        after = {"score": grade.score, "source": grade.source, "reason": reason}
        audit_record(
            actor=by,
            action="grade.override",
            target=grade,
            before=before,
            after=after,
            tenant=grade.tenant,
        )
        grade_given.send(
            sender=Grade, grade=grade, automatic=False, job=None, metrics=None, hints=None
        )
    return grade
