"""The read replica: DATABASE_REPLICA_URL adds a `replica` database; the router sends reads made
outside a transaction there, and writes, and reads inside a transaction, to the primary."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections, transaction
from django.db.utils import ConnectionRouter
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from config.db_router import ReplicaRouter
from config.tests.test_settings import PRODUCTION_ENV, load


def test_replica_url_adds_the_database_and_the_router() -> None:
    env = {**PRODUCTION_ENV, "DATABASE_REPLICA_URL": "postgresql://ro:pw@replica.internal:5432/t"}
    result = load("config.settings.local", env, "DATABASE_ROUTERS")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr([["config.db_router.ReplicaRouter"]])
    code = load("config.settings.local", env, "DATABASES")
    assert "'HOST': 'replica.internal'" in code.stdout
    assert "'MIRROR': 'default'" in code.stdout


def test_without_a_replica_url_there_is_no_router() -> None:
    result = load("config.settings.local", PRODUCTION_ENV, "DATABASE_ROUTERS")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr([[]])


@pytest.fixture
def replica(transactional_db: Any) -> Iterator[ConnectionRouter]:
    """A second, read-only connection to the test database standing in for the replica: a
    write that reached it would fail, just as on a real hot standby."""
    settings_dict = copy.deepcopy(connections["default"].settings_dict)
    settings_dict.setdefault("OPTIONS", {})
    settings_dict["OPTIONS"]["options"] = (
        settings_dict["OPTIONS"].get("options", "") + " -c default_transaction_read_only=on"
    ).strip()
    backend = type(connections["default"])
    connections["replica"] = backend(settings_dict, alias="replica")
    try:
        yield ConnectionRouter([ReplicaRouter()])
    finally:
        connections["replica"].close()
        del connections["replica"]


def test_reads_go_to_the_replica_writes_and_transactions_to_the_primary(
    replica: ConnectionRouter,
) -> None:
    primary, standby = connections["default"], connections["replica"]
    user = User.objects.using(replica.db_for_write(User)).create(
        email="replica@example.com", is_staff=True
    )

    with CaptureQueriesContext(standby) as on_replica, CaptureQueriesContext(primary) as on_primary:
        assert User.objects.using(replica.db_for_read(User)).filter(pk=user.pk).exists()
    assert len(on_replica) == 1
    assert len(on_primary) == 0

    # Inside a transaction the read decides a write: it must see the primary, never a lagging copy.
    with transaction.atomic(), CaptureQueriesContext(standby) as on_replica:
        assert replica.db_for_read(User) == "default"
        User.objects.using(replica.db_for_read(User)).select_for_update().get(pk=user.pk)
    assert len(on_replica) == 0

    # The stand-in really is read-only: a write routed there would fail loudly.
    with pytest.raises(Exception, match="read-only"):
        User.objects.using("replica").filter(pk=user.pk).update(email="x@example.com")
    assert replica.allow_migrate("replica", "accounts") is False
    assert replica.allow_migrate("default", "accounts") is True
