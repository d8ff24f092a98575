"""DRF authentication: JWTs bound to a live AuthSession, and Tandem API keys."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication

from accounts import selectors, services
from accounts.models import ApiKey, User

API_KEY_KEYWORD = "Api-Key"
API_KEY_HEADER = "HTTP_X_API_KEY"


class SessionJWTAuthentication(JWTAuthentication):
    """simplejwt, plus: the token's ``sid`` must name a session that is still signed in.

    That is what makes "sign out this device" and "sign out everywhere" end access tokens at
    once rather than when they expire. simplejwt already refuses suspended users
    (``User.is_active``).
    """

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user, token = result
        if not isinstance(user, User):
            raise exceptions.AuthenticationFailed("Unknown user.", code="user_not_found")
        session_id = token.get(services.SID_CLAIM)
        if not session_id or not selectors.auth_session_is_live(
            auth_session_id=session_id, user=user
        ):
            raise exceptions.AuthenticationFailed(
                "This session has been signed out.", code="session_revoked"
            )
        services.auth_session_touch(auth_session_id=session_id, request=request._request)
        return user, token


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Api-Key tdm_<prefix>.<secret>`` or ``X-API-Key: tdm_…``.

    ``request.auth`` is the ApiKey row, which ScopePermission and the throttles read.
    """

    def authenticate(self, request: Request) -> tuple[User, ApiKey] | None:
        raw_key = self._raw_key(request)
        if raw_key is None:
            return None
        api_key = selectors.api_key_resolve(raw_key=raw_key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid API key.", code="api_key_invalid")
        if api_key.revoked_at is not None:
            raise exceptions.AuthenticationFailed(
                "This API key has been revoked.", code="api_key_revoked"
            )
        if api_key.expires_at is not None and api_key.expires_at <= timezone.now():
            raise exceptions.AuthenticationFailed(
                "This API key has expired.", code="api_key_expired"
            )
        if not api_key.user.is_active:
            raise exceptions.AuthenticationFailed(
                "The account of this API key is not active.", code="user_inactive"
            )
        ip = services.client_ip(request._request)
        if not selectors.api_key_ip_allowed(api_key=api_key, ip=ip):
            raise exceptions.PermissionDenied(
                "This API key may not be used from this address.", code="ip_not_allowed"
            )
        services.api_key_touch(api_key=api_key, ip=ip)
        return api_key.user, api_key

    def authenticate_header(self, request: Request) -> str:
        return f'{API_KEY_KEYWORD} realm="api"'

    @staticmethod
    def _raw_key(request: Request) -> str | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        keyword, _, value = header.partition(" ")
        if keyword.lower() == API_KEY_KEYWORD.lower():
            return value.strip() or None
        value = request.META.get(API_KEY_HEADER, "").strip()
        return value or None


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "A Tandem API key `tdm_<prefix>.<secret>`; also accepted as "
            "`Authorization: Api-Key <key>`. Scopes: read, trade, manage.",
        }


class SessionJWTScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api.authentication.SessionJWTAuthentication"
    name = "jwtAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
