"""Regrading an assignment from its stored models, without retraining: after a teacher changes
an exercise's thresholds, every submission that kept its model is graded again on its ONNX file
(run by onnxruntime on the hidden test split, as the runner graded it) with the thresholds as
they are now.

A grade whose automatic score changes gets a new revision (source automatic, the teacher as its
author, the reason saying why) and is updated: its current score too, unless a teacher overrode
it, whose score stays current (only its automatic score changes; the revision says so). Each
grade is written in its own transaction, audit-logged, and `signals.grade_regraded` tells the
apps above (learning puts a notice on the learner's dashboard when the current score changed).
Running it again changes nothing: a grade already at its new score is counted unchanged.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from celery import current_app
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext
from django_scopes import scope

from apps.audit.services import audit_record
from apps.courses.access import course_teaches
from apps.jobs.artifacts import hidden_parts
from apps.jobs.grading import grade_compute
from apps.jobs.models import (
    ACTIVE_REGRADE_STATES,
    Grade,
    GradeRevision,
    GradeSource,
    Regrade,
    RegradeState,
    Submission,
)
from apps.jobs.signals import grade_regraded
from apps.trained_models.services import ArtifactCorrupt, artifact_open
from runtime.artifacts.predict import predict_classes
from runtime.datasets import DatasetMissing, load_dataset
from runtime.evaluate import metrics_from_predictions

log = logging.getLogger(__name__)

REGRADE_TASK = "jobs.regrade_assignment"
# A regrade queued or running this long without finishing is taken for lost (its worker died):
# a new one may start.
REGRADE_STALE_AFTER = timedelta(minutes=30)
# The hidden-test figures the regrade measures again; the rest of a grade's metrics stay.
_MEASURED = ("accuracy", "per_class_accuracy", "confusion_matrix", "class_names", "test_samples")


def assignment_regrade_start(*, assignment, by, access) -> Regrade:
    """Queue a regrade of every submission of `assignment` (a teacher of its course, or a tenant
    admin: PermissionDenied otherwise, nothing written). While one is queued or running, that
    one is returned instead of a second. The task is published once this commits."""
    if not course_teaches(access=access, user=by, course=assignment.course):
        raise PermissionDenied(gettext("Only a teacher of the course can regrade it."))
    tenant_id = assignment.tenant_id
    with scope(tenant=tenant_id):
        Regrade.objects.filter(
            assignment=assignment,
            state__in=ACTIVE_REGRADE_STATES,
            updated_at__lt=timezone.now() - REGRADE_STALE_AFTER,
        ).update(
            state=RegradeState.FAILED,
            message=gettext("It did not finish (its worker was lost); start it again."),
            finished_at=timezone.now(),
        )
        try:
            with transaction.atomic():
                regrade = Regrade.objects.create(
                    tenant_id=tenant_id, assignment=assignment, requested_by=by
                )
                audit_record(
                    actor=by,
                    action="assignment.regrade",
                    target=assignment,
                    before=None,
                    after={"regrade": str(regrade.id)},
                    tenant=assignment.tenant,
                )
        except IntegrityError:  # one is already queued or running
            return Regrade.objects.get(assignment=assignment, state__in=ACTIVE_REGRADE_STATES)
    transaction.on_commit(
        lambda: current_app.send_task(REGRADE_TASK, args=[str(tenant_id), str(regrade.id)])
    )
    return regrade


@dataclass(frozen=True)
class _Outcome:
    changed: bool


def _test_split(dataset: str, secret: bytes, cache: dict):
    """The graded (private) test split of `dataset` drawn with the assignment's secret."""
    if dataset not in cache:
        data = load_dataset(dataset, data_dir=settings.DATA_DIR, secret=secret)
        cache[dataset] = (data.info, hidden_parts(data)[0])
    return cache[dataset]


def _measured(model, data) -> dict:
    info, test = data
    predictions = predict_classes(artifact_open(model.onnx), test.x)
    return metrics_from_predictions(test.y, predictions, class_names=info.class_names)


def _feedback(old: str, new: str) -> str:
    """The new scheme's lines, followed by the run's diagnosis that the old feedback quoted
    (grade_write_automatic puts it after a blank line)."""
    _, _, hints = old.partition("\n\n")
    return new + ("\n\n" + hints if hints else "")


def _reason(*, before: Decimal, after: Decimal, exercise, overridden: bool, current) -> str:
    reason = gettext(
        "Regraded after the thresholds changed (0 points at %(low).1f%%, full marks at "
        "%(high).1f%%): the automatic score went from %(before)s to %(after)s."
    ) % {
        "low": exercise.min_metric * 100,
        "high": exercise.target_metric * 100,
        "before": before,
        "after": after,
    }
    if overridden:
        reason += " " + gettext("The teacher's override (%(score)s) stays the current score.") % {
            "score": current
        }
    return reason


