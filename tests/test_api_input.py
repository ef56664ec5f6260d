"""Bad input on every API endpoint answers 400 (or 413) in the error shape, never 500, and
writes nothing. Endpoints and their fields come from the OpenAPI schema, so new endpoints are
covered as they are added (and an endpoint missing from the schema fails the first test)."""

import json
import re

import pytest
from drf_spectacular.generators import SchemaGenerator

from apps.core.middleware import RequestBodyLimitMiddleware
from tests.conftest import api_client_for
from tests.serving.worlds import world_model_row
from tests.snapshots import db_snapshot
from tests.urlmap import all_routes, example_values

BODY_METHODS = ("post", "put", "patch", "delete")


def _schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations():
    """(path, method, request schema or None) for every operation that may carry a body."""
    schema = _schema()
    components = schema["components"]["schemas"]
    for path, item in sorted(schema["paths"].items()):
        for method in BODY_METHODS:
            if method not in item:
                continue
            body = item[method].get("requestBody", {}).get("content", {})
            if body and "application/json" not in body:
                continue  # raw bytes (a dataset upload's chunk): tests/datasets/test_upload_api
            ref = body.get("application/json", {}).get("schema", {}).get("$ref")
            yield path, method, components[ref.rsplit("/", 1)[1]] if ref else None


OPERATIONS = list(_operations())


def _fill(path: str, world) -> str:
    values = example_values(world)
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), path)


def _wrong_value(prop: dict):
    if prop.get("type") == "boolean":
        return "maybe"
    if prop.get("type") in ("integer", "number"):
        return "twelve"
    if prop.get("type") == "object":
        return "a string where an object belongs"
    if "enum" in prop or "$ref" in prop or "allOf" in prop:
        return "not-one-of-the-choices"
    return {"an": "object where a string belongs"}


def _assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body["error"]


def test_every_api_route_is_in_the_schema():
    documented = {re.sub(r"\{\w+\}", "{}", path) for path in _schema()["paths"]}
    routed = {"/" + re.sub(r"<(?:\w+:)?\w+>", "{}", r.route) for r in all_routes() if r.is_api}
    assert routed <= documented, routed - documented


@pytest.fixture
def caller(tenant_a, platform_admin):
    """A platform administrator reaches every endpoint, so refusals here are about input. The
    world gets a trained model, so that its endpoints read the body (example_values' model_id)."""
    tenant_a.model_id = world_model_row(tenant_a).id
    return api_client_for(platform_admin)


@pytest.mark.django_db
@pytest.mark.parametrize("path,method,schema", OPERATIONS, ids=lambda v: str(v)[:60])
def test_malformed_json_is_400(caller, tenant_a, path, method, schema):
    url = _fill(path, tenant_a)
    before = db_snapshot()
    # `null` is no body at all to an endpoint that takes none, so it is bad input only where
    # a body is expected.
    bad_bodies = ['{"email": ', "[1, 2, 3]", '"just a string"'] + (["null"] if schema else [])
    for raw in bad_bodies:
        response = getattr(caller, method)(url, data=raw, content_type="application/json")
        error = _assert_error(response, 400)
        assert error["code"] in ("parse_error", "invalid")
    assert db_snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize("path,method,schema", OPERATIONS, ids=lambda v: str(v)[:60])
def test_unknown_fields_are_400_and_named(caller, tenant_a, path, method, schema):
    before = db_snapshot()
    response = getattr(caller, method)(
        _fill(path, tenant_a), data={"no_such_field": 1}, format="json"
    )
    error = _assert_error(response, 400, "invalid")
    if schema is not None:
        assert error["fields"] == {
            "no_such_field": ["Unknown field; this endpoint does not accept it."]
        }
    else:
        assert error["fields"] == {"non_field_errors": ["This endpoint takes no request body."]}
    assert db_snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path,method,schema",
    [op for op in OPERATIONS if op[2] and op[2].get("required")],
    ids=lambda v: str(v)[:60],
)
def test_missing_required_fields_are_400_and_named(caller, tenant_a, path, method, schema):
    before = db_snapshot()
    response = getattr(caller, method)(_fill(path, tenant_a), data={}, format="json")
    error = _assert_error(response, 400, "invalid")
    assert set(error["fields"]) == set(schema["required"])
    assert all(msgs == ["This field is required."] for msgs in error["fields"].values())
    assert db_snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path,method,schema", [op for op in OPERATIONS if op[2]], ids=lambda v: str(v)[:60]
)
def test_wrong_types_are_400_and_named(caller, tenant_a, path, method, schema):
    before = db_snapshot()
    for name, prop in schema["properties"].items():
        if prop.get("readOnly"):
            continue
        response = getattr(caller, method)(
            _fill(path, tenant_a), data={name: _wrong_value(prop)}, format="json"
        )
        error = _assert_error(response, 400, "invalid")
        assert name in error["fields"], (name, error)
    assert db_snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize("path,method,schema", OPERATIONS, ids=lambda v: str(v)[:60])
def test_a_body_over_its_limit_is_413(caller, tenant_a, path, method, schema):
    """1 MiB, or its path's own limit (the prediction API's is 8 MiB)."""
    before = db_snapshot()
    url = _fill(path, tenant_a)
    limit = RequestBodyLimitMiddleware.limit_for(url)
    assert limit == (8 if path.endswith("/predict") else 1) * 1024 * 1024
    body = json.dumps({"padding": "x" * limit})
    response = getattr(caller, method)(url, data=body, content_type="application/json")
    error = _assert_error(response, 413, "request_too_large")
    assert error["message"] == f"The request body is larger than {limit // 1024} KiB."
    assert db_snapshot() == before


def test_there_are_operations_to_check():
    methods = {(path, method) for path, method, _ in OPERATIONS}
    assert ("/api/v1/auth/token/", "post") in methods
    assert ("/api/v1/t/{tenant_slug}/invitations/", "post") in methods
