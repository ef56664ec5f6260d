"""The OpenAPI schema's one source of error responses: each operation lists the failures it can
answer, in the error shape of apps/core/api/errors.py, worked out from how the view is built
(its body, parameters, authentication, permissions, throttles) and the exceptions it declares.

A view declares the errors only it raises with `raises = {"post": [SomeApiException]}`; the
rest follow from the project's base classes and middleware, so a new endpoint is documented
right without a decorator.
"""

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.settings import api_settings

from apps.core.api.serializers import InputSerializer

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every failure of the API has this shape.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {
                    "type": "string",
                    "description": "What went wrong, for programs: e.g. invalid, not_found, "
                    "permission_denied, not_authenticated, throttled, conflict.",
                },
                "message": {"type": "string", "description": "What went wrong, for people."},
                "fields": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "For invalid input: each field's problems, by field name "
                    "(non_field_errors for the request as a whole).",
                },
            },
            "required": ["code", "message", "fields"],
            "additionalProperties": False,
        }
    },
    "required": ["error"],
    "additionalProperties": False,
}

BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

DESCRIPTIONS = {
    "400": "Invalid input: error.fields names each field (or query parameter) and its problem.",
    "401": "Not authenticated, or the credentials are wrong.",
    "403": "Authenticated, but not allowed to do this (a role, a suspended tenant, CSRF).",
    "404": "Not found, or not visible to the caller.",
    "413": "The request body is larger than the limit (REQUEST_BODY_MAX_BYTES, or its path's own).",
    "415": "The request body is not JSON.",
    "429": "Too many requests (or failed logins); Retry-After says when to try again.",
}


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema plus the error responses and closed request bodies."""

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request" and isinstance(serializer, InputSerializer):
            schema["additionalProperties"] = False  # InputSerializer refuses unknown fields
            if type(serializer).__doc__ is None:  # not the base class's note for developers
                schema.pop("description", None)
        return schema

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        error = ResolvedComponent(
            name="Error", type=ResolvedComponent.SCHEMA, object="Error", schema=ERROR_SCHEMA
        )
        self.registry.register_on_missing(error)
        for status_code, description in self.error_statuses().items():
            responses.setdefault(
                status_code,
                {
                    "description": description,
                    "content": {"application/json": {"schema": error.ref}},
                },
            )
        return dict(sorted(responses.items()))

    def error_statuses(self) -> dict[str, str]:
        """Status code -> description of each failure this operation can answer."""
        view, method = self.view, self.method
        statuses: dict[str, str] = {}
        takes_body = method in BODY_METHODS
        has_query = any(p["in"] == "query" for p in self._get_parameters())
        if takes_body or has_query:
            statuses["400"] = DESCRIPTIONS["400"]
        statuses["401"] = DESCRIPTIONS["401"]  # a wrong token is refused even where none is needed
        if self._can_forbid():
            statuses["403"] = DESCRIPTIONS["403"]
        paginated = self._get_paginator() is not None and self._is_list_view()
        if "{" in self.path or paginated:  # paginated: a page past the last
            statuses["404"] = DESCRIPTIONS["404"]
        if takes_body:
            statuses["413"] = DESCRIPTIONS["413"]
            statuses["415"] = DESCRIPTIONS["415"]
        if view.get_throttles():
            statuses["429"] = DESCRIPTIONS["429"]
        for exc in getattr(view, "raises", {}).get(method.lower(), []):
            code, text = str(exc.status_code), " ".join((exc.__doc__ or "").split())
            statuses[code] = " ".join(
                filter(None, (statuses.get(code), text or exc.default_detail))
            )
        return statuses

    def _can_forbid(self) -> bool:
        if "{tenant_slug}" in self.path:
            return True  # a suspended tenant, or a role the operation needs
        view = self.view
        if self.method in BODY_METHODS and any(
            isinstance(a, SessionAuthentication) for a in view.get_authenticators()
        ):
            return True  # CSRF is checked on session-authenticated writes
        # The default permissions (IsAuthenticated, TenantMember) refuse only the unauthenticated
        # (401) outside tenant routes; any other permission class can refuse with 403.
        defaults = (AllowAny, *api_settings.DEFAULT_PERMISSION_CLASSES)
        return any(not isinstance(p, defaults) for p in view.get_permissions())
