"""Send read-only selector queries to the replica and everything else to the primary.

A query inside a transaction (``atomic``) always goes to the primary: the replica may lag, and a
read that decides a write must see that write's own transaction.
"""

from __future__ import annotations

from typing import Any

from django.db import connections


class ReplicaRouter:
    def db_for_read(self, model: Any, **hints: Any) -> str:
        if connections["default"].in_atomic_block:
            return "default"
        return "replica"

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return "default"

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == "default"
