"""The OpenAPI schema generates without a warning, validates, and is served with its docs."""

import pytest
from django.core.management import call_command


def test_the_schema_generates_with_no_warning(tmp_path):
    target = tmp_path / "schema.yml"
    # --fail-on-warn turns any warning into a failure; --validate checks it against OpenAPI 3.
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(target))
    text = target.read_text()
    assert text.startswith("openapi: 3.0.3")
    assert "/api/v1/t/{tenant_slug}/invitations/:" in text


@pytest.mark.django_db
def test_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "Aula API"
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    # The UI's assets are served locally (the sidecar), never from a CDN.
    assert b"/static/drf_spectacular_sidecar/swagger-ui-dist/" in docs.content


def _generated() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


ERROR_REF = {"$ref": "#/components/schemas/Error"}


def test_every_operation_documents_its_errors_in_the_error_shape():
    schema = _generated()
    assert schema["components"]["schemas"]["Error"]["required"] == ["error"]
    assert schema["components"]["schemas"]["Error"]["properties"]["error"]["required"] == [
        "code",
        "message",
        "fields",
    ]
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        errors = {code for code in responses if code >= "400"}
        for code in errors:
            assert responses[code]["content"]["application/json"]["schema"] == ERROR_REF
        assert "401" in errors, (method, path)
        if "{" in path:
            assert "404" in errors, (method, path)
        if method in ("post", "put", "patch", "delete"):
            assert {"400", "413", "415"} <= errors, (method, path)
        if path.startswith("/api/v1/t/") or path.startswith("/api/v1/platform/"):
            assert "403" in errors, (method, path)


def test_what_only_some_operations_answer_is_documented_there():
    paths = _generated()["paths"]
    submit = paths["/api/v1/t/{tenant_slug}/assignments/{assignment_id}/submissions/"]
    assert "409" in submit["post"]["responses"] and "409" not in submit["get"]["responses"]
    assert "GPU quota" in submit["post"]["responses"]["409"]["description"]
    for cancel in (
        "/api/v1/t/{tenant_slug}/jobs/{job_id}/cancel/",
        "/api/v1/platform/jobs/{job_id}/cancel/",
    ):
        assert "409" in paths[cancel]["post"]["responses"]
    assert "429" in paths["/api/v1/auth/token/"]["post"]["responses"]
    assert "403" not in paths["/api/v1/auth/token/"]["post"]["responses"]
    assert set(paths["/api/v1/me/"]["get"]["responses"]) == {"200", "401"}


def test_request_bodies_refuse_unknown_fields_and_pages_have_bounds():
    schema = _generated()
    components = schema["components"]["schemas"]
    bodies = [
        operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        for _, _, operation in _operations(schema)
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]
    assert bodies
    # The one body that is not JSON: a dataset upload's chunk, its raw bytes.
    binary = [
        path
        for path, _, operation in _operations(schema)
        if "requestBody" in operation
        and "application/json" not in operation["requestBody"]["content"]
    ]
    assert binary == ["/api/v1/t/{tenant_slug}/datasets/{dataset_slug}/versions/{number}/upload"]
    for ref in bodies:
        assert components[ref.rsplit("/", 1)[1]]["additionalProperties"] is False, ref
    members = schema["paths"]["/api/v1/t/{tenant_slug}/members/"]["get"]["parameters"]
    bounds = {p["name"]: p["schema"] for p in members if p["in"] == "query"}
    assert bounds == {
        "page": {"type": "integer", "minimum": 1, "maximum": 1_000_000_000},
        "page_size": {"type": "integer", "minimum": 1, "maximum": 200},
    }
