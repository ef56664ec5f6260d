"""Exercises: teachers create, read and change them; every cross-field rule, the dataset, the
starter spec (checked by the runtime on that dataset) and the starter code answer with errors
under the field at fault, and nothing is written."""

import pytest
from django.core.exceptions import ValidationError
from django_scopes import scopes_disabled

from apps.courses import services
from apps.courses.models import Exercise
from runtime.datasets import dataset_names
from runtime.templates import TEMPLATES
from tests.conftest import api_client_for
from tests.courses.bodies import exercise_body, page
from tests.courses.conftest import refused, url
from tests.factories import ExerciseFactory, SkillFactory

CNN = TEMPLATES["cifar-cnn"]


def _create(**fields):
    return {
        "title": "Shapes",
        "dataset": "shapes",
        "min_metric": 0.3,
        "target_metric": 0.9,
        **fields,
    }


@pytest.mark.django_db
def test_a_teacher_creates_an_exercise_with_every_field(tenant_a):
    client = api_client_for(tenant_a.teacher.user)
    cnn = SkillFactory(tenant=tenant_a.tenant, slug="cnn", name="CNNs")
    body = _create(
        instructions="Classify *shapes*.\n",
        metric="balanced_accuracy",
        max_score="50.50",
        param_budget=70000,
        param_penalty=0.25,
        max_seconds=300,
        max_epochs=30,
        allow_spec=True,
        allow_code=True,
        starter_spec=CNN.spec,
        starter_code=CNN.code,
        skills=[str(cnn.id)],
    )
    response = client.post(
        url(tenant_a, f"courses/{tenant_a.course.id}/exercises/"), body, format="json"
    )
    assert response.status_code == 201, response.content
    with scopes_disabled():
        exercise = Exercise.objects.get(pk=response.json()["id"])
    assert (exercise.course, exercise.tenant, exercise.metric, str(exercise.max_score)) == (
        tenant_a.course,
        tenant_a.tenant,
        "balanced_accuracy",
        "50.50",
    )
    assert (exercise.starter_spec, exercise.starter_code) == (CNN.spec, CNN.code)
    assert exercise.allowed_kinds == ["spec", "code"]
    assert response.json() == exercise_body(exercise, [cnn])


