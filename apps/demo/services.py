"""Demo data for `make run`: one tenant with an admin, a teacher and two learners, a published
course with lessons, exercises and open assignments (apps/demo/course.py), the shipped Chinese
and English corpus uploaded as the school's own text dataset (for the RNN exercise on it), and
the learners' first attempts, queued for the worker to train.

Idempotent: a second run finds the rows and changes nothing, so restarting never duplicates.
"""

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django_scopes import scope

from apps.courses import services as courses
from apps.courses.models import (
    Assignment,
    Course,
    Enrollment,
    Exercise,
    LatePolicy,
    Lesson,
    ScoresShown,
    Skill,
)
from apps.datasets import services as datasets
from apps.datasets.models import Dataset, VersionState
from apps.demo import course as demo
from apps.tenants.models import Membership, Role, Tenant
from apps.tenants.services import membership_create, tenant_create
from runtime.templates import TEMPLATES

DEMO_TENANT_SLUG = "demo"
CORPORA = Path(__file__).resolve().parents[2] / "runtime" / "corpora"


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    role: str


DEMO_LOGINS = (
    DemoLogin("admin@demo.aula.localhost", "demo-admin-pass", Role.ADMIN),
    DemoLogin("teacher@demo.aula.localhost", "demo-teacher-pass", Role.TEACHER),
    DemoLogin("ada@demo.aula.localhost", "demo-learner-pass", Role.LEARNER),
    DemoLogin("alan@demo.aula.localhost", "demo-learner-pass", Role.LEARNER),
)
COURSE_TEACHER = "teacher@demo.aula.localhost"
COURSE_LEARNERS = ("ada@demo.aula.localhost", "alan@demo.aula.localhost")
PLATFORM_ADMIN = DemoLogin("root@aula.localhost", "demo-platform-pass", "platform admin")


@transaction.atomic
def demo_seed() -> tuple[Tenant, bool]:
    """Returns the demo tenant and whether this call created anything."""
    User = get_user_model()
    created = False
    tenant = Tenant.objects.filter(slug=DEMO_TENANT_SLUG).first()
    if tenant is None:
        tenant = tenant_create(actor=None, slug=DEMO_TENANT_SLUG, name="Aula Demo School")
        created = True
    if not User.objects.filter(email=PLATFORM_ADMIN.email).exists():
        User.objects.create_superuser(email=PLATFORM_ADMIN.email, password=PLATFORM_ADMIN.password)
        created = True
    for login in DEMO_LOGINS:
        user = User.objects.filter(email=login.email).first()
        if user is None:
            name = login.email.split("@")[0].capitalize()
            user = User.objects.create_user(
                email=login.email, password=login.password, full_name=name
            )
            created = True
        with scope(tenant=tenant):
            if not Membership.objects.filter(tenant=tenant, user=user).exists():
                membership_create(tenant=tenant, user=user, role=login.role)
                created = True
    with scope(tenant=tenant):
        created |= _course_seed(tenant)
        created |= _first_runs_seed(tenant)
    return tenant, created


# (learner, exercise title): first attempts submitted with the starter model, through the real
# submit path, so that the pages have runs, grades, curves and usage to show once the worker of
# `make run` has trained them (a few seconds: XOR and the digits MLP are small).
FIRST_RUNS = (
    ("ada@demo.aula.localhost", "The XOR network"),
    ("ada@demo.aula.localhost", "An MLP for handwritten digits"),
    ("alan@demo.aula.localhost", "The XOR network"),
)


def _first_runs_seed(tenant: Tenant) -> bool:
    from apps.jobs.models import Submission
    from apps.jobs.services import submission_create

    User = get_user_model()
    created = False
    for email, title in FIRST_RUNS:
        learner = User.objects.get(email=email)
        assignment = Assignment.objects.select_related("exercise").get(
            course__tenant=tenant, course__slug=demo.COURSE_SLUG, exercise__title=title
        )
        if not Submission.objects.filter(assignment=assignment, learner=learner).exists():
            submission_create(
                assignment=assignment,
                learner=learner,
                kind="spec",
                spec=assignment.exercise.starter_spec,
            )
            created = True
    return created


