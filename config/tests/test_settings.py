"""Each settings module loads from the environment; production refuses unsafe configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_SECRET_KEY": "x" * 20 + "production-secret-key-that-is-long-enough-1234567890",
    "DJANGO_ALLOWED_HOSTS": "app.tandem.example",
    "TANDEM_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "DATABASE_URL": "postgresql://tandem:pw@db.internal:5432/tandem",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "CLICKHOUSE_URL": "clickhouse://default:@ch.internal:9000/tandem",
}


def load(settings: str, env: dict[str, str], *names: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import django; from django.conf import settings as s; django.setup(); "
        f"print(repr([getattr(s, n) for n in {list(names)!r}]))"
    )
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in PRODUCTION_ENV and not k.startswith(("DJANGO_", "TANDEM_EMBEDDED"))
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, "DJANGO_SETTINGS_MODULE": settings, **env},
        check=False,
    )


def test_production_settings_load_from_the_environment() -> None:
    result = load(
        "config.settings.production",
        PRODUCTION_ENV,
        "DEBUG",
        "ALLOWED_HOSTS",
        "SESSION_COOKIE_SECURE",
        "DATABASE_URL",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr(
        [False, ["app.tandem.example"], True, PRODUCTION_ENV["DATABASE_URL"]]
    )


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("DJANGO_SECRET_KEY", "DJANGO_SECRET_KEY"),
        ("DATABASE_URL", "DATABASE_URL is not set"),
        ("CLICKHOUSE_URL", "CLICKHOUSE_URL is not set"),
        ("TANDEM_ENCRYPTION_KEYS", "TANDEM_ENCRYPTION_KEYS"),
    ],
)
def test_production_refuses_to_start_without(missing: str, message: str) -> None:
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = load("config.settings.production", env, "DEBUG")
    assert result.returncode != 0
    assert message in result.stderr


def test_production_refuses_a_short_secret_key() -> None:
    result = load(
        "config.settings.production", {**PRODUCTION_ENV, "DJANGO_SECRET_KEY": "short"}, "DEBUG"
    )
    assert result.returncode != 0
    assert "50+ characters" in result.stderr


def test_local_settings_use_environment_overrides() -> None:
    env = {**PRODUCTION_ENV, "DJANGO_DEBUG": "0", "TANDEM_DEFAULT_VENUE": "hyperliquid"}
    result = load("config.settings.local", env, "DEBUG", "TANDEM")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("[False, {'DEFAULT_VENUE': 'hyperliquid'")
