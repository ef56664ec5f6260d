"""The API keeps the promises of its OpenAPI schema to a real client: Schemathesis' CLI, over HTTP
against the live ASGI server (uvicorn, as production runs), sends generated valid and invalid
requests to every operation of /api/schema/ as a learner, a teacher, a tenant administrator and
a platform administrator (real tokens), and every answer must be documented: its status, its
content type and its body's schema, never a 5xx, invalid data refused, undeclared methods 405.

tests/schemathesis.toml holds the run's settings (checks, seed, examples, the objects' ids);
docs/api.md says how to run it by hand. The deep "coverage" phase (every boundary and invalid
value the schema defines, undeclared methods) runs where a role reaches the operation's own
logic; elsewhere a fuzzing pass of a few examples per operation keeps the suite fast.
"""

import json
import os
import subprocess
import sys

import pytest
from knox.models import AuthToken

from tests.conftest import ROOT, api_client_for
from tests.factories import EnrollmentFactory, InvitationFactory, LessonFactory, MembershipFactory
from tests.snapshots import db_snapshot
from tests.urlmap import example_values

CONFIG = ROOT / "tests" / "schemathesis.toml"
TENANT_PATHS = "^/api/v1/t/"

# Per role: the phases, and the operations (a path regex) left to the fuzzing phase alone.
# Learners and teachers are refused most of what administrators may do (403) before any input
# is read, so the deep phase runs as the tenant administrator (who teaches every course) and,
# outside tenants, as the platform administrator (not a member of the tenant, whose routes
# answer them 404 whatever they send).
RUNS = {
    "learner": ("fuzzing", None),
    "teacher": ("fuzzing", None),
    "admin": ("coverage,fuzzing", None),
    "platform_admin": ("coverage,fuzzing", "^/api/v1/t/"),
}


def _token(user) -> str:
    return AuthToken.objects.create(user=user)[1]


def _environment(world, user) -> dict[str, str]:
    """The variables tests/schemathesis.toml reads: ids of the tenant's objects, and spare ones
    for the DELETE operations (so that the others keep theirs)."""
    values = {f"AULA_{name.upper()}": str(value) for name, value in example_values(world).items()}
    values |= {
        "AULA_SPARE_LESSON_ID": LessonFactory(course=world.course).id,
        "AULA_SPARE_ENROLLMENT_ID": EnrollmentFactory(
            course=world.course,
            user=MembershipFactory(tenant=world.tenant).user,
        ).id,
        "AULA_SPARE_MEMBERSHIP_ID": MembershipFactory(tenant=world.tenant).id,
        "AULA_SPARE_INVITATION_ID": InvitationFactory(tenant=world.tenant).id,
        # Revoking a token ends it: that operation is sent one of its own.
        "AULA_REVOKE_TOKEN": _token(user),
    }
    return {name: str(value) for name, value in values.items()}


def _schemathesis(url: str, token: str, role: str, env: dict, folder) -> tuple:
    phases, fuzz_only = RUNS[role]
    config = folder / "schemathesis.toml"
    config.write_text(
        CONFIG.read_text()
        + ("" if fuzz_only is None else FUZZ_ONLY.format(paths=json.dumps(fuzz_only)))
    )
    report = folder / "report.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "run",
            f"{url}/api/schema/",
            "--header",
            f"Authorization: Token {token}",
            "--phases",
            phases,
            "--report",
            "json",
            "--report-json-path",
            str(report),
        ],
        cwd=folder,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result, json.loads(report.read_text()) if report.exists() else None


FUZZ_ONLY = """
[[operations]]
include-path-regex = {paths}
phases.coverage.enabled = false
"""


def _readable(result) -> str:
    """The CLI's failures and summary, long lines (generated bodies) cut."""
    text = result.stdout
    start = text.find("=== FAILURES ===")
    text = text[text.rfind("\n", 0, start) + 1 :] if start >= 0 else text[-8_000:]
    lines = [line if len(line) <= 400 else f"{line[:400]} [...]" for line in text.splitlines()]
    return "\n".join([*lines[:600], result.stderr[-3_000:]])


@pytest.mark.parametrize("role", list(RUNS))
def test_every_operation_keeps_to_the_schema(
    role,
    asgi_server,
    transactional_db,
    tenant_a,
    platform_admin,
    tmp_path,
    record_property,
):
    user = platform_admin if role == "platform_admin" else getattr(tenant_a, role).user
    env = _environment(tenant_a, user)
    result, report = _schemathesis(asgi_server, _token(user), role, env, tmp_path)
    output = _readable(result)
    assert report is not None, output
    assert (result.returncode, report["failures"], report["errors"]) == (0, [], []), output
    operations = report["operations"]
    assert operations["tested"] == operations["selected"] == operations["total"] > 0, output
    requests = report["test_cases"]["generated"]  # one request each
    record_property("schemathesis_requests", requests)
    print(f"{role}: {operations['tested']} operations, {requests} requests")