def _course_seed(tenant: Tenant) -> bool:
    """The demo course, each row made only where it is missing; whether any was."""
    User = get_user_model()
    created = False
    skills = {}
    for skill in demo.SKILLS:
        skills[skill.slug] = Skill.objects.filter(tenant=tenant, slug=skill.slug).first()
        if skills[skill.slug] is None:
            skills[skill.slug] = courses.skill_create(
                tenant=tenant,
                slug=skill.slug,
                name=skill.name,
                description=skill.description,
                prerequisites=[skills[slug] for slug in skill.prerequisites],
            )
            created = True

    course = Course.objects.filter(tenant=tenant, slug=demo.COURSE_SLUG).first()
    if course is None:
        course = courses.course_create(
            tenant=tenant,
            created_by=User.objects.get(email=COURSE_TEACHER),
            slug=demo.COURSE_SLUG,
            title=demo.COURSE_TITLE,
            summary=demo.COURSE_SUMMARY,
        )
        created = True
    if not course.is_published:
        courses.course_publish(course=course)
        created = True
    for email in COURSE_LEARNERS:
        if not Enrollment.objects.filter(course=course, user__email=email).exists():
            courses.enrollment_create(course=course, email=email)
            created = True

    for lesson in demo.LESSONS:
        if not Lesson.objects.filter(course=course, position=lesson.position).exists():
            courses.lesson_create(
                course=course,
                title=lesson.title,
                body=lesson.body,
                position=lesson.position,
                skills=[skills[slug] for slug in lesson.skills],
            )
            created = True

    opens_at = timezone.now()
    for planned in demo.EXERCISES:
        exercise = Exercise.objects.filter(course=course, title=planned.title).first()
        if exercise is None:
            dataset = planned.dataset
            if dataset == demo.CORPUS_DATASET:
                dataset, _made = _corpus_seed(tenant)
            exercise = courses.exercise_create(
                course=course,
                title=planned.title,
                instructions=planned.instructions,
                dataset=dataset,
                min_metric=planned.min_metric,
                target_metric=planned.target_metric,
                skills=[skills[slug] for slug in planned.skills],
                **_exercise_model(planned),
            )
            created = True
        if not Assignment.objects.filter(course=course, exercise=exercise).exists():
            assignment = courses.assignment_create(
                course=course,
                exercise=exercise,
                opens_at=opens_at,
                due_at=opens_at + timedelta(days=60),
                closes_at=opens_at + timedelta(days=74),
                max_attempts=10,
                late_policy=LatePolicy.PENALTY,
                late_penalty=0.2,
                scores_shown=ScoresShown.GRADE_LIVE,  # a course to practise on: grades at once
            )
            courses.assignment_publish(assignment=assignment)
            created = True
    return created


def _corpus_seed(tenant: Tenant) -> tuple[str, bool]:
    """The shipped corpus as the demo school's text dataset, uploaded by its teacher and
    ingested here and now (the worker's own delivery of it then finds it ready and leaves it):
    its name (`upload:<key>`) and whether this call made it."""
    teacher = get_user_model().objects.get(email=COURSE_TEACHER)
    dataset = Dataset.objects.filter(tenant=tenant, slug=demo.CORPUS_SLUG).first()
    if dataset is not None:
        version = dataset.versions.filter(state=VersionState.READY).order_by("-number").first()
        if version is not None:
            return version.source_name, False
    else:
        dataset = datasets.dataset_create(
            tenant=tenant,
            created_by=teacher,
            slug=demo.CORPUS_SLUG,
            title=demo.CORPUS_TITLE,
            description=demo.CORPUS_DESCRIPTION,
        )
    data = (CORPORA / demo.CORPUS_FILE).read_bytes()
    version = datasets.version_create(
        dataset=dataset,
        created_by=teacher,
        file_name=demo.CORPUS_FILE,
        size=len(data),
        format="csv",
        options={"kind": "text", "label_column": "topic", "text_column": "sentence"},
    )
    datasets.chunk_append(version=version, offset=0, data=data)
    version = datasets.version_ingest(version_id=version.id)
    if version.state != VersionState.READY:
        raise RuntimeError(f"the demo corpus was not ingested: {version.problems}")
    return version.source_name, True


def _exercise_model(planned: demo.DemoExercise) -> dict:
    """The starter and budget: a runtime template's (spec and code), the digits MLP's, or the
    corpus RNN's (spec and code)."""
    if planned.dataset == demo.CORPUS_DATASET:
        return {
            "starter_spec": demo.CORPUS_STARTER_SPEC,
            "starter_code": demo.CORPUS_STARTER_CODE,
            "allow_code": True,
            **demo.CORPUS_BUDGET,
        }
    if planned.template is None:
        return {"starter_spec": demo.DIGITS_STARTER_SPEC, **demo.DIGITS_BUDGET}
    template = TEMPLATES[planned.template]
    return {
        "starter_spec": template.spec,
        "starter_code": template.code,
        "allow_code": True,
        "max_seconds": template.budget.max_seconds,
        "max_epochs": template.budget.max_epochs,
    }
