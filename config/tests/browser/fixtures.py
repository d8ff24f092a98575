"""Fixtures for browser journeys, for every app's tests (registered in the root conftest; run by
`make test`; Chromium comes from Debian's package)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from config.tests.browser.harness import CHROMIUM, LiveServer, browser_context

# Playwright's sync API runs an event loop in this thread; Django's ORM is synchronous and safe
# here because the test code, not the loop, calls it.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def live_connections_ended(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    """At the end of the run, end the sessions the live servers' worker threads left open, so
    the test database can be dropped. Not after each test: a connection object another
    context still holds would then be dead when it is next used."""
    yield
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def live(
    transactional_db: Any, settings: Any, live_connections_ended: None
) -> Iterator[LiveServer]:
    from django.core.cache import cache

    # Every journey is a new visitor: rate-limit counters that earlier tests left for the
    # shared client address (127.0.0.1) must not throttle its sign-in.
    cache.delete_pattern("*throttle*")  # type: ignore[attr-defined]  # django-redis
    with LiveServer() as server:
        settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
        settings.SITE_URL = server.url
        yield server


@pytest.fixture
def context() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: run `make browser` (Debian chromium)"
        )
    yield from browser_context()


@pytest.fixture
def page(context: Any) -> Any:
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page
