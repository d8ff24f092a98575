"""API-key scopes: the permission every API view of Tandem runs (a default in settings).

The convention, for every app's views
-------------------------------------
An API key carries one or more scopes: ``read``, ``trade``, ``manage``. They are separate
grants, not a ladder: a ``trade`` key can place orders but needs ``read`` too to list them.
Sessions and JWTs (a person signed in) pass every scope check; only keys are limited.

By default a view needs ``read`` for safe methods (GET, HEAD, OPTIONS) and ``manage`` for
the rest. A view that needs something else declares ``required_scopes``:

.. code-block:: python

    class OrderListCreate(generics.ListCreateAPIView):
        required_scopes = {"GET": "read", "POST": "trade"}

    class OrderCancel(APIView):
        required_scopes = "trade"  # one scope for every method

    class StrategyViewSet(viewsets.ModelViewSet):
        # viewsets may also map action names; methods win over actions
        required_scopes = {"pause": "trade", "resume": "trade"}

``ScopePermission`` is in ``DEFAULT_PERMISSION_CLASSES``. A view that sets its own
``permission_classes`` must keep it, e.g. ``[IsAuthenticated, ScopePermission, IsOwner]``
or ``[*api_settings.DEFAULT_PERMISSION_CLASSES, IsOwner]``; the accounts test suite walks
every API route and fails if a view that is not public drops it. A key lacking the scope
gets 403 with code ``insufficient_scope``.

What only the person may do (setting the account's sign-in credentials) adds ``NotApiKey``: no key
may do it, whatever its scopes (403 ``api_key_not_allowed``). A key creating a key may grant
nothing it does not hold itself (``accounts.services.api_key_create(parent=...)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from accounts.models import ApiKey, ApiKeyScope


def required_scope(view: Any, method: str) -> str:
    """The scope ``view`` needs for ``method`` (see the module docstring)."""
    declared = getattr(view, "required_scopes", None)
    if isinstance(declared, str):
        return declared
    if isinstance(declared, Mapping):
        if method in declared:
            return str(declared[method])
        action = getattr(view, "action", None)
        if action and action in declared:
            return str(declared[action])
    return ApiKeyScope.READ if method in SAFE_METHODS else ApiKeyScope.MANAGE


class ScopePermission(BasePermission):
    """Refuse a request authenticated by an API key that lacks the view's scope."""

    message = "This API key lacks the scope this endpoint needs."
    code = "insufficient_scope"

    def has_permission(self, request: Request, view: Any) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            return True
        needed = required_scope(view, request.method or "GET")
        if needed in api_key.scopes:
            return True
        self.message = f"This API key lacks the '{needed}' scope this endpoint needs."
        return False


class NotApiKey(BasePermission):
    """Refuse API keys outright: for what only the person may do (their sign-in credentials)."""

    message = "An API key cannot do this: sign in as the account's owner."
    code = "api_key_not_allowed"

    def has_permission(self, request: Request, view: Any) -> bool:
        return not isinstance(request.auth, ApiKey)
