"""The demo seed's course: published, taught by the demo teacher, taken by both demo learners,
three lessons and one open assignment per exercise (the runtime's three templates and a digits
MLP); a second run changes nothing."""

from io import StringIO

import pytest
from django.core.management import call_command
from django_scopes import scope

from apps.accounts.models import User
from apps.courses.models import Assignment, Course, Exercise, Skill
from apps.jobs.models import Submission
from apps.tenants.models import Tenant
from runtime.templates import TEMPLATES
from tests.conftest import api_client_for
from tests.snapshots import db_snapshot


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_the_demo_course_is_seeded_once_and_open_to_its_learners():
    assert _seed().startswith("Created demo tenant 'Aula Demo School' at /t/demo/.")
    tenant = Tenant.objects.get(slug="demo")
    with scope(tenant=tenant):
        course = Course.objects.get(tenant=tenant)
        assert (course.slug, course.title, course.is_published) == (
            "building-neural-networks",
            "Building neural networks",
            True,
        )
        assert [u.email for u in course.teachers.all()] == ["teacher@demo.aula.localhost"]
        assert course.created_by.email == "teacher@demo.aula.localhost"
        assert sorted(e.user.email for e in course.enrollments.all()) == [
            "ada@demo.aula.localhost",
            "alan@demo.aula.localhost",
        ]
        lessons = [
            (lesson.position, lesson.title, sorted(s.slug for s in lesson.skills.all()))
            for lesson in course.lessons.order_by("position")
        ]
        assert lessons == [
            (1, "Multilayer perceptrons and XOR", ["mlp", "training"]),
            (2, "Convolutional networks", ["cnn", "training"]),
            (3, "Recurrent networks", ["rnn"]),
            (4, "Training well", ["generalisation", "training"]),
        ]
        prerequisites = {
            skill.slug: sorted(p.slug for p in skill.prerequisites.all())
            for skill in Skill.objects.filter(tenant=tenant)
        }
        assert prerequisites == {
            "training": [],
            "mlp": ["training"],
            "generalisation": ["training"],
            "cnn": ["mlp"],
            "rnn": ["mlp"],
        }
        assert all(lesson.body.startswith("# ") for lesson in course.lessons.all())
        exercises = {
            e.dataset: (e.min_metric, e.target_metric, e.allowed_kinds, e.max_seconds, e.max_epochs)
            for e in Exercise.objects.filter(course=course)
        }
        (corpus,) = [name for name in exercises if name.startswith("upload:")]
        assert exercises.pop(corpus) == (0.25, 0.7, ["spec", "code"], 120, 60)
        assert exercises == {
            "xor": (0.5, 0.95, ["spec", "code"], 60, 200),
            "shapes": (0.3, 0.9, ["spec", "code"], 300, 30),
            "sequences": (0.3, 0.9, ["spec", "code"], 180, 30),
            "digits": (0.5, 0.95, ["spec"], 120, 100),
        }
        for slug in ("xor", "cifar-cnn", "rnn-sequences"):
            template = TEMPLATES[slug]
            exercise = Exercise.objects.get(course=course, dataset=template.dataset)
            assert (exercise.starter_spec, exercise.starter_code) == (template.spec, template.code)
        digits = Exercise.objects.get(course=course, dataset="digits")
        assert (digits.starter_spec["layers"], digits.starter_code) == (
            [{"type": "linear", "out_features": 10}],
            "",
        )
        assert Assignment.objects.filter(course=course, published_at__isnull=False).count() == 5
        assert set(Assignment.objects.values_list("scores_shown", flat=True)) == {"grade_live"}

    # Hashing five passwords is most of a seed's time, so one test covers both runs.
    ada = User.objects.get(email="ada@demo.aula.localhost")
    body = api_client_for(ada).get("/api/v1/t/demo/me/assignments/").json()
    rows = [
        (row["exercise"]["dataset"], row["status"], row["attempts_left"], row["best_score"])
        for row in body["results"]
    ]
    # Ada's first attempts at XOR and the digits are queued for the worker (none runs here).
    assert sorted(rows) == [
        ("digits", "open", 9, None),
        ("sequences", "open", 10, None),
        ("shapes", "open", 10, None),
        (corpus, "open", 10, None),
        ("xor", "open", 9, None),
    ]
    with scope(tenant=tenant):
        queued = Submission.objects.order_by("learner__email", "assignment__exercise__dataset")
        assert [
            (s.learner.email, s.assignment.exercise.dataset, s.attempt, s.job.state) for s in queued
        ] == [
            ("ada@demo.aula.localhost", "digits", 1, "queued"),
            ("ada@demo.aula.localhost", "xor", 1, "queued"),
            ("alan@demo.aula.localhost", "xor", 1, "queued"),
        ]

    before = db_snapshot()
    assert _seed().startswith("Found demo tenant 'Aula Demo School'")
    assert db_snapshot() == before