@pytest.mark.django_db
def test_an_exercise_takes_the_models_defaults(tenant_a):
    client = api_client_for(tenant_a.teacher.user)
    response = client.post(
        url(tenant_a, f"courses/{tenant_a.course.id}/exercises/"), _create(), format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert {
        key: body[key]
        for key in (
            "metric",
            "max_score",
            "param_budget",
            "param_penalty",
            "max_seconds",
            "max_epochs",
            "allowed_kinds",
            "starter_spec",
            "starter_code",
            "skills",
            "instructions",
        )
    } == {
        "metric": "accuracy",
        "max_score": "100.00",
        "param_budget": None,
        "param_penalty": 0.0,
        "max_seconds": 300,
        "max_epochs": None,
        "allowed_kinds": ["spec"],
        "starter_spec": None,
        "starter_code": "",
        "skills": [],
        "instructions": "",
    }


@pytest.mark.django_db
def test_teachers_list_and_read_a_courses_exercises(tenant_a):
    second = ExerciseFactory(course=tenant_a.course, title="Another XOR")
    client = api_client_for(tenant_a.teacher.user)
    listing = client.get(url(tenant_a, f"courses/{tenant_a.course.id}/exercises/"))
    assert listing.json() == page(
        [exercise_body(second, []), exercise_body(tenant_a.exercise, [tenant_a.skill])]
    )
    one = client.get(url(tenant_a, f"exercises/{tenant_a.exercise.id}/"))
    assert one.json() == exercise_body(tenant_a.exercise, [tenant_a.skill])


@pytest.mark.django_db
def test_a_new_dataset_rechecks_the_starter_spec(tenant_a):
    client = api_client_for(tenant_a.teacher.user)
    target = url(tenant_a, f"exercises/{tenant_a.exercise.id}/")
    # The XOR starter does not fit 32x32 colour images in 10 classes.
    error = refused(client, "patch", target, 400, {"dataset": "shapes"})
    assert error["fields"] == {
        "starter_spec": [
            "layer 1 (linear) expects 2 inputs but receives [3, 32, 32] and works on its last "
            "dimension (32); add a flatten layer before it",
            "binary_cross_entropy is for two-class tasks, but this task has 10 classes; use "
            "cross_entropy",
        ]
    }
    response = client.patch(
        target,
        {"dataset": "shapes", "starter_spec": CNN.spec, "min_metric": 0.3, "skills": []},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json() == exercise_body(tenant_a.exercise, [])
    assert (tenant_a.exercise.dataset, tenant_a.exercise.starter_spec) == ("shapes", CNN.spec)
    # None is a value in a PATCH: it clears the starter.
    response = client.patch(target, {"starter_spec": None}, format="json")
    assert response.json()["starter_spec"] is None


@pytest.mark.django_db
def test_exercise_rules_name_their_field_and_change_nothing(tenant_a):
    client = api_client_for(tenant_a.teacher.user)
    create = url(tenant_a, f"courses/{tenant_a.course.id}/exercises/")
    error = refused(client, "post", create, 400, _create(min_metric=0.9, target_metric=0.9))
    assert error["fields"] == {
        "target_metric": [
            "The target (0.9) must be above the minimum (0.9): the score rises from one to "
            "the other."
        ]
    }
    error = refused(client, "post", create, 400, _create(allow_spec=False, allow_code=False))
    assert error["fields"] == {"allow_spec": ["Allow spec submissions, code submissions or both."]}
    error = refused(client, "post", create, 400, _create(dataset="imagenet"))
    assert error["fields"] == {
        "dataset": [
            f"Unknown dataset 'imagenet'; use one of {dataset_names()} or the name of a ready "
            "version of your own datasets."
        ]
    }
    error = refused(client, "post", create, 400, _create(starter_code="def build_model(:\n"))
    assert error["fields"] == {
        "starter_code": ["Syntax error on line 1, column 17: invalid syntax."]
    }
    error = refused(client, "post", create, 400, _create(starter_code="import torch\n"))
    assert error["fields"] == {
        "starter_code": [
            "Your code must define a function build_model(input_shape, num_classes) that "
            "returns a torch.nn.Module."
        ]
    }
    # A document that does not parse is refused before the rest is looked at.
    error = refused(client, "post", create, 400, {"title": "X", "starter_spec": {"layers": []}})
    required = ["This field is required."]
    assert error["fields"] == {
        "dataset": required,
        "min_metric": required,
        "target_metric": required,
        "starter_spec": [
            "the spec needs version, which must be 1",
            "layers must list at least one layer",
            "the spec needs training, an object with optimizer, epochs and batch_size",
        ],
    }
    error = refused(client, "post", create, 400, _create(max_seconds=0, param_penalty=2))
    assert error["fields"] == {
        "max_seconds": ["Ensure this value is greater than or equal to 1."],
        "param_penalty": ["Ensure this value is less than or equal to 1.0."],
    }


@pytest.mark.django_db
def test_the_service_refuses_an_unknown_dataset_and_foreign_skills(tenant_a, tenant_b):
    with pytest.raises(ValidationError) as caught:
        services.exercise_create(
            course=tenant_a.course,
            title="X",
            dataset="imagenet",
            min_metric=0.5,
            target_metric=0.9,
            starter_spec=TEMPLATES["xor"].spec,
            skills=[tenant_b.skill],
            max_score=0,
        )
    assert caught.value.message_dict == {
        "dataset": [
            f"Unknown dataset 'imagenet'; use one of {dataset_names()} or the name of a ready "
            "version of your own datasets."
        ],
        "skills": ["Every skill must belong to this tenant."],
        "max_score": ["The maximum score must be above 0."],
    }
    with scopes_disabled():
        assert Exercise.objects.filter(title="X").count() == 0
