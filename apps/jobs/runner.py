"""Running a claimed job: train the submission, evaluate it on the hidden test split, grade it.

Called by the Celery task (`apps.jobs.tasks.run_job`) once `job_claim` gave it the lease. A watch
thread renews the lease and reads the cancel flag twice a second, so the trainer's per-step
`should_cancel` is a flag read, not a query.
"""

import logging
import threading
import time
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_scopes import scope

from apps.datasets.source import text_tokenizer
from apps.jobs.artifacts import (
    RunArtifact,
    artifact_of_code_run,
    artifact_of_spec_model,
    hidden_parts,
    metrics_of_artifact,
    model_figures,
    part_masks,
    public_metrics,
)
from apps.jobs.lease import (
    Claim,
    KeptModel,
    LeaseLost,
    cancel_requested,
    claim_event_append,
    claim_finish,
    lease_renew,
)
from apps.jobs.models import Job, SubmissionKind
from apps.jobs.states import JobState
from apps.quotas.services import MILLI
from runtime.datasets import PRIVATE_PART, PUBLIC_PART, DatasetMissing, load_dataset
from runtime.errors import SpecInvalid
from runtime.evaluate import evaluate, metrics_from_predictions
from runtime.progress import ProgressPoint
from runtime.sandbox import SandboxLimits, run_code_submission
from runtime.spec import build_model, parse_spec
from runtime.text import tokenizer_card
from runtime.trainer import ComputeBudget, choose_device, predict, seeded, train

log = logging.getLogger(__name__)

# How often the watch thread reads the cancel flag (the trainer sees a cancel within this).
WATCH_INTERVAL_S = 0.5
# A code run's wall clock: the training budget plus time to start, predict and report.
CODE_WALL_MARGIN_S = 30
# Beyond its training budget, a run has this long to evaluate and report before it is given up.
RUN_OVERRUN_S = 600


class LeaseWatch(threading.Thread):
    """Renews the lease every third of its length and watches the cancel flag. Past `deadline`
    seconds it stops renewing: a run stuck inside one step then loses its lease, and the reaper
    hands the job on (and fails it after too many tries) instead of leaving it running forever."""

    def __init__(self, claim: Claim, *, deadline: float):
        super().__init__(name=f"lease-{claim.job_id}", daemon=True)
        self.claim = claim
        self.deadline = time.monotonic() + deadline
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self._stop_event = threading.Event()

    def should_stop(self) -> bool:
        return self.cancelled.is_set() or self.lost.is_set()

    def run(self) -> None:
        # A thread starts without the task's tenant scope (a context variable): open it again,
        # or every query of the watch raises ScopeError and the lease is never renewed.
        with scope(tenant=self.claim.tenant_id):
            self._watch()

    def _watch(self) -> None:
        renew_every = settings.JOB_LEASE_SECONDS / 3
        renewed = time.monotonic()
        try:
            while not self._stop_event.wait(WATCH_INTERVAL_S):
                try:
                    if cancel_requested(self.claim):
                        self.cancelled.set()
                    if time.monotonic() > self.deadline:
                        log.error(
                            "job %s: past its deadline; lease left to expire", self.claim.job_id
                        )
                        self.lost.set()
                        return
                    if time.monotonic() - renewed >= renew_every:
                        if not lease_renew(self.claim):
                            log.warning("job %s: lease lost, stopping", self.claim.job_id)
                            self.lost.set()
                            return
                        renewed = time.monotonic()
                except Exception:
                    log.warning("job %s: lease watch failed", self.claim.job_id, exc_info=True)
        finally:
            connection.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


class FirstStep:
    """The trainer's per-step cancel check, noting when it was first asked: the moment the first
    training step begins. The job's outcome keeps it (`first_step_at`), so claim to first step
    (the run's setup) and submit to first step can be read off a job."""

    def __init__(self, should_cancel):
        self.should_cancel = should_cancel
        self.at: datetime | None = None

    def __call__(self) -> bool:
        if self.at is None:
            self.at = timezone.now()
        return self.should_cancel()

    def stamped(self, outcome) -> dict:
        at = self.at.isoformat() if self.at else None
        return {**outcome.as_dict(), "first_step_at": at}


