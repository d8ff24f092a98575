"""The plan's API rate (``Plan.api_rate_per_minute``, seed 003): a DRF throttle per customer.

Requests authenticated by an API key or a bearer token count against the rate of the caller's
plan (the subscription in force, else the default plan); an empty rate is unlimited. Portal
requests (the session) are not counted: the portal is Tandem's own client, and its pages are
limited by the general per-user throttle. The plan's rate is cached for a short while so the
throttle costs no query on most requests; a plan change takes effect within that time.

It is one of ``REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]``; billing's own views list it
explicitly as well so the limit holds for them whatever the settings say.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework import throttling
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.settings import api_settings

from billing import selectors

PLAN_RATE_CACHE_SECONDS = 30


def plan_rate_per_minute(user: Any) -> int | None:
    key = f"billing:plan-rate:{user.pk}"
    cached = cache.get(key)
    if cached is None:
        rate = selectors.plan_limits(user).api_rate_per_minute
        cached = {"rate": rate}
        cache.set(key, cached, PLAN_RATE_CACHE_SECONDS)
    value: int | None = cached["rate"]
    return value


class PlanRateThrottle(throttling.SimpleRateThrottle):
    scope = "plan"

    def get_rate(self) -> str | None:
        return None  # per request, from the caller's plan (allow_request)

    def allow_request(self, request: Request, view: Any) -> bool:
        if not getattr(settings, "BILLING_PLAN_RATE_ENFORCED", True):
            return True
        user = request.user
        if not user or not user.is_authenticated:
            return True
        if isinstance(request.successful_authenticator, SessionAuthentication):
            return True
        rate = plan_rate_per_minute(user)
        if rate is None:
            return True
        self.rate = f"{rate}/min"
        self.num_requests, self.duration = rate, 60
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


def with_plan_rate() -> list[Any]:
    """The configured throttles, plus the plan's rate if the settings do not list it."""
    configured: list[Any] = list(api_settings.DEFAULT_THROTTLE_CLASSES)
    if PlanRateThrottle not in configured:
        configured.append(PlanRateThrottle)
    return configured
