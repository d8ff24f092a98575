"""Portal sessions: note when each was last used, and end one that was signed out elsewhere."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse

from accounts import services


class AuthSessionMiddleware:
    """After AuthenticationMiddleware. At most one UPDATE a minute per session.

    "Sign out" elsewhere deletes the Django session, which is what ends it; this is the net
    under that (a session row revoked while its Django session survived, e.g. a cache that
    kept a copy) and the source of ``last_used_at`` in the session list.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        session = getattr(request, "session", None)
        if user is not None and user.is_authenticated and session is not None:
            auth_session_id = session.get(services.SESSION_SID_KEY)
            if auth_session_id and not services.auth_session_touch(
                auth_session_id=auth_session_id, request=request
            ):
                logout(request)
        return self.get_response(request)
