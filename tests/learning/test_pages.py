"""The learning pages: the learner's dashboard (next step, mastery), the run's diagnosis with
its lesson link, the teacher's mastery heat map, the administrators' tutor page; 404 for the
roles that may not use them, with nothing changed."""

import re
from types import SimpleNamespace

import pytest
from django_scopes import scopes_disabled

from apps.jobs import grading
from apps.learning.crypto import decrypt
from apps.learning.models import Mastery, TutorSettings
from tests.conftest import page_client_for
from tests.factories import LessonFactory, SkillFactory
from tests.learning.test_records import OVERFITTING, _point, _run
from tests.snapshots import db_snapshot


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


@pytest.mark.django_db
def test_the_dashboard_shows_the_next_step_and_mastery(tenant_a):
    with scopes_disabled():
        Mastery.objects.create(
            tenant=tenant_a.tenant,
            user=tenant_a.learner.user,
            skill=tenant_a.skill,
            probability=0.4321,
            observations=2,
        )
    response = page_client_for(tenant_a.learner.user).get("/t/alpha/")
    assert response.status_code == 200
    text = _text(response)
    assert (
        f"Your next step Practise it with “{tenant_a.exercise.title}”: MLPs at alpha is your "
        "weakest skill (43% mastered) and it has no prerequisites."
    ) in text
    assert "MLPs at alpha 43% 43% 2" in text
    assert f'href="/t/alpha/assignments/{tenant_a.assignment.id}/"' in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("probability, percent", [(0.596, 59), (0.949, 94), (0.29, 29)])
def test_one_rounding_rule_for_mastery_on_the_dashboard_its_next_step_and_the_heat_map(
    tenant_a, probability, percent
):
    """Rounded down everywhere: 0.596 was 59% in the table beside 60% in the next step, and
    0.949 a 95% on the teacher's grid for a skill that is not mastered (from 95%)."""
    with scopes_disabled():
        Mastery.objects.create(
            tenant=tenant_a.tenant,
            user=tenant_a.learner.user,
            skill=tenant_a.skill,
            probability=probability,
            observations=2,
        )
    text = _text(page_client_for(tenant_a.learner.user).get("/t/alpha/"))
    assert f"weakest skill ({percent}% mastered)" in text
    assert f"MLPs at alpha {percent}% {percent}% 2" in text
    assert "mastered " not in text.split("Your skills", 1)[1].split("Graded attempts")[1]
    grid = page_client_for(tenant_a.teacher.user).get(
        f"/t/alpha/teach/courses/{tenant_a.course.id}/mastery/"
    )
    assert f">{percent}%</td>" in grid.content.decode()


@pytest.mark.django_db
def test_the_run_page_shows_the_diagnosis_with_the_lesson_that_helps(tenant_a):
    training = SkillFactory(tenant=tenant_a.tenant, slug="training", name="Training")
    lesson = LessonFactory(course=tenant_a.course, title="Training well")
    with scopes_disabled():
        lesson.skills.add(training)
    submission = _run(tenant_a, OVERFITTING)
    html = page_client_for(tenant_a.learner.user).get(f"/t/alpha/runs/{submission.id}/")
    assert html.status_code == 200
    body = html.content.decode()
    assert 'id="hint-overfitting"' in body
    assert f'Read: <a href="/t/alpha/lessons/{lesson.id}/">Training well</a>' in body
    assert "<dt>train_accuracy</dt><dd>0.99</dd>" in body


RISING = [
    _point(epoch, loss, 0.6, 0.55)
    for epoch, loss in enumerate([0.5, 0.6, 0.7, 0.8, 0.9, 1.0], start=1)
]


@pytest.mark.django_db
def test_a_hint_links_the_lesson_of_the_exercises_own_skills(tenant_a):
    """A CNN exercise's learning-rate hint ("training") goes to the CNN lesson, not to the XOR
    lesson that comes first in the course and teaches training too."""
    cnn = SkillFactory(tenant=tenant_a.tenant, slug="cnn", name="CNNs")
    training = SkillFactory(tenant=tenant_a.tenant, slug="training", name="Training")
    with scopes_disabled():
        tenant_a.lesson.position, tenant_a.lesson.title = 1, "Multilayer perceptrons and XOR"
        tenant_a.lesson.save()
        tenant_a.lesson.skills.add(training)  # it teaches alpha-mlp and training
        cnn_lesson = LessonFactory(
            course=tenant_a.course, title="Convolutional networks", position=2
        )
        cnn_lesson.skills.set([cnn, training])
        tenant_a.exercise.skills.set([cnn, training])
    submission = _run(tenant_a, RISING)
    body = page_client_for(tenant_a.learner.user).get(f"/t/alpha/runs/{submission.id}/")
    body = body.content.decode()
    assert 'id="hint-lr_too_high"' in body
    assert f'Read: <a href="/t/alpha/lessons/{cnn_lesson.id}/">Convolutional networks</a>' in body
    assert f"/t/alpha/lessons/{tenant_a.lesson.id}/" not in body


