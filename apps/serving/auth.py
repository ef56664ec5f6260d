"""Model API keys at the prediction endpoint: `Authorization: Bearer <key>` authenticates as the
key's creator with the key as the credential (request.auth), and each key has its own rate."""

from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.throttling import SimpleRateThrottle

from apps.serving.models import ModelApiKey
from apps.serving.selectors import model_key_by_secret


class ModelKeyAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            refusal = _("Send the key as: Authorization: Bearer <key>.")
            raise exceptions.AuthenticationFailed(refusal)
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("This API key is not valid.")) from None
        key = model_key_by_secret(raw=raw)  # in the tenant's scope: another tenant's is unknown
        if key is None:
            raise exceptions.AuthenticationFailed(_("This API key is not valid."))
        if key.is_revoked:
            raise exceptions.AuthenticationFailed(
                _("This API key was revoked on %(when)s; ask the model's owner for a new one.")
                % {"when": key.revoked_at.isoformat(timespec="seconds")}
            )
        if not key.created_by.is_active:
            raise exceptions.AuthenticationFailed(_("This API key's owner is no longer active."))
        return key.created_by, key

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class ModelKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = ModelKeyAuthentication
    name = "modelKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A model API key (one model's predictions only).",
        }


class ModelKeyThrottle(SimpleRateThrottle):
    """settings REST_FRAMEWORK DEFAULT_THROTTLE_RATES["model_key"] per key; people are not
    throttled here (their tenant's daily allowance still counts them)."""

    scope = "model_key"

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, ModelApiKey):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