class ProgressReporter:
    """Each progress point (the trainer's, or one the sandbox forwarded from a code run)
    becomes a "progress" JobEvent, checked by the one definition of a point
    (runtime.progress): a non-finite number (a diverging loss) is stored as null, since
    JSON has no NaN and PostgreSQL refuses the event. The trainer throttles the points."""

    def __init__(self, claim: Claim):
        self.claim = claim

    def __call__(self, point: dict) -> None:
        payload = ProgressPoint.from_untrusted(point).as_payload()
        claim_event_append(self.claim, type="progress", payload=payload)


def _training_for(submission, exercise):
    """A spec brings its own training settings; a code submission uses the exercise's starter
    spec's (batch size, epochs, seed) with its own optimizer from configure_optimizer()."""
    if submission.kind == SubmissionKind.SPEC:
        return parse_spec(submission.spec).training
    if exercise.starter_spec:
        return parse_spec(exercise.starter_spec).training
    from runtime.templates import TEMPLATES

    return parse_spec(TEMPLATES["xor"].spec).training


def _budget(job, exercise) -> ComputeBudget:
    """The exercise's budget, within what the job reserved from its tenant's quota."""
    seconds = job.budget_seconds or exercise.max_seconds
    return ComputeBudget(max_seconds=seconds, max_epochs=exercise.max_epochs)


def job_run(claim: Claim) -> str:
    """Run the claimed job to its end; returns the final state (or "lost" when the lease went
    to another run, which then owns the job)."""
    job = Job.objects.select_related("submission__assignment__exercise").get(id=claim.job_id)
    exercise = job.submission.assignment.exercise
    watch = LeaseWatch(claim, deadline=exercise.max_seconds + RUN_OVERRUN_S)
    watch.start()
    try:
        return _run(job, claim, watch)
    except LeaseLost:
        log.warning("job %s: lease lost; this run stops without writing", claim.job_id)
        return "lost"
    except Exception:
        log.exception("job %s: the run failed inside the platform", claim.job_id)
        return _fail(
            claim,
            kind="internal",
            message="The platform failed while running this job; it was not your model's "
            "fault. Please submit again, and tell your teacher if it happens again.",
        )
    finally:
        watch.stop()