@pytest.mark.django_db
def test_the_model_kind_comes_from_the_spec_else_from_the_exercises_skills(tenant_a):
    conv = {"layers": [{"type": "conv2d", "out_channels": 6}, {"type": "linear"}]}
    lstm = {"layers": [{"type": "embedding"}, {"type": "lstm"}]}
    with scopes_disabled():
        exercise = tenant_a.exercise
        kinds = [
            grading.model_kind(submission=SimpleNamespace(spec=spec), exercise=exercise)
            for spec in (conv, lstm, {"layers": [{"type": "linear"}]}, None)
        ]
        cnn = SkillFactory(tenant=tenant_a.tenant, slug="cnn", name="CNNs")
        exercise.skills.add(cnn)
        code = grading.model_kind(submission=SimpleNamespace(spec=None), exercise=exercise)
        exercise.skills.set([SkillFactory(tenant=tenant_a.tenant, slug="other")])
        unknown = grading.model_kind(submission=SimpleNamespace(spec=None), exercise=exercise)
    # The world's exercise practises "alpha-mlp", which names no kind.
    assert kinds == ["cnn", "rnn", "mlp", None]
    assert (code, unknown) == ("cnn", None)


@pytest.mark.django_db
def test_the_teacher_sees_the_mastery_heat_map(tenant_a):
    with scopes_disabled():
        Mastery.objects.create(
            tenant=tenant_a.tenant,
            user=tenant_a.learner.user,
            skill=tenant_a.skill,
            probability=0.75,
            observations=3,
        )
    page = f"/t/alpha/teach/courses/{tenant_a.course.id}/mastery/"
    response = page_client_for(tenant_a.teacher.user).get(page)
    assert response.status_code == 200
    body = response.content.decode()
    assert '<td class="mastery dark" style="--share: 0.750">75%</td>' in body
    assert "Parameters not fitted yet" in body


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["learner", "other-teacher", "other-tenant-admin"])
def test_the_heat_map_and_its_refit_are_404_to_others(tenant_a, tenant_b, who):
    from tests.factories import MembershipFactory

    user = {
        "learner": tenant_a.learner.user,
        "other-teacher": MembershipFactory(tenant=tenant_a.tenant, role="teacher").user,
        "other-tenant-admin": tenant_b.admin.user,
    }[who]
    client = page_client_for(user)
    before = db_snapshot()
    base = f"/t/alpha/teach/courses/{tenant_a.course.id}/mastery/"
    assert client.get(base).status_code == 404
    assert client.post(base + "refit/").status_code == 404
    assert db_snapshot() == before


@pytest.mark.django_db
def test_the_administrator_sets_the_tutor_from_its_page(tenant_a, settings):
    settings.TUTOR_ENDPOINT_ALLOWED_HOSTS = ["ollama.school"]  # on the school's network
    client = page_client_for(tenant_a.admin.user)
    page = client.get("/t/alpha/tutor/")
    assert "The built-in tutor answers your learners" in _text(page)
    response = client.post(
        "/t/alpha/tutor/",
        {
            "endpoint_url": "http://ollama.school:11434/v1",
            "model": "llama3.2",
            "api_key": "sk-page",
            "tokens_per_month": "5000",
        },
    )
    assert response.status_code == 302
    with scopes_disabled():
        row = TutorSettings.objects.get(tenant=tenant_a.tenant)
    assert (row.endpoint_url, row.model, row.tokens_per_month) == (
        "http://ollama.school:11434/v1",
        "llama3.2",
        5000,
    )
    assert decrypt(row.api_key_encrypted) == "sk-page"
    text = _text(client.get("/t/alpha/tutor/"))
    assert "go to llama3.2 at http://ollama.school:11434/v1 (with a stored key); 0 of 5000" in text
    assert "sk-page" not in client.get("/t/alpha/tutor/").content.decode()


@pytest.mark.django_db
def test_a_bad_tutor_form_shows_its_errors_and_saves_nothing(tenant_a):
    client = page_client_for(tenant_a.admin.user)
    before = db_snapshot()
    response = client.post(
        "/t/alpha/tutor/",
        {"endpoint_url": "http://x.example/v1", "model": "", "tokens_per_month": "-5"},
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors == {"tokens_per_month": ["Ensure this value is greater than or equal to 0."]}
    response = client.post(
        "/t/alpha/tutor/",
        {"endpoint_url": "http://x.example/v1", "model": "", "tokens_per_month": "5"},
    )
    assert response.context["form"].errors == {"model": ["Name the model the endpoint serves."]}
    assert db_snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["teacher", "learner"])
def test_the_tutor_page_is_404_to_non_administrators(tenant_a, role):
    client = page_client_for(getattr(tenant_a, role).user)
    before = db_snapshot()
    assert client.get("/t/alpha/tutor/").status_code == 404
    body = {"endpoint_url": "", "model": "", "tokens_per_month": "1"}
    assert client.post("/t/alpha/tutor/", body).status_code == 404
    assert db_snapshot() == before
