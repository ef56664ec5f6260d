"""Each assignment's split secret: 32 random bytes of its own, made with it, never in what the
API or the pages give out; and the default of what its learners see follows its dataset."""

import base64
from datetime import timedelta

import pytest
from django.utils import timezone
from django_scopes import scope

from apps.courses import services
from tests.conftest import api_client_for
from tests.factories import ExerciseFactory

pytestmark = pytest.mark.django_db


def _create(world, dataset="xor"):
    exercise = ExerciseFactory(course=world.course, dataset=dataset)
    now = timezone.now()
    with scope(tenant=world.tenant.id):
        return services.assignment_create(
            course=world.course, exercise=exercise, opens_at=now, due_at=now + timedelta(days=1)
        )


def test_every_assignment_draws_a_secret_of_its_own(tenant_a):
    first, second = _create(tenant_a), _create(tenant_a)
    assert len(bytes(first.split_secret)) == len(bytes(second.split_secret)) == 32
    assert bytes(first.split_secret) != bytes(second.split_secret)


def test_the_secret_is_in_no_answer(tenant_a):
    assignment = _create(tenant_a)
    secret = bytes(assignment.split_secret)
    teacher = api_client_for(tenant_a.teacher.user)
    for url in (
        f"/api/v1/t/{tenant_a.tenant.slug}/courses/{tenant_a.course.id}/assignments/",
        f"/api/v1/t/{tenant_a.tenant.slug}/assignments/{assignment.id}/",
    ):
        body = teacher.get(url).content
        assert b"split_secret" not in body, url
        for form in (secret.hex().encode(), base64.b64encode(secret)):
            assert form not in body, url


def test_the_default_is_practice_on_a_built_in_dataset_and_kaggle_on_a_teachers(tenant_a):
    assert _create(tenant_a, dataset="xor").scores_shown == "grade_live"
    assert _create(tenant_a, dataset="upload:0123").scores_shown == "public_live"
