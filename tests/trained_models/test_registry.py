"""The course's model registry (apps/trained_models/registry.py): a learner's own models with a
"Use this one" choice per exercise; a teacher's view of every learner's models, filterable by
exercise, and the showcase sorted by accuracy; and everyone else kept out (status and nothing
changed)."""

import re

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from apps.tenants.models import Role
from apps.trained_models.models import Showcase
from tests.conftest import page_client_for
from tests.factories import (
    AssignmentFactory,
    CourseFactory,
    EnrollmentFactory,
    ExerciseFactory,
    MembershipFactory,
)
from tests.models_support import SPECS, stored_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def registry(tenant_a):
    """Two digits exercises of the course: the learner's two attempts at the first (untrained,
    then trained), one at the second; another learner's one attempt at the first."""
    world = tenant_a
    first, second = (
        AssignmentFactory(
            exercise=ExerciseFactory(
                course=world.course, dataset="digits", title=title, starter_spec=SPECS["digits"]
            )
        )
        for title in ("Digits one", "Digits two")
    )
    other = MembershipFactory(tenant=world.tenant, role=Role.LEARNER).user
    EnrollmentFactory(course=world.course, user=other)
    models = {
        "mine_1": stored_model(world, dataset="digits", trained=False, assignment=first, attempt=1),
        "mine_2": stored_model(world, dataset="digits", assignment=first, attempt=2),
        "mine_other_exercise": stored_model(
            world, dataset="digits", trained=False, assignment=second, attempt=1
        ),
        "theirs": stored_model(
            world, dataset="digits", trained=False, assignment=first, learner=other, attempt=1
        ),
    }
    assert models["mine_2"].metrics["accuracy"] > models["mine_1"].metrics["accuracy"]
    return world, first, second, other, models


def _url(world, course=None):
    return reverse(
        "course-models",
        kwargs={"tenant_slug": world.tenant.slug, "course_id": (course or world.course).id},
    )


def _choose_url(world, model, course=None):
    return reverse(
        "course-models-showcase",
        kwargs={
            "tenant_slug": world.tenant.slug,
            "course_id": (course or world.course).id,
            "model_id": model.id,
        },
    )


def _rows(html: str, table: str) -> list[str]:
    """The ids of the rows of the table `table`, in order."""
    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr id="([^"]+)"', body)


def _showcases():
    with scopes_disabled():
        return sorted(Showcase.objects.values_list("learner_id", "exercise_id", "model_id"))


def test_a_learner_sees_their_models_of_the_course_with_their_figures(registry):
    world, _first, _second, _other, models = registry
    html = page_client_for(world.learner.user).get(_url(world)).content.decode()
    mine = [models[k] for k in ("mine_1", "mine_2", "mine_other_exercise")]
    assert sorted(_rows(html, "models")) == sorted(f"model-{m.id}" for m in mine)
    row = html.split(f'id="model-{models["mine_2"].id}"', 1)[1].split("</tr>", 1)[0]
    model = models["mine_2"]
    assert "Digits one" in row
    assert f'href="/t/{world.tenant.slug}/runs/{model.submission_id}/">Attempt 2</a>' in row
    assert f"<td>{model.metrics['accuracy']:.4f}</td>" in row
    assert f"<td>{64 * 32 + 32 + 32 * 10 + 10}</td>" in row
    assert f'href="/t/{world.tenant.slug}/models/{model.id}/model.onnx"' in row
    assert f'href="/t/{world.tenant.slug}/models/{model.id}/weights.safetensors"' in row
    assert "Use this one" in row
    assert 'id="showcase"' not in html  # the showcase is the teachers'


def test_use_this_one_chooses_one_model_per_exercise(registry):
    world, first, second, _other, models = registry
    client = page_client_for(world.learner.user)
    me = world.learner.user.pk
    response = client.post(_choose_url(world, models["mine_1"]))
    assert (response.status_code, response["Location"]) == (302, _url(world))
    assert _showcases() == [(me, first.exercise_id, models["mine_1"].id)]
    client.post(_choose_url(world, models["mine_2"]))  # replaces the first choice
    client.post(_choose_url(world, models["mine_other_exercise"]))
    assert _showcases() == sorted(
        [
            (me, first.exercise_id, models["mine_2"].id),
            (me, second.exercise_id, models["mine_other_exercise"].id),
        ]
    )
    html = client.get(_url(world)).content.decode()
    chosen = html.split(f'id="model-{models["mine_2"].id}"', 1)[1].split("</tr>", 1)[0]
    assert "In the showcase" in chosen and "Use this one" not in chosen
    unchosen = html.split(f'id="model-{models["mine_1"].id}"', 1)[1].split("</tr>", 1)[0]
    assert "Use this one" in unchosen


