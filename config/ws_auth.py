"""Websocket authentication and origin checks.

Browsers send an ``Origin`` header and carry the portal session cookie: the origin must be one of
ALLOWED_HOSTS (AllowedHostsOriginValidator), or the handshake is refused, which is what stops
another site's page from riding a customer's session (cross-site websocket hijacking).

Native mobile clients often send no ``Origin``. Their connection is allowed, but cookies are then
ignored: only a credential in the handshake authenticates it — ``Authorization: Bearer <JWT>``,
``Authorization: Api-Key <key>`` / ``X-API-Key: <key>`` (scope ``read`` required), or, for clients
that cannot set headers, ``?token=<JWT>`` in the URL.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.auth import AuthMiddleware
from channels.db import database_sync_to_async
from channels.security.websocket import AllowedHostsOriginValidator, OriginValidator
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.contrib.auth.models import AnonymousUser


class OriginOrTokenValidator:
    """AllowedHostsOriginValidator for browsers; Origin-less (non-browser) clients pass through
    flagged, so that only a credential in their handshake can authenticate them."""

    def __init__(self, application: Any) -> None:
        self.application = application
        self.browser_validator: OriginValidator = AllowedHostsOriginValidator(application)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        headers = dict(scope.get("headers") or [])
        if b"origin" not in headers:
            return await self.application({**scope, "browser": False}, receive, send)
        return await self.browser_validator({**scope, "browser": True}, receive, send)


@database_sync_to_async
def _user_for_credentials(
    headers: dict[bytes, bytes], query: dict[str, list[str]]
) -> tuple[Any, set[str] | None]:
    from django.conf import settings
    from django.utils.module_loading import import_string

    authorization = headers.get(b"authorization", b"").decode("latin-1").strip()
    api_key = headers.get(b"x-api-key", b"").decode("latin-1").strip()
    if authorization.lower().startswith("api-key "):
        api_key = authorization[8:].strip()
    if api_key:
        resolver = getattr(settings, "TANDEM_WS_API_KEY_RESOLVER", "")
        if resolver:
            result = import_string(resolver)(api_key)
            if result is not None:
                user, scopes = result
                return user, set(scopes)
        return AnonymousUser(), None
    token = ""
    if authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    elif query.get("token"):
        token = query["token"][0]
    if token:
        resolver = getattr(settings, "TANDEM_WS_JWT_RESOLVER", "")
        user = import_string(resolver)(token) if resolver else None
        return (user if user is not None else AnonymousUser()), None
    return AnonymousUser(), None


class TokenOrSessionAuthMiddleware:
    """Session auth for browsers (origin already checked); handshake credentials for the rest."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.session_stack = CookieMiddleware(SessionMiddleware(AuthMiddleware(inner)))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        headers = dict(scope.get("headers") or [])
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        has_credentials = b"authorization" in headers or b"x-api-key" in headers or "token" in query
        if has_credentials or not scope.get("browser"):
            user, scopes = await _user_for_credentials(headers, query)
            return await self.inner({**scope, "user": user, "auth_scopes": scopes}, receive, send)
        return await self.session_stack(scope, receive, send)


def websocket_stack(app: Any) -> Any:
    return OriginOrTokenValidator(TokenOrSessionAuthMiddleware(app))
