"""DRF throttles: per API key, per user, per anonymous IP, and a tight one for sign-in.

Rates come from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` and are read per request (DRF
reads them once at import), so operators and tests can change them without a restart. A
refused request is 429 with ``Retry-After`` (seconds), rendered as problem+json.
"""

from __future__ import annotations

from typing import Any

from rest_framework import throttling
from rest_framework.request import Request
from rest_framework.settings import api_settings

from accounts.models import ApiKey


class _SettingsRateThrottle(throttling.SimpleRateThrottle):
    def get_rate(self) -> str | None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope or "")
        return None if rate is None else str(rate)

    def _use_scope(self, scope: str) -> bool:
        self.scope = scope
        self.rate = self.get_rate()
        if self.rate is None:
            return False
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return True


class AnonRateThrottle(_SettingsRateThrottle):
    """Anonymous requests, per client IP."""

    scope = "anon"

    def allow_request(self, request: Request, view: Any) -> bool:
        if not self._use_scope("anon"):
            return True
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class UserOrApiKeyRateThrottle(_SettingsRateThrottle):
    """Per API key (scope ``api_key``) when a key authenticated the request, else per user."""

    scope = "user"

    def allow_request(self, request: Request, view: Any) -> bool:
        if not self._use_scope("api_key" if isinstance(request.auth, ApiKey) else "user"):
            return True
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if isinstance(request.auth, ApiKey):
            return self.cache_format % {"scope": "api_key", "ident": request.auth.pk}
        if request.user and request.user.is_authenticated:
            return self.cache_format % {"scope": "user", "ident": request.user.pk}
        return None


class SignInRateThrottle(_SettingsRateThrottle):
    """Sign-in and token endpoints, per client IP (``auth`` rate), whoever is asking."""

    scope = "auth"

    def allow_request(self, request: Request, view: Any) -> bool:
        if not self._use_scope("auth"):
            return True
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