# --- What Schemathesis found, each pinned by a test of its own --------------------------------


def _refused(client, method, url, payload, *, status) -> dict:
    before = db_snapshot()
    response = getattr(client, method)(url, payload, format="json")
    assert response.status_code == status, response.content
    assert db_snapshot() == before
    return response


@pytest.mark.parametrize(
    "query, name, message",
    [
        ("page_size=null", "page_size", "A whole number from 1 to 200."),
        ("page_size=", "page_size", "A whole number from 1 to 200."),
        ("page_size=0", "page_size", "A whole number from 1 to 200."),
        ("page_size=201", "page_size", "A whole number from 1 to 200."),
        ("page_size=1.5", "page_size", "A whole number from 1 to 200."),
        ("page=abc", "page", "A whole number from 1 to 1000000000."),
        ("page=0", "page", "A whole number from 1 to 1000000000."),
        ("page=last", "page", "A whole number from 1 to 1000000000."),
    ],
)
def test_a_page_or_page_size_out_of_range_is_a_400_naming_it(tenant_a, query, name, message):
    client = api_client_for(tenant_a.admin.user)
    response = _refused(client, "get", f"/api/v1/t/alpha/members/?{query}", None, status=400)
    assert response.json()["error"]["code"] == "invalid"
    assert response.json()["error"]["fields"] == {name: [message]}


def test_a_page_size_in_range_is_kept(tenant_a):
    response = api_client_for(tenant_a.admin.user).get("/api/v1/t/alpha/members/?page_size=2")
    assert response.status_code == 200
    assert (response.json()["count"], len(response.json()["results"])) == (3, 2)


@pytest.mark.parametrize(
    "path, payload, field, message",
    [
        ("courses/", {"slug": "new", "title": "New", "summary": 0}, "summary", "Must be a string."),
        ("skills/", {"slug": 7, "name": "Seven"}, "slug", "Must be a string."),
        (
            "skills/",
            {"slug": "s", "name": "S", "prerequisites": [12]},
            "prerequisites",
            "Must be a string.",
        ),
        (
            "tutor/settings/",
            {"endpoint_url": "", "model": 0, "tokens_per_month": 1},
            "model",
            "Must be a string.",
        ),
        (
            "courses/{course}/lessons/",
            {"title": "L", "position": "2"},
            "position",
            "Must be a whole number.",
        ),
        (
            "courses/{course}/lessons/",
            {"title": "L", "position": True},
            "position",
            "Must be a whole number.",
        ),
        (
            "submissions/{submission}/grade/",
            {"score": 50, "reason": "Fair."},
            "score",
            'Must be a decimal number written as a string, e.g. "12.50".',
        ),
    ],
)
def test_a_value_of_another_json_type_is_refused_not_converted(
    tenant_a, path, payload, field, message
):
    """DRF alone stored 0 as "0", took "2" for 2 and a number for a UUID or a decimal."""
    url = "/api/v1/t/alpha/" + path.format(
        course=tenant_a.course.id, submission=tenant_a.submission.id
    )
    method = "put" if path.startswith("tutor") else "post"
    response = _refused(api_client_for(tenant_a.admin.user), method, url, payload, status=400)
    assert response.json()["error"]["fields"] == {field: [message]}


def test_a_method_an_endpoint_lacks_is_a_405_with_allow_for_its_members(tenant_a, tenant_b):
    url = "/api/v1/t/alpha/members/"
    # A learner (the endpoint needs a teacher) was told 403 for a method it does not have.
    response = _refused(api_client_for(tenant_a.learner.user), "put", url, {}, status=405)
    assert response["Allow"] == "GET, HEAD, OPTIONS"
    assert response.json()["error"]["code"] == "method_not_allowed"
    # Who may not know the tenant still learns nothing, and who is anonymous is asked to log in.
    _refused(api_client_for(tenant_b.admin.user), "put", url, {}, status=404)
    _refused(api_client_for(None), "put", url, {}, status=401)


def test_patching_a_member_with_no_field_changes_nothing(tenant_a):
    """It reached the service without a role: a 500."""
    url = f"/api/v1/t/alpha/members/{tenant_a.learner.id}/"
    response = _refused(api_client_for(tenant_a.admin.user), "patch", url, {}, status=200)
    assert response.json()["role"] == "learner"