def test_a_teacher_sees_every_model_filters_by_exercise_and_the_showcase_by_accuracy(registry):
    world, _first, second, other, models = registry
    page_client_for(world.learner.user).post(_choose_url(world, models["mine_2"]))
    page_client_for(other).post(_choose_url(world, models["theirs"]))
    teacher = page_client_for(world.teacher.user)
    html = teacher.get(_url(world)).content.decode()
    assert sorted(_rows(html, "models")) == sorted(f"model-{m.id}" for m in models.values())
    # Best accuracy first: the trained model, then the other learner's untrained one.
    assert _rows(html, "showcase-table") == [
        f"showcase-{models['mine_2'].id}",
        f"showcase-{models['theirs'].id}",
    ]
    assert "Use this one" not in html
    filtered = teacher.get(_url(world), {"exercise": str(second.exercise_id)}).content.decode()
    assert _rows(filtered, "models") == [f"model-{models['mine_other_exercise'].id}"]
    assert 'id="showcase-table"' not in filtered  # nobody chose a model of the second exercise
    nonsense = teacher.get(_url(world), {"exercise": "not-an-id"}).content.decode()
    assert len(_rows(nonsense, "models")) == 4


def test_the_course_pages_link_the_registry(registry):
    world, *_ = registry
    learner_page = page_client_for(world.learner.user).get(
        reverse(
            "my-course", kwargs={"tenant_slug": world.tenant.slug, "course_id": world.course.id}
        )
    )
    teacher_page = page_client_for(world.teacher.user).get(
        reverse(
            "teach-course", kwargs={"tenant_slug": world.tenant.slug, "course_id": world.course.id}
        )
    )
    for page in (learner_page, teacher_page):
        assert f'href="{_url(world)}" id="course-models-link"' in page.content.decode()


def test_showcasing_a_model_one_did_not_train_is_refused_and_changes_nothing(registry, tenant_b):
    world, _first, _second, _other, models = registry
    learner = page_client_for(world.learner.user)
    # Another learner's model: not even visible.
    assert learner.post(_choose_url(world, models["theirs"])).status_code == 404
    # A teacher may see it but did not train it.
    assert (
        page_client_for(world.teacher.user).post(_choose_url(world, models["mine_1"])).status_code
        == 403
    )
    # Another tenant's learner, with this tenant's ids, under either slug.
    outsider = page_client_for(tenant_b.learner.user)
    assert outsider.post(_choose_url(world, models["mine_1"])).status_code == 404
    elsewhere = reverse(
        "course-models-showcase",
        kwargs={
            "tenant_slug": tenant_b.tenant.slug,
            "course_id": tenant_b.course.id,
            "model_id": models["mine_1"].id,
        },
    )
    assert outsider.post(elsewhere).status_code == 404
    # A model of the course under another course's id (one the learner takes too).
    second_course = CourseFactory(tenant=world.tenant)
    EnrollmentFactory(course=second_course, user=world.learner.user)
    assert (
        learner.post(_choose_url(world, models["mine_1"], course=second_course)).status_code == 404
    )
    # Only POST.
    assert learner.get(_choose_url(world, models["mine_1"])).status_code == 405
    assert _showcases() == []


def test_the_registry_is_for_the_course_s_learners_and_teachers_only(registry, tenant_b):
    world, *_ = registry
    stranger = MembershipFactory(tenant=world.tenant, role=Role.LEARNER).user  # not enrolled
    other_teacher = MembershipFactory(tenant=world.tenant, role=Role.TEACHER).user
    for user in (stranger, other_teacher, tenant_b.learner.user, tenant_b.teacher.user):
        assert page_client_for(user).get(_url(world)).status_code == 404
    foreign = reverse(
        "course-models", kwargs={"tenant_slug": tenant_b.tenant.slug, "course_id": world.course.id}
    )
    assert page_client_for(tenant_b.teacher.user).get(foreign).status_code == 404
    assert page_client_for(world.admin.user).get(_url(world)).status_code == 200
