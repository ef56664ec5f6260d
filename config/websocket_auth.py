"""Who a websocket connection is: an API token in its Authorization header ("Token <key>",
as the HTTP API takes it), else the session cookie behind the Origin check. A token is not
ambient authority, so a token connection is not held to the Origin check; a cookie one from a
foreign origin is refused before the handshake completes (cross-site websocket hijacking). A
connection carrying `?ticket=` is left anonymous here: the consumer it names redeems the ticket
(apps.jobs.tickets), and no cookie is read for it."""

from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import AllowedHostsOriginValidator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from knox.auth import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed


def _header(scope, name: bytes) -> bytes | None:
    return next((value for key, value in scope.get("headers", []) if key == name), None)


def has_ticket(scope) -> bool:
    return "ticket" in parse_qs(scope.get("query_string", b"").decode("latin-1"))


@database_sync_to_async
def _token_user(header: bytes):
    """The user of a valid "Token <key>" header; AnonymousUser for anything else."""
    prefix = settings.REST_KNOX["AUTH_HEADER_PREFIX"].encode()
    parts = header.split()
    if len(parts) != 2 or parts[0] != prefix:
        return AnonymousUser()
    try:
        user, _ = TokenAuthentication().authenticate_credentials(parts[1])
    except (AuthenticationFailed, UnicodeDecodeError):
        return AnonymousUser()
    return user


class WebsocketAuth:
    def __init__(self, inner):
        self.inner = inner
        self.by_cookie = AllowedHostsOriginValidator(AuthMiddlewareStack(inner))

    async def __call__(self, scope, receive, send):
        header = _header(scope, b"authorization")
        if header is not None:
            user = await _token_user(header)
            return await self.inner({**scope, "user": user}, receive, send)
        if has_ticket(scope):
            return await self.inner({**scope, "user": AnonymousUser()}, receive, send)
        return await self.by_cookie(scope, receive, send)
