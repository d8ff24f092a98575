"""Health probes, request ids and JSON logs (issue 3)."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse

from config import embedded
from config.celery import app as celery_app
from config.observability import JsonFormatter, RequestIdFilter, RequestIdMiddleware


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.mark.django_db
def test_healthz_answers_while_the_process_is_alive(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_all_four_stores(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert body["failed"] == []
    assert set(body["checks"]) == {"postgres", "redis", "clickhouse", "broker"}
    assert all(check["ok"] for check in body["checks"].values())


@pytest.mark.django_db
def test_readyz_names_clickhouse_when_it_is_down(client: Client) -> None:
    closed = f"clickhouse://default@127.0.0.1:{embedded.free_port()}/tandem"
    with override_settings(CLICKHOUSE_URL=closed):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["clickhouse"]
    assert response.json()["status"] == "unavailable"


@pytest.mark.django_db
def test_readyz_names_redis_and_broker_when_they_are_down(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = f"redis://127.0.0.1:{embedded.free_port()}/1"
    caches = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": closed,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1},
        }
    }
    previous = celery_app.conf.broker_url
    # Celery reads CELERY_BROKER_URL from the environment before its own setting (CI sets it
    # for the RabbitMQ run), so both must point at the closed port.
    monkeypatch.setenv("CELERY_BROKER_URL", closed)
    celery_app.conf.broker_url = closed
    try:
        with override_settings(CACHES=caches):
            response = client.get("/readyz")
    finally:
        celery_app.conf.broker_url = previous
    assert response.status_code == 503
    assert response.json()["failed"] == ["broker", "redis"]


@pytest.mark.django_db
def test_readyz_hides_error_details_from_anonymous_callers(client: Client) -> None:
    closed = f"clickhouse://default@127.0.0.1:{embedded.free_port()}/tandem"
    with override_settings(CLICKHOUSE_URL=closed, DEBUG=False):
        body = client.get("/readyz").json()
    assert body["checks"]["clickhouse"] == {"ok": False}


@pytest.mark.django_db
def test_request_id_is_echoed_or_generated(client: Client) -> None:
    given = client.get("/healthz", HTTP_X_REQUEST_ID="abc12345-from-lb")
    assert given["X-Request-ID"] == "abc12345-from-lb"
    generated = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert generated["X-Request-ID"] != "bad id\nwith newline"
    assert len(generated["X-Request-ID"]) == 32


def test_log_lines_are_json_with_the_request_id() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s")
    )
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("tandem.test.requestid")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    def view(request):
        logger.info("handling with secret 0x%s", "ab" * 32)
        from django.http import HttpResponse

        return HttpResponse("ok")

    request = RequestFactory().get("/x", HTTP_X_REQUEST_ID="req-1234567890")
    response = RequestIdMiddleware(view)(request)
    logger.removeHandler(handler)
    record = json.loads(stream.getvalue().strip())
    assert record["request_id"] == "req-1234567890" == response["X-Request-ID"]
    assert record["level"] == "INFO"
    assert record["logger"] == "tandem.test.requestid"
    # A private-key-shaped value never reaches the log.
    assert "ab" * 32 not in record["message"]


def test_schema_and_docs_are_served(client: Client, db: None) -> None:
    schema = client.get(reverse("schema"))
    assert schema.status_code == 200
    assert b"openapi" in schema.content
    assert client.get(reverse("api-docs")).status_code == 200
    assert client.get(reverse("api-redoc")).status_code == 200
