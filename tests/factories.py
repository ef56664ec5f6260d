"""factory_boy factories for the domain's rows."""

import functools
import secrets
from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth.hashers import make_password
from django.utils import timezone
from django_scopes import scopes_disabled

from apps.accounts.models import User
from apps.quotas.models import LedgerEntry, TenantQuota
from apps.tenants.models import Invitation, Membership, Role, Tenant
from apps.tenants.selectors import token_digest

PASSWORD = "correct horse battery staple"


@functools.cache
def _password_hash() -> str:
    # Hashed once: the real hasher costs ~0.3 s a call, and every user shares this password.
    return make_password(PASSWORD)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"person{n}@example.org")
    full_name = factory.Faker("name")
    password = factory.LazyFunction(_password_hash)


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    slug = factory.Sequence(lambda n: f"school-{n}")
    name = factory.Sequence(lambda n: f"School {n}")


class ScopesDisabledFactory(factory.django.DjangoModelFactory):
    """Tenant-owned rows are made outside any request, so the factory lifts the scope."""

    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with scopes_disabled():
            return super()._create(model_class, *args, **kwargs)


class MembershipFactory(ScopesDisabledFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = Role.LEARNER


class InvitationFactory(ScopesDisabledFactory):
    """Pass raw_token=… to know the link's token; the row stores only its digest."""

    class Meta:
        model = Invitation
        exclude = ["raw_token"]

    raw_token = factory.LazyFunction(lambda: secrets.token_urlsafe(32))
    tenant = factory.SubFactory(TenantFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.org")
    role = Role.LEARNER
    token_digest = factory.LazyAttribute(lambda o: token_digest(o.raw_token))
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))


# --- Courses and jobs -------------------------------------------------------------------------


class SkillFactory(ScopesDisabledFactory):
    class Meta:
        model = "courses.Skill"

    tenant = factory.SubFactory(TenantFactory)
    slug = factory.Sequence(lambda n: f"skill-{n}")
    name = factory.Sequence(lambda n: f"Skill {n}")


class CourseFactory(ScopesDisabledFactory):
    class Meta:
        model = "courses.Course"

    tenant = factory.SubFactory(TenantFactory)
    slug = factory.Sequence(lambda n: f"course-{n}")
    title = factory.Sequence(lambda n: f"Course {n}")
    published_at = factory.LazyFunction(timezone.now)


class LessonFactory(ScopesDisabledFactory):
    class Meta:
        model = "courses.Lesson"

    course = factory.SubFactory(CourseFactory)
    tenant = factory.SelfAttribute("course.tenant")
    title = factory.Sequence(lambda n: f"Lesson {n}")
    body = "# Heading\n\nSome text."
    position = factory.Sequence(lambda n: n + 1)


def _template_spec(slug: str) -> dict:
    from runtime.templates import TEMPLATES

    return TEMPLATES[slug].spec


class ExerciseFactory(ScopesDisabledFactory):
    """By default the XOR template: a spec exercise that trains in well under a second."""

    class Meta:
        model = "courses.Exercise"

    course = factory.SubFactory(CourseFactory)
    tenant = factory.SelfAttribute("course.tenant")
    title = factory.Sequence(lambda n: f"Exercise {n}")
    dataset = "xor"
    min_metric = 0.5
    target_metric = 0.95
    max_seconds = 60
    starter_spec = factory.LazyFunction(lambda: _template_spec("xor"))


class AssignmentFactory(ScopesDisabledFactory):
    """Open since an hour ago, due in a week, 5 attempts, published, the fixed split secret."""

    class Meta:
        model = "courses.Assignment"

    exercise = factory.SubFactory(ExerciseFactory)
    course = factory.SelfAttribute("exercise.course")
    tenant = factory.SelfAttribute("exercise.tenant")
    opens_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
    due_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))
    max_attempts = 5
    published_at = factory.LazyFunction(timezone.now)
    # One fixed secret, so that a test's hidden test parts (and its figures) are the same in
    # every run; a test of the secrets themselves gives its own.
    split_secret = bytes(range(32))


class EnrollmentFactory(ScopesDisabledFactory):
    class Meta:
        model = "courses.Enrollment"

    course = factory.SubFactory(CourseFactory)
    tenant = factory.SelfAttribute("course.tenant")
    user = factory.SubFactory(UserFactory)


class SubmissionFactory(ScopesDisabledFactory):
    class Meta:
        model = "jobs.Submission"

    assignment = factory.SubFactory(AssignmentFactory)
    tenant = factory.SelfAttribute("assignment.tenant")
    learner = factory.SubFactory(UserFactory)
    kind = "spec"
    spec = factory.LazyFunction(lambda: _template_spec("xor"))
    attempt = factory.Sequence(lambda n: n + 1)


class JobFactory(ScopesDisabledFactory):
    class Meta:
        model = "jobs.Job"

    submission = factory.SubFactory(SubmissionFactory)
    tenant = factory.SelfAttribute("submission.tenant")


class JobEventFactory(ScopesDisabledFactory):
    class Meta:
        model = "jobs.JobEvent"

    job = factory.SubFactory(JobFactory)
    tenant = factory.SelfAttribute("job.tenant")
    seq = factory.Sequence(lambda n: n + 1)
    attempt = 1
    type = "queued"


class GradeFactory(ScopesDisabledFactory):
    class Meta:
        model = "jobs.Grade"

    submission = factory.SubFactory(SubmissionFactory)
    tenant = factory.SelfAttribute("submission.tenant")
    score = 80
    max_score = 100
    automatic_score = factory.SelfAttribute("score")
    source = "automatic"
    metrics = factory.LazyFunction(lambda: {"accuracy": 0.86})


def graded_submission(*, assignment, learner, attempt: int, score=80, accuracy=0.86):
    """A submission whose job succeeded (events queued, started, succeeded) with its grade."""
    submission = SubmissionFactory(assignment=assignment, learner=learner, attempt=attempt)
    now = timezone.now()
    job = JobFactory(
        submission=submission,
        state="succeeded",
        attempt=1,
        lease_token=1,
        last_seq=3,
        dispatched_at=now,
        started_at=now,
        finished_at=now,
        run_started_at=now,
        budget_seconds=60,
    )
    for seq, kind in enumerate(("queued", "started", "succeeded"), start=1):
        JobEventFactory(job=job, seq=seq, type=kind, attempt=0 if seq == 1 else 1)
    grade = GradeFactory(submission=submission, score=score, metrics={"accuracy": accuracy})
    with scopes_disabled():
        grade.revisions.create(tenant=grade.tenant, score=grade.score, source="automatic")
        # Its ledger: 60 GPU-seconds reserved at admission, 2.5 charged at the end.
        period = TenantQuota.objects.get(tenant=submission.tenant).period_started_at
        for kind, reserved, used in (("reserve", 60, 0), ("settle", -60, Decimal("2.5"))):
            LedgerEntry.objects.create(
                tenant=submission.tenant,
                period_started_at=period,
                job=job,
                learner=learner,
                kind=kind,
                reserved=reserved,
                used=used,
            )
    return submission


class TenantQuotaFactory(ScopesDisabledFactory):
    """An hour of GPU time a month, two jobs at once, 100 waiting, 10 minutes a job."""

    class Meta:
        model = "quotas.TenantQuota"

    tenant = factory.SubFactory(TenantFactory)
    period = "month"
    period_started_at = factory.LazyFunction(
        lambda: timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    )
    gpu_seconds = 3600
    max_running_jobs = 2
    max_queued_jobs = 100
    max_seconds_per_job = 600
