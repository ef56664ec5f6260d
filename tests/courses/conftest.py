"""Helpers for the courses API tests: URLs under a tenant, and refusals that change nothing."""

from tests.snapshots import db_snapshot


def url(world, path: str) -> str:
    return f"/api/v1/t/{world.tenant.slug}/{path}"


def refused(client, method: str, target: str, status: int, body=None) -> dict:
    """`method target` is answered `status` in the error shape and writes nothing; its error."""
    before = db_snapshot()
    response = getattr(client, method)(target, data=body, format="json")
    assert response.status_code == status, (method, target, response.content[:500])
    assert db_snapshot() == before, (method, target)
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"}
    return error
