"""Fixtures shared by every app's tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

# Browser-journey fixtures (live server, Chromium page) for any app's tests.
pytest_plugins = ["config.tests.browser.fixtures"]


def _find_shared_data() -> Path:
    """../shared/data beside the checkout, or beside the repository it was cloned from.

    CI runs on a fresh clone that may live elsewhere; its ``origin`` still points at the
    working repository, whose sibling ``shared/`` holds the recorded data.
    """
    if os.environ.get("TANDEM_SHARED_DATA"):
        return Path(os.environ["TANDEM_SHARED_DATA"])
    here = Path(__file__).resolve().parent
    candidates = [here.parent / "shared" / "data"]
    try:
        origin = subprocess.run(
            ["git", "-C", str(here), "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        origin = ""
    if origin and "://" not in origin:
        candidates.append(Path(origin).resolve().parent / "shared" / "data")
    return next((path for path in candidates if path.is_dir()), candidates[0])


SHARED_DATA = _find_shared_data()


@pytest.fixture
def shared_data() -> Path:
    """The recorded Hyperliquid responses and SIWE vectors in ../shared/data (not in the repo)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"recorded data folder {SHARED_DATA} is absent (set TANDEM_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def user(db):
    from accounts.tests.factories import UserFactory

    return UserFactory()


@pytest.fixture
def other_user(db):
    from accounts.tests.factories import UserFactory

    return UserFactory()


@pytest.fixture
def staff_user(db):
    from accounts.tests.factories import StaffFactory

    return StaffFactory(password="correct horse battery staple")


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def user_client(user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    return client


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-chaos",
        action="store_true",
        default=False,
        help="also run the long fault-injection tests marked `chaos` (make chaos)",
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start from an empty cache: rate-limit counters left by a run a minute ago would otherwise
    throttle this one (schema loaders hit the API while collecting, before any fixture)."""
    try:
        from django.core.cache import cache

        cache.delete_pattern("*")  # type: ignore[attr-defined]  # django-redis; this prefix only
    except Exception:  # Django not configured (-p no:django): no cache to clear
        return


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Chaos tests take minutes and run in `make chaos` (and CI); `make test` deselects them
    # rather than skipping them, so a skip never stands for a failure.
    if config.getoption("--run-chaos"):
        return
    selected = [item for item in items if "chaos" not in item.keywords]
    deselected = [item for item in items if "chaos" in item.keywords]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


@pytest.fixture
def api_key_client(user):
    """Factory: an APIClient authenticated by a real API key (of ``user``) with given scopes.

    ``api_key_client("read", "trade")``; pass ``owner=`` for another user. For testing the
    ``required_scopes`` a view declares (accounts/api/permissions.py).
    """
    from rest_framework.test import APIClient

    from accounts.services import api_key_create

    def make(*scopes: str, owner=None) -> APIClient:
        _, raw_key = api_key_create(user=owner or user, name="test key", scopes=list(scopes))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
        return client

    return make


# --------------------------------------------------------------------------- ClickHouse


@pytest.fixture(scope="session")
def clickhouse_db() -> Any:
    """The run's own ClickHouse database (settings.CLICKHOUSE_DATABASE, per xdist worker):
    dropped if a killed run left it, migrated once with ``migrate_clickhouse``'s code path,
    dropped again at the end of the session."""
    from django.conf import settings

    from analytics.clickhouse import migrator
    from analytics.clickhouse.client import ClickHouse, configured_database, get_client

    name = configured_database()
    admin = ClickHouse(settings.CLICKHOUSE_URL, database="default", pool_size=1)
    admin.drop_database(name)
    migrator.migrate(admin, database=name)
    yield name
    get_client().close()
    admin.drop_database(name)
    admin.close()


@pytest.fixture
def clickhouse(clickhouse_db: str) -> Any:
    """The ClickHouse client on the test database, every Tandem table emptied first."""
    from analytics.clickhouse.client import get_client, quote_identifier
    from analytics.clickhouse.schema import TABLES

    client = get_client()
    for table in TABLES:
        client.command(f"TRUNCATE TABLE IF EXISTS {quote_identifier(table.name)}")
    return client


@pytest.fixture(scope="session", autouse=True)
def analytics_buffers_of_this_run() -> Any:
    """Ticks any test publishes reach the analytics listener (settings.TANDEM
    ["TICK_LISTENERS"]): keep what it buffers under this run's own Redis prefix -- never in a
    developer's ``make run`` buffers -- and delete it at the end of the session."""
    try:
        from django.conf import settings

        original = settings.ANALYTICS
    except Exception:  # Django not configured (-p no:django): nothing to isolate
        yield None
        return
    import uuid

    prefix = f"test-run-{uuid.uuid4().hex[:10]}:"
    settings.ANALYTICS = {**original, "REDIS_KEY_PREFIX": prefix}
    yield prefix
    settings.ANALYTICS = original
    import contextlib

    # Redis gone at teardown: the keys are harmless leftovers under a prefix nobody drains.
    with contextlib.suppress(Exception):
        from analytics.buffer import buffer_redis

        client = buffer_redis()
        keys = list(client.scan_iter(match=f"*{prefix}analytics:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
