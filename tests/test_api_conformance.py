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

from tests.browser.conftest import asgi_server  # noqa: F401 (a fixture: uvicorn on config.asgi)
from tests.conftest import ROOT
from tests.factories import EnrollmentFactory, InvitationFactory, LessonFactory, MembershipFactory
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
        [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
         f"{url}/api/schema/", "--header", f"Authorization: Token {token}", "--phases", phases,
         "--report", "json", "--report-json-path", str(report)],
        cwd=folder, env={**os.environ, **env}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
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
    asgi_server,  # noqa: F811 (the fixture imported above)
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
