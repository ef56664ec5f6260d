"""Courses and what is taught in them: skills, lessons, exercises, assignments and enrollments.

An Exercise says what to build (dataset, metric, grading scheme, compute budget, allowed kinds);
an Assignment puts it in front of a course's learners with dates and an attempt limit.
"""

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django_scopes import ScopedManager

from apps.core.models import TimeStampedModel
from apps.tenants.models import Tenant, slug_validator


class Skill(TimeStampedModel):
    """Something a learner can master; lessons teach skills and exercises practise them."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="skills")
    slug = models.SlugField(max_length=50, validators=[slug_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=5000)
    # Skills a learner should master first; recommendations follow them (no cycles: services).
    prerequisites = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="unlocks"
    )

    objects = ScopedManager(tenant="tenant")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="skill_slug_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class Course(TimeStampedModel):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="courses")
    slug = models.SlugField(max_length=50, validators=[slug_validator])
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True, max_length=5000)
    published_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Tenant teachers who teach this course (its creator first); tenant admins teach every course.
    teachers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="courses_taught"
    )
    # A learner of the tenant who enters it on "Join a course" is enrolled; "" = joining is off.
    join_code = models.CharField(max_length=16, blank=True, default="")
    # Days a trained model of the course is kept after its run; null: kept until deleted.
    artifact_retention_days = models.PositiveIntegerField(
        "keep trained models for (days)",
        null=True,
        blank=True,
        default=180,
        validators=[MinValueValidator(1), MaxValueValidator(36500)],
        help_text="Trained models are deleted this many days after their run; empty: kept.",
    )

    objects = ScopedManager(tenant="tenant")

    class Meta:
        ordering = ["title"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="course_slug_unique"),
            models.UniqueConstraint(
                fields=["tenant", "join_code"],
                condition=~Q(join_code=""),
                name="course_join_code_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_published(self) -> bool:
        return self.published_at is not None


class Lesson(TimeStampedModel):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="lessons")
    title = models.CharField(max_length=200)
    body = models.TextField("body (Markdown)", blank=True, max_length=100_000)
    position = models.PositiveIntegerField()
    skills = models.ManyToManyField(Skill, blank=True, related_name="lessons")

    objects = ScopedManager(tenant="tenant")

    class Meta:
        ordering = ["course", "position"]
        constraints = [
            models.UniqueConstraint(fields=["course", "position"], name="lesson_position_unique"),
        ]

    def __str__(self) -> str:
        return self.title


class Metric(models.TextChoices):
    ACCURACY = "accuracy", "Accuracy"
    BALANCED_ACCURACY = "balanced_accuracy", "Balanced accuracy (mean per-class accuracy)"


class Exercise(TimeStampedModel):
    """A model-building task and how it is graded.

    Grading: the score rises linearly from 0 at `min_metric` to `max_score` at `target_metric`.
    Above `param_budget` parameters, the score loses `param_penalty` of itself for every 100%
    over the budget (capped at the whole score).
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="exercises")
    title = models.CharField(max_length=200)
    instructions = models.TextField("instructions (Markdown)", blank=True, max_length=100_000)
    dataset = models.CharField(max_length=50)
    metric = models.CharField(max_length=32, choices=Metric.choices, default=Metric.ACCURACY)
    min_metric = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    target_metric = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    max_score = models.DecimalField(max_digits=6, decimal_places=2, default=100)
    param_budget = models.PositiveBigIntegerField(null=True, blank=True)
    param_penalty = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    max_seconds = models.PositiveIntegerField(
        default=300, validators=[MinValueValidator(1), MaxValueValidator(6 * 3600 - 600)]
    )
    max_epochs = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(10_000)]
    )
    allow_spec = models.BooleanField(default=True)
    allow_code = models.BooleanField(default=False)
    starter_spec = models.JSONField(null=True, blank=True)
    starter_code = models.TextField(blank=True, max_length=64 * 1024)
    # The teacher's reference solution: never shown to learners; the tutor refuses to reveal it.
    solution_code = models.TextField(blank=True, max_length=64 * 1024)
    skills = models.ManyToManyField(Skill, blank=True, related_name="exercises")

    objects = ScopedManager(tenant="tenant")

    class Meta:
        ordering = ["course", "title"]
        constraints = [
            models.CheckConstraint(
                condition=Q(allow_spec=True) | Q(allow_code=True),
                name="exercise_allows_a_kind",
            ),
            models.CheckConstraint(
                condition=Q(target_metric__gt=F("min_metric")),
                name="exercise_target_above_min",
            ),
            models.CheckConstraint(
                condition=Q(max_score__gt=0), name="exercise_max_score_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def allowed_kinds(self) -> list[str]:
        return [
            kind
            for kind, allowed in (("spec", self.allow_spec), ("code", self.allow_code))
            if allowed
        ]


class ScoresShown(models.TextChoices):
    """When learners see the scores of the hidden test parts (every assignment's test split has
    two, drawn with its secret: the public part, for the leaderboard during the assignment, and
    the private part, the grade). GRADE_LIVE is for practice: the grade at once, as a learner
    tries things out (they may then tune their model to the hidden part); the other two keep
    the grade until the due date, as Kaggle InClass does."""

    GRADE_LIVE = "grade_live", _("Every score at once (practice)")
    PUBLIC_LIVE = "public_live", _("Public score at once, private score after the due date")
    AT_END = "at_end", _("Both scores after the due date")


def scores_shown_default(exercise) -> str:
    """What an assignment shows when the teacher does not say: on the teacher's own data (a
    registered source's dataset, "upload:..."), the public score at once and the grade after the
    due date; on a built-in dataset, practice: every score at once."""
    return ScoresShown.PUBLIC_LIVE if ":" in (exercise.dataset or "") else ScoresShown.GRADE_LIVE


def split_secret_new() -> bytes:
    return secrets.token_bytes(32)


class LatePolicy(models.TextChoices):
    REFUSE = "refuse", "Refuse late submissions"
    ACCEPT = "accept", "Accept late submissions"
    PENALTY = "penalty", "Accept with a penalty"


class Assignment(TimeStampedModel):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="assignments")
    exercise = models.ForeignKey(Exercise, on_delete=models.PROTECT, related_name="assignments")
    opens_at = models.DateTimeField()
    due_at = models.DateTimeField()
    # Past due_at, under the "accept"/"penalty" policies, submissions are taken until closes_at
    # (None: no end).
    closes_at = models.DateTimeField(null=True, blank=True)
    max_attempts = models.PositiveIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(1000)]
    )
    late_policy = models.CharField(
        max_length=16, choices=LatePolicy.choices, default=LatePolicy.REFUSE
    )
    late_penalty = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    published_at = models.DateTimeField(null=True, blank=True)
    # The tutor's policy: while the assignment is open it gives hints, never a full solution,
    # unless the teacher allows solutions. Hidden test data is never revealed either way.
    tutor_solutions_allowed = models.BooleanField(default=False)
    # Draws the hidden test parts of its exercise's dataset (public and private, docs/datasets.md)
    # and never leaves the trusted side: no serializer, page or sandbox is given it.
    split_secret = models.BinaryField(max_length=32, default=split_secret_new, editable=False)
    scores_shown = models.CharField(
        _("learners see"),
        max_length=16,
        choices=ScoresShown.choices,
        default=ScoresShown.GRADE_LIVE,  # the services choose by the dataset: scores_shown_default
    )

    objects = ScopedManager(tenant="tenant")

    class Meta:
        ordering = ["due_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(due_at__gt=F("opens_at")), name="assignment_due_after_open"
            ),
            models.CheckConstraint(
                condition=Q(closes_at__isnull=True) | Q(closes_at__gte=F("due_at")),
                name="assignment_closes_after_due",
            ),
            models.CheckConstraint(
                condition=Q(max_attempts__gte=1), name="assignment_attempts_positive"
            ),
            models.CheckConstraint(
                condition=Q(late_policy__in=LatePolicy.values), name="assignment_late_policy_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.exercise} in {self.course}"

    @property
    def is_published(self) -> bool:
        return self.published_at is not None


class Enrollment(TimeStampedModel):
    """A learner taking a course; enrolled learners see its published assignments."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="enrollments")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrollments"
    )

    objects = ScopedManager(tenant="tenant")

    class Meta:
        ordering = ["course", "user__email"]
        constraints = [
            models.UniqueConstraint(fields=["course", "user"], name="enrollment_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.course}"
