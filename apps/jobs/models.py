"""Submissions, the jobs that train and grade them, the jobs' event logs, and grades.

A Job carries a lease (owner, fencing token, expiry): only the worker holding the current token
may write its events or finish it, so a redelivered or duplicated task cannot run it twice.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django_scopes import ScopedManager

from apps.core.models import TimeStampedModel
from apps.courses.models import Assignment
from apps.jobs.states import JobState
from apps.tenants.models import Tenant


class SubmissionKind(models.TextChoices):
    SPEC = "spec", "Layer-stack spec"
    CODE = "code", "PyTorch code"


class Submission(TimeStampedModel):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    assignment = models.ForeignKey(Assignment, on_delete=models.PROTECT, related_name="submissions")
    learner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="submissions"
    )
    kind = models.CharField(max_length=8, choices=SubmissionKind.choices)
    spec = models.JSONField(null=True, blank=True)
    code = models.TextField(blank=True)
    attempt = models.PositiveIntegerField()
    is_late = models.BooleanField(default=False)
    # For the course's teachers, refusing nothing: what the integrity checks found in the code
    # (runtime.sandbox.checks.literal_tables), each {"path": "code:<line>", "message": ...}.
    integrity_flags = models.JSONField(default=list, blank=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["assignment", "learner", "attempt"], name="submission_attempt_unique"
            ),
            models.CheckConstraint(
                condition=(Q(kind="spec") & Q(spec__isnull=False)) | (Q(kind="code") & ~Q(code="")),
                name="submission_has_its_content",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.learner} attempt {self.attempt} on {self.assignment}"


class Job(TimeStampedModel):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    submission = models.OneToOneField(Submission, on_delete=models.CASCADE, related_name="job")
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED)
    queue = models.CharField(max_length=32, default="gpu")
    # The lease: who runs it now, the fencing token of that run, and until when it holds
    # without a renewal. `attempt` counts claims (deliveries that started the job).
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_token = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempt = models.PositiveIntegerField(default=0)
    workers_lost = models.PositiveIntegerField(default=0)
    # The last JobEvent.seq written (events are numbered 1, 2, 3... without gaps).
    last_seq = models.PositiveIntegerField(default=0)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # GPU-seconds reserved for it at admission (its time budget); 0: admitted without a quota.
    budget_seconds = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When the current run claimed it: settlement charges a spec run the time from here to the end.
    run_started_at = models.DateTimeField(null=True, blank=True)
    # A code run's device time as its worker measured it (the sandbox, from its start to its
    # kill), whatever the learner's code reported: what settlement charges it. Null: a spec run.
    device_seconds = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    # Progress points of a code run that the sandbox's parent did not pass on (over the rate
    # or the cap of runtime/sandbox/supervise.py).
    progress_dropped = models.PositiveIntegerField(default=0)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    failure_kind = models.CharField(max_length=32, blank=True)
    message = models.TextField(blank=True)
    outcome = models.JSONField(null=True, blank=True)  # the trainer's summary
    device = models.CharField(max_length=32, blank=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["state", "lease_expires_at"], name="job_state_lease_idx"),
            models.Index(fields=["state", "dispatched_at"], name="job_state_dispatch_idx"),
            # Fair share reads each waiting tenant's device time over a recent window.
            models.Index(fields=["tenant", "finished_at"], name="job_tenant_finished_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=JobState.values), name="job_state_valid"),
        ]

    def __str__(self) -> str:
        return f"job {self.id} ({self.state})"


class JobEvent(models.Model):
    """One entry of a job's append-only log. `attempt` is the run that wrote it: after a lost
    worker, the lost run's events stay, and a `attempt_lost` event marks that run as abandoned."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    attempt = models.PositiveIntegerField()
    type = models.CharField(max_length=32)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        ordering = ["job", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["job", "seq"], name="jobevent_seq_unique"),
            models.CheckConstraint(condition=Q(seq__gte=1), name="jobevent_seq_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id} #{self.seq} {self.type}"

    def as_message(self) -> dict:
        """The event as the API and the websocket send it."""
        return {
            "seq": self.seq,
            "attempt": self.attempt,
            "type": self.type,
            "payload": self.payload,
            "at": self.created_at.isoformat(),
        }


class GradeSource(models.TextChoices):
    AUTOMATIC = "automatic", "Automatic"
    TEACHER = "teacher", "Teacher"


class Grade(TimeStampedModel):
    """A submission's current grade; every version of it is a GradeRevision."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    submission = models.OneToOneField(Submission, on_delete=models.CASCADE, related_name="grade")
    score = models.DecimalField(max_digits=6, decimal_places=2)
    max_score = models.DecimalField(max_digits=6, decimal_places=2)
    metrics = models.JSONField(default=dict)
    feedback = models.TextField(blank=True)
    source = models.CharField(max_length=16, choices=GradeSource.choices)
    # The automatic score, kept when a teacher overrides it.
    automatic_score = models.DecimalField(max_digits=6, decimal_places=2)
    override_reason = models.TextField(blank=True)
    overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    overridden_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(score__gte=0) & Q(score__lte=models.F("max_score")),
                name="grade_score_in_range",
            ),
            models.CheckConstraint(
                condition=Q(source__in=GradeSource.values), name="grade_source_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.score}/{self.max_score} for {self.submission}"


class GradeRevision(models.Model):
    """Append-only history of a grade: the automatic grade, then each teacher override."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    grade = models.ForeignKey(Grade, on_delete=models.CASCADE, related_name="revisions")
    score = models.DecimalField(max_digits=6, decimal_places=2)
    source = models.CharField(max_length=16, choices=GradeSource.choices)
    reason = models.TextField(blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        ordering = ["grade", "created_at", "id"]

    def __str__(self) -> str:
        return f"{self.score} ({self.source}) on {self.grade_id}"


class RegradeState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


ACTIVE_REGRADE_STATES = (RegradeState.QUEUED, RegradeState.RUNNING)


class Regrade(TimeStampedModel):
    """A teacher's regrade of every submission of an assignment from its stored models (no
    retraining), with what it did: grades whose score changed, unchanged, skipped (no kept
    model) and failed (a model file that could not be read). One at a time per assignment."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="regrades")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    state = models.CharField(
        max_length=16, choices=RegradeState.choices, default=RegradeState.QUEUED
    )
    # The thresholds it graded with, as they were when it ran.
    min_metric = models.FloatField(null=True, blank=True)
    target_metric = models.FloatField(null=True, blank=True)
    regraded = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["assignment"],
                condition=Q(state__in=["queued", "running"]),
                name="regrade_one_active_per_assignment",
            ),
            models.CheckConstraint(
                condition=Q(state__in=RegradeState.values), name="regrade_state_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"Regrade of {self.assignment_id} ({self.state})"