def _run(job: Job, claim: Claim, watch: LeaseWatch) -> str:
    submission = job.submission
    exercise = submission.assignment.exercise
    device = choose_device()
    try:
        training = _training_for(submission, exercise)
        # Code trains in the sandbox on the CPU; a spec trains here, on the job's device.
        data_device = device if submission.kind == SubmissionKind.SPEC else "cpu"
        data = load_dataset(
            exercise.dataset,
            data_dir=settings.DATA_DIR,
            device=data_device,
            secret=bytes(submission.assignment.split_secret),
        )
    except (SpecInvalid, DatasetMissing) as exc:
        return _fail(claim, kind="setup", message=str(exc))
    progress = ProgressReporter(claim)
    measured: dict = {}  # a code run's, from the sandbox (below)
    if submission.kind == SubmissionKind.SPEC:
        info = data.info
        model = seeded(training.seed, lambda: build_model(submission.spec, info))
        first_step = FirstStep(watch.should_stop)
        outcome = train(
            model,
            training=training,
            train=data.train,
            val=data.val,
            info=info,
            device=device,
            budget=_budget(job, exercise),
            progress=progress,
            should_cancel=first_step,
        )
        if watch.lost.is_set():
            raise LeaseLost
        summary = first_step.stamped(outcome)
        if outcome.status == "cancelled":
            return _end(claim, JobState.CANCELLED, {"message": "Cancelled."}, summary)
        if outcome.status == "diverged":
            return _fail(claim, kind="diverged", message=outcome.diagnosis, outcome=summary)
        graded, public = hidden_parts(data)
        metrics = evaluate(model, graded, info=info, training=training, device=device)
        artifact = artifact_of_spec_model(model, info=data.info, training=training)

        def public_predictions():
            return predict(model, public.x, info=info, training=training, device=device)

    else:
        limits = SandboxLimits(wall_seconds=_budget(job, exercise).max_seconds + CODE_WALL_MARGIN_S)
        result = run_code_submission(
            code=submission.code,
            data=data,
            training=training,
            budget=_budget(job, exercise),
            limits=limits,
            allow_limits_only=settings.SANDBOX_ALLOW_LIMITS_ONLY,
            progress=progress,
            should_cancel=watch.should_stop,
        )
        if watch.lost.is_set():
            raise LeaseLost
        # What the sandbox's parent measured and counted, never what the learner's code said:
        # the charge (apps/quotas) and the progress it did not pass on.
        measured = _sandbox_fields(result)
        if result.status == "cancelled":
            return _end(
                claim, JobState.CANCELLED, {"message": "Cancelled."}, result.outcome, **measured
            )
        if result.status == "timed_out":
            return _end(
                claim,
                JobState.TIMED_OUT,
                {"message": result.message, "kind": result.kind, "output": result.output},
                result.outcome,
                failure_kind=result.kind or "wall_time",
                message=result.message,
                **measured,
            )
        if not result.succeeded:
            return _fail(
                claim,
                kind=result.kind or "failed",
                message=result.message,
                output=result.output,
                outcome=result.outcome,
                **measured,
            )
        graded, public = hidden_parts(data)
        in_part = part_masks(data)
        metrics = metrics_from_predictions(
            graded.y, result.predictions[in_part[PRIVATE_PART]], class_names=data.info.class_names
        )
        metrics["device"] = "cpu"

        def public_predictions():
            return result.predictions[in_part[PUBLIC_PART]]

        summary = result.outcome
        artifact = artifact_of_code_run(result, info=data.info)
    metrics = metrics_of_artifact(artifact, test=graded, info=data.info, metrics=metrics)
    if public is not None:
        metrics["public"] = public_metrics(artifact, public, data.info, public_predictions)
    summary_note = _budget_note(summary)
    claim_finish(
        claim,
        state=JobState.SUCCEEDED,
        final_payload={"message": summary_note, "outcome": summary},
        metrics=metrics if artifact.onnx else _not_kept(metrics, artifact),
        keep=_kept(artifact, job=job, data=data, training=training, metrics=metrics),
        outcome=summary,
        message=summary_note,
        **measured,
    )
    return JobState.SUCCEEDED


def _not_kept(metrics: dict, artifact: RunArtifact) -> dict:
    return {**metrics, "model_kept": False, "model_not_kept": artifact.not_kept}


def _kept(artifact: RunArtifact, *, job, data, training, metrics: dict) -> KeptModel | None:
    if artifact.onnx is None:
        return None
    card = artifact.card(
        info=data.info,
        training=training,
        metrics=model_figures(metrics, assignment=job.submission.assignment),
        job=job,
    )
    tokenizer = text_tokenizer(data.info.name, bytes(job.submission.assignment.split_secret))
    if tokenizer is not None:  # a text dataset's: the model takes the ids it gives
        card["tokenizer"] = tokenizer_card(tokenizer)
    return KeptModel(
        onnx=artifact.onnx,
        weights=artifact.weights,
        card=card,
        parameter_count=artifact.summary.parameter_count,
    )


def _sandbox_fields(result) -> dict:
    """The job's fields from what the sandbox's parent measured: its device time, to the
    millisecond, and the progress points it dropped."""
    seconds = Decimal(str(max(result.seconds, 0.0))).quantize(MILLI, rounding=ROUND_HALF_UP)
    return {"device_seconds": seconds, "progress_dropped": result.progress_dropped}


def _budget_note(summary: dict | None) -> str:
    if summary and summary.get("status") == "timed_out":
        return (
            f"Training stopped at the exercise's time budget after "
            f"{summary['epochs_completed']} epoch(s); the model was graded as it was then."
        )
    return "Trained and graded."


def _end(claim, state, payload, outcome, **fields) -> str:
    claim_finish(claim, state=state, final_payload=payload, outcome=outcome, **fields)
    return state


def _fail(claim, *, kind: str, message: str, output: str = "", outcome=None, **fields) -> str:
    if hasattr(outcome, "as_dict"):
        outcome = outcome.as_dict()
    payload = {"message": message, "kind": kind}
    if output:
        payload["output"] = output
    return _end(
        claim, JobState.FAILED, payload, outcome, failure_kind=kind, message=message, **fields
    )
