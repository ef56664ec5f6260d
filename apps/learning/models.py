"""Personal learning records: xAPI statements, BKT observations, parameters and mastery, run
diagnoses, and the tutor's settings and exchanges.

Statements are written by the services of the apps where things happen (a lesson viewed, a
submission made, a run finished, a grade given, a hint shown, the tutor asked), inside the same
transaction, so a record is never lost nor written for something that did not happen.
"""

from uuid import uuid4

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django_scopes import ScopedManager

from apps.tenants.models import Tenant


class Verb(models.TextChoices):
    """What a learner did. The IRIs (xAPI verb ids) are in apps.learning.xapi.VERBS."""

    EXPERIENCED = "experienced", "viewed a lesson"
    ATTEMPTED = "attempted", "submitted"
    COMPLETED = "completed", "finished a run"
    SCORED = "scored", "was graded"
    RECEIVED_HINT = "received-hint", "was shown a hint"
    ASKED = "asked", "asked the tutor"


class ObjectType(models.TextChoices):
    LESSON = "lesson", "Lesson"
    ASSIGNMENT = "assignment", "Assignment"
    RUN = "run", "Run"
    TUTOR = "tutor", "Tutor"


class Statement(models.Model):
    """One xAPI statement: actor (the user), verb, object, result, context (course, assignment,
    tenant), timestamp. Written once; forwarding to an external LRS only stamps `forwarded_at`."""

    # A sequence, so "in the order written" is exact (the LRS forwarder pages by it); the xAPI
    # statement id is the UUID.
    id = models.BigAutoField(primary_key=True)
    uuid = models.UUIDField(unique=True, default=uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    verb = models.CharField(max_length=32, choices=Verb.choices)
    object_type = models.CharField(max_length=16, choices=ObjectType.choices)
    object_id = models.CharField(max_length=64)
    object_name = models.CharField(max_length=300)
    # xAPI result: {"score": {"scaled", "raw", "min", "max"}, "success", "completion",
    # "duration" (ISO 8601), "response", "extensions"}; absent keys are left out.
    result = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    course = models.ForeignKey(
        "courses.Course", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    assignment = models.ForeignKey(
        "courses.Assignment", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    timestamp = models.DateTimeField()  # when it happened
    stored = models.DateTimeField(auto_now_add=True)
    forwarded_at = models.DateTimeField(null=True, blank=True)
    forward_attempts = models.PositiveIntegerField(default=0)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        ordering = ["timestamp", "id"]
        indexes = [
            models.Index(fields=["tenant", "actor", "timestamp"], name="statement_actor_time"),
            models.Index(fields=["tenant", "course", "timestamp"], name="statement_course_time"),
            models.Index(
                fields=["id"], name="statement_unforwarded", condition=Q(forwarded_at__isnull=True)
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(verb__in=Verb.values), name="statement_verb_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_id} {self.verb} {self.object_type}:{self.object_id}"


class Observation(models.Model):
    """One opportunity to show a skill: a learner's graded submission on an exercise that
    practises it (correct: the grade reached the pass mark). BKT is fitted on these, in order."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    skill = models.ForeignKey("courses.Skill", on_delete=models.CASCADE, related_name="+")
    submission = models.ForeignKey("jobs.Submission", on_delete=models.CASCADE, related_name="+")
    correct = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["tenant", "skill", "user", "id"], name="observation_seq")]
        constraints = [
            models.UniqueConstraint(fields=["submission", "skill"], name="observation_once"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {'right' if self.correct else 'wrong'} on {self.skill_id}"


def _probability():
    return [MinValueValidator(0.0), MaxValueValidator(1.0)]


class SkillParams(models.Model):
    """A skill's BKT parameters, fitted per tenant by EM (apps.learning.tasks). Until the first
    fit, the defaults below (usual starting values in the BKT literature) are used."""

    DEFAULTS = {"prior": 0.2, "learn": 0.15, "slip": 0.1, "guess": 0.2}

    skill = models.OneToOneField(
        "courses.Skill", on_delete=models.CASCADE, primary_key=True, related_name="bkt"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    prior = models.FloatField(validators=_probability())
    learn = models.FloatField(validators=_probability())
    slip = models.FloatField(validators=_probability())
    guess = models.FloatField(validators=_probability())
    observations = models.PositiveIntegerField(default=0)  # what the fit saw
    learners = models.PositiveIntegerField(default=0)
    log_likelihood = models.FloatField(null=True, blank=True)
    fitted_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        verbose_name = _("skill parameters")
        verbose_name_plural = _("skill parameters")

    def __str__(self) -> str:
        return f"BKT of {self.skill_id}"


class Mastery(models.Model):
    """P(the learner knows the skill) after their observations so far."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    skill = models.ForeignKey("courses.Skill", on_delete=models.CASCADE, related_name="+")
    probability = models.FloatField(validators=_probability())
    observations = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        verbose_name_plural = "mastery"
        constraints = [
            models.UniqueConstraint(fields=["user", "skill"], name="mastery_once"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} knows {self.skill_id}: {self.probability:.2f}"


class RunDiagnosis(models.Model):
    """The hints runtime.diagnosis found in a finished run (possibly none)."""

    job = models.OneToOneField(
        "jobs.Job", on_delete=models.CASCADE, primary_key=True, related_name="diagnosis"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    # [{"code", "title", "message", "evidence", "skills", "severity"}]
    hints = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(tenant="tenant")

    def __str__(self) -> str:
        return f"Diagnosis of {self.job_id}"


class TutorSettings(models.Model):
    """A tenant's tutor: an OpenAI-compatible endpoint (its key stored encrypted), or, with no
    endpoint, the built-in grounded tutor; and the tenant's tutor token quota per month."""

    tenant = models.OneToOneField(
        Tenant, on_delete=models.CASCADE, primary_key=True, related_name="tutor_settings"
    )
    endpoint_url = models.URLField(blank=True, max_length=500)
    model = models.CharField(max_length=200, blank=True)
    api_key_encrypted = models.TextField(blank=True)
    tokens_per_month = models.PositiveIntegerField(default=200_000)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedManager(tenant="tenant")

    def __str__(self) -> str:
        return f"Tutor of {self.tenant_id}"

    @property
    def uses_endpoint(self) -> bool:
        return bool(self.endpoint_url)


class TutorExchange(models.Model):
    """One question and its answer (or refusal): the conversation's history and the ledger of
    tokens the tenant's quota is drawn from."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    assignment = models.ForeignKey(
        "courses.Assignment", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    question = models.TextField()
    answer = models.TextField(blank=True)
    citations = models.JSONField(default=list)  # [{"lesson_id", "title", "url"}]
    backend = models.CharField(max_length=16)  # "grounded" | "endpoint"
    refused = models.CharField(max_length=32, blank=True)  # the refusal kind, if refused
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["tenant", "user", "id"], name="tutor_exchange_user"),
            models.Index(fields=["tenant", "created_at"], name="tutor_exchange_time"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} asked: {self.question[:40]}"


class GradeNotice(models.Model):
    """A line on a learner's dashboard saying their grade changed when their teacher regraded
    the assignment (one per grade revision that changed the score), until they dismiss it."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    learner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    revision = models.OneToOneField(
        "jobs.GradeRevision", on_delete=models.CASCADE, related_name="notice"
    )
    submission = models.ForeignKey("jobs.Submission", on_delete=models.CASCADE, related_name="+")
    exercise_title = models.CharField(max_length=200)
    score_before = models.DecimalField(max_digits=6, decimal_places=2)
    score_after = models.DecimalField(max_digits=6, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(tenant="tenant")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "learner", "dismissed_at"], name="grade_notice_open"),
        ]

    def __str__(self) -> str:
        return f"{self.learner_id}: {self.score_before} -> {self.score_after}"
