"""What people read is written for them: no API or developer wording on pages, in the admin
or in the API's documentation."""

import json
import re

import pytest
from drf_spectacular.generators import SchemaGenerator

from apps.courses.builder import builder_words
from tests.conftest import ROOT, page_client_for
from tests.console.support import job_in
from tests.courses.test_teacher_pages import EXERCISE_FORM, _course_url

pytestmark = pytest.mark.django_db


def test_every_api_operation_has_its_own_description():
    """drf-spectacular takes a view's docstring (or its base class's) as the operation's
    description in /api/docs/: each says what the operation does, none the base view's notes."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = [
        (method.upper(), path, operation.get("description", ""))
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]
    assert len(operations) >= 60
    assert [(m, p) for m, p, text in operations if not text.strip()] == []
    internal = ("input_serializers", "validated_input", "SomeInputSerializer", "Declare `")
    assert [(m, p) for m, p, text in operations if any(w in text for w in internal)] == []
    quota = next(t for m, p, t in operations if (m, p) == ("GET", "/api/v1/t/{tenant_slug}/quota/"))
    assert "GPU-seconds (3600 are one GPU hour)" in " ".join(quota.split())


def test_the_admin_names_skill_parameters_in_plain_words(platform_admin):
    html = page_client_for(platform_admin).get("/admin/").content.decode()
    assert "Skill parameters" in html
    assert "paramss" not in html.lower()


@pytest.mark.parametrize(
    ("state", "sentence"),
    [
        ("cancelled", "No grade: the run was cancelled."),
        ("timed_out", "No grade: the run ran out of time."),
        ("failed", "No grade: the run failed."),
    ],
)
def test_a_run_without_a_grade_says_why_in_a_sentence(tenant_a, state, sentence):
    job = job_in(tenant_a, state=state)
    url = f"/t/alpha/runs/{job.submission.id}/result/"
    html = page_client_for(tenant_a.learner.user).get(url).content.decode()
    assert f'<p id="grade">{sentence}' in html


def test_a_bad_starter_model_is_shown_beside_the_builder_not_as_a_hidden_field(tenant_a):
    bad = json.dumps({"version": 1, "layers": [], "training": {}})
    response = page_client_for(tenant_a.teacher.user).post(
        _course_url(tenant_a, "exercises/new/"), {**EXERCISE_FORM, "starter_spec": bad}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Hidden field" not in html
    assert 'id="starter-errors"' in html


def test_the_builder_labels_settings_in_words_not_runtime_names(tenant_a):
    response = page_client_for(tenant_a.learner.user).get(
        f"/t/alpha/assignments/{tenant_a.assignment.id}/"
    )
    config = response.context["builder"]
    assert config["words"] == builder_words()
    fields, choices = config["words"]["fields"], config["words"]["choices"]
    assert (fields["lr"], fields["optimizer.type"], fields["p"]) == (
        "Learning rate",
        "Optimizer",
        "Drop probability",
    )
    assert (choices["sgd"], choices["mse"]) == (
        "SGD (stochastic gradient descent)",
        "Mean squared error",
    )
    # Every setting of the optimizer and of every layer has a label.
    schema = config["schema"]["$defs"]
    names = {
        name
        for key, definition in schema.items()
        if key.startswith("layer_")
        for name in definition["properties"]
        if name not in ("type", "layers")
    }
    assert sorted(names - set(fields)) == []


def test_every_sentence_the_builder_says_is_in_its_words():
    """builder.js and assignment.js take their sentences from the page (translated there):
    each key they use has one."""
    builder = (ROOT / "static/js/builder.js").read_text()
    assignment = (ROOT / "static/js/assignment.js").read_text()  # `words` is the messages there
    used = set(re.findall(r'say\(\s*"(\w+)"', builder))
    used |= set(re.findall(r'say\(count === 1 \? "(\w+)" : "(\w+)"', builder)[0])
    used |= set(re.findall(r"\bwords\.(\w+)", assignment)) - {"messages"}
    messages = builder_words()["messages"]
    assert len(used) >= 20
    assert sorted(used - set(messages)) == []
