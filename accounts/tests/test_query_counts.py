"""List endpoints cost the same number of queries for 1 row as for many (no N+1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from accounts import services
from accounts.models import User
from accounts.tests.conftest import bearer

pytestmark = pytest.mark.django_db


def _make(kind: str, user: User, index: int) -> None:
    if kind == "api-keys":
        services.api_key_create(user=user, name=f"k{index}", scopes=["read"])
    elif kind == "agent-wallets":
        services.agent_wallet_generate(user=user, name=f"w{index}")
    elif kind == "exchange-connections":
        services.exchange_connection_create(
            user=user,
            exchange_name="bybit",
            label=f"c{index}",
            api_key=f"vk_query_count_{index:04d}",
            api_secret="vs_query_count_secret",
        )
    else:
        services.jwt_pair_issue(user=user, method="siwe")


@pytest.mark.parametrize("kind", ["api-keys", "agent-wallets", "exchange-connections", "sessions"])
def test_list_queries_do_not_grow_with_rows(user: User, kind: str) -> None:
    _, tokens = services.jwt_pair_issue(user=user, method="siwe")
    client = bearer(APIClient(), tokens["access"])
    name = "v1:accounts-api:auth-sessions" if kind == "sessions" else f"v1:accounts-api:{kind}"
    make: Callable[[int], Any] = lambda i: _make(kind, user, i)  # noqa: E731

    def count() -> int:
        client.get(reverse(name))  # warm the once-a-minute session touch
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse(name)).status_code == 200
        return len(queries)

    make(0)
    one = count()
    # The Free plan allows five active API keys; 1 row against 5 still shows any N+1.
    rows = 5 if kind == "api-keys" else 10
    for i in range(1, rows):
        make(i)
    assert count() == one
    assert one <= 6