def _grade_regrade(*, grade_id, metrics: dict, by, regrade: Regrade) -> _Outcome:
    """Grade one submission again with `metrics` measured on its model: in its own transaction,
    with the grade locked; unchanged when its automatic score is already the new one."""
    with transaction.atomic():
        grade = (
            Grade.objects.select_for_update()
            .select_related("submission__assignment__exercise")
            .get(id=grade_id)
        )
        submission = grade.submission
        exercise = submission.assignment.exercise
        merged = {**grade.metrics, **{key: metrics[key] for key in _MEASURED if key in metrics}}
        result = grade_compute(
            exercise=exercise,
            assignment=submission.assignment,
            metrics=merged,
            is_late=submission.is_late,
        )
        if result.score == grade.automatic_score:
            return _Outcome(changed=False)
        overridden = grade.source == GradeSource.TEACHER
        before = {
            "score": str(grade.score),
            "automatic_score": str(grade.automatic_score),
            "source": grade.source,
        }
        old_automatic, old_score = grade.automatic_score, grade.score
        grade.automatic_score = result.score
        grade.metrics = merged
        grade.feedback = _feedback(grade.feedback, result.feedback)
        if not overridden:
            grade.score = result.score
        grade.full_clean()
        grade.save()
        reason = _reason(
            before=old_automatic,
            after=result.score,
            exercise=exercise,
            overridden=overridden,
            current=grade.score,
        )
        revision = GradeRevision.objects.create(
            tenant_id=grade.tenant_id,
            grade=grade,
            score=result.score,
            source=GradeSource.AUTOMATIC,
            reason=reason,
            author=by,
        )
        audit_record(
            actor=by,
            action="grade.regrade",
            target=grade,
            before=before,
            after={
                "score": str(grade.score),
                "automatic_score": str(grade.automatic_score),
                "source": grade.source,
                "regrade": str(regrade.id),
            },
            tenant=grade.tenant,
        )
        grade_regraded.send(
            sender=Grade,
            grade=grade,
            revision=revision,
            score_before=old_score,
            score_after=grade.score,
        )
    return _Outcome(changed=True)


def assignment_regrade_run(*, regrade_id) -> Regrade:
    """Do the regrade `regrade_id` (call inside its tenant's scope; the task does): every
    submission of its assignment with a kept model and a grade, graded again from the model's
    file. A finished regrade is left as it is (a redelivered task does nothing)."""
    regrade = (
        Regrade.objects.select_related("assignment__exercise", "requested_by")
        .filter(id=regrade_id)
        .first()
    )
    if regrade is None or regrade.state not in ACTIVE_REGRADE_STATES:
        return regrade
    exercise = regrade.assignment.exercise
    Regrade.objects.filter(id=regrade.id).update(
        state=RegradeState.RUNNING,
        min_metric=exercise.min_metric,
        target_metric=exercise.target_metric,
        updated_at=timezone.now(),
    )
    submissions = (
        Submission.objects.filter(assignment=regrade.assignment)
        .select_related("grade", "trained_model__onnx")
        .order_by("created_at", "id")
    )
    try:
        counts = _regrade_each(regrade, submissions)
    except DatasetMissing as exc:
        Regrade.objects.filter(id=regrade.id).update(
            state=RegradeState.FAILED, message=str(exc), finished_at=timezone.now()
        )
        return Regrade.objects.get(id=regrade.id)
    Regrade.objects.filter(id=regrade.id).update(
        **counts, state=RegradeState.DONE, finished_at=timezone.now()
    )
    return Regrade.objects.get(id=regrade.id)


def _regrade_each(regrade: Regrade, submissions) -> dict:
    counts = {"regraded": 0, "unchanged": 0, "skipped": 0, "failed": 0}
    datasets: dict = {}
    for submission in submissions:
        grade = getattr(submission, "grade", None)
        model = getattr(submission, "trained_model", None)
        if grade is None or model is None:
            counts["skipped"] += 1
            continue
        try:
            secret = bytes(submission.assignment.split_secret)
            metrics = _measured(model, _test_split(model.dataset, secret, datasets))
        except ArtifactCorrupt:
            log.warning("regrade %s: the model of %s is unreadable", regrade.id, submission.id)
            counts["failed"] += 1
            continue
        outcome = _grade_regrade(
            grade_id=grade.id, metrics=metrics, by=regrade.requested_by, regrade=regrade
        )
        counts["regraded" if outcome.changed else "unchanged"] += 1
        Regrade.objects.filter(id=regrade.id).update(**counts, updated_at=timezone.now())
    return counts
