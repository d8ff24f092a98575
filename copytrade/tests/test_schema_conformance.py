"""Schemathesis over the copy-trading operations of /api/schema/: generated requests (signed in
and anonymously) never cause a server error, and every answer matches its documented status
codes and schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from accounts import services
from accounts.tests.factories import UserFactory
from config.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/schema/", application).include(
    path_regex=r"^/api/v1/(traders|strategies|decisions|follows|leaderboard)"
)
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.fixture
def bearer_header(db: Any, settings: Any) -> Iterator[dict[str, str]]:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}
    _, tokens = services.jwt_pair_issue(user=UserFactory.create(), method="siwe")
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield {"Authorization": f"Bearer {tokens['access']}"}
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.mark.slow
@pytest.mark.django_db
@schema.parametrize()
@hypothesis_settings(
    max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
def test_copytrade_api_conforms_to_its_schema(case: Any, bearer_header: dict[str, str]) -> None:
    case.call_and_validate(headers=bearer_header, checks=CHECKS)
    case.call_and_validate(checks=CHECKS)
