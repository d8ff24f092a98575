"""Embedded stores: real engines start, share, stop and restart with their data (issue 3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis

from config import embedded

pytestmark = pytest.mark.embedded
BASE_DIR = Path(__file__).resolve().parents[2]


def pg_connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


class TestPostgres:
    def test_start_write_stop_restart_keeps_data(self, tmp_path: Path) -> None:
        directory = tmp_path / "pg"
        url = embedded.ensure_postgres(directory, database="tandem_t")
        try:
            with pg_connect(url) as conn:
                conn.execute("CREATE TABLE kept (v text)")
                conn.execute("INSERT INTO kept VALUES ('survives')")
            # A second caller (another process of the same run) shares the running server.
            assert embedded.ensure_postgres(directory, database="tandem_t") == url
            assert embedded.stop_postgres(directory) is True
            with pytest.raises(psycopg.OperationalError):
                pg_connect(url).close()
            url = embedded.ensure_postgres(directory, database="tandem_t")
            with pg_connect(url) as conn:
                assert conn.execute("SELECT v FROM kept").fetchall() == [("survives",)]
        finally:
            embedded.stop_postgres(directory)
        assert embedded.stop_postgres(directory) is False

    def test_directory_that_cannot_be_created_is_named(self, tmp_path: Path) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("not a directory")
        with pytest.raises(embedded.EmbeddedStoreError, match=str(blocker)):
            embedded.ensure_postgres(blocker / "sub" / "pg")


class TestRedis:
    def test_start_write_stop_restart_keeps_data(self, tmp_path: Path) -> None:
        directory = tmp_path / "redis"
        url = embedded.ensure_redis(directory)
        try:
            client = redis.Redis.from_url(url)
            client.set("kept", "survives")
            assert embedded.ensure_redis(directory) == url  # shared, not a second server
            pid = embedded.ServerState.read(directory / "server.json").pid  # type: ignore[union-attr]
            assert embedded.stop_redis(directory) is True
            assert not embedded.pid_alive(pid)
            url = embedded.ensure_redis(directory)
            assert redis.Redis.from_url(url).get("kept") == b"survives"
        finally:
            embedded.stop_redis(directory)

    def test_directory_held_by_a_live_process_that_is_not_redis_is_refused(
        self, tmp_path: Path
    ) -> None:
        directory = tmp_path / "redis"
        directory.mkdir()
        # This test process is alive but does not answer Redis on that port.
        embedded.ServerState(pid=os.getpid(), host="127.0.0.1", port=embedded.free_port()).write(
            directory / "server.json"
        )
        with pytest.raises(embedded.EmbeddedStoreError, match=f"{directory}.*locked"):
            embedded.ensure_redis(directory)

    def test_unwritable_directory_is_named(self, tmp_path: Path) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("x")
        with pytest.raises(embedded.EmbeddedStoreError, match="cannot create data directory"):
            embedded.ensure_redis(blocker / "redis")


class TestUrlValidation:
    @pytest.mark.parametrize(
        ("variable", "value", "message"),
        [
            ("DATABASE_URL", "mysql://db/x", "DATABASE_URL must start with"),
            ("DATABASE_URL", "postgres:///x", "DATABASE_URL names no host"),
            ("DATABASE_URL", "postgres://h:notaport/x", "DATABASE_URL has an invalid port"),
            ("CLICKHOUSE_URL", "http://ch:8123", "CLICKHOUSE_URL must start with"),
            ("REDIS_URL", "memcached://x", "REDIS_URL must start with"),
        ],
    )
    def test_misconfigured_url_names_its_variable(
        self, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
    ) -> None:
        monkeypatch.setenv(variable, value)
        store = {v[0]: k for k, v in embedded.STORES.items()}[variable]
        with pytest.raises(embedded.EmbeddedStoreError, match=message):
            embedded.resolve_store_url(store)

    def test_set_url_is_used_as_is_and_nothing_embedded_starts(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("REDIS_URL", "redis://10.0.0.1:6380/0")
        assert embedded.resolve_store_url("redis", base=tmp_path) == "redis://10.0.0.1:6380/0"
        assert not (tmp_path / "redis").exists()

    def test_embedded_disallowed_and_unset_names_the_variable(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("DATABASE_URL", raising=False)
        with pytest.raises(embedded.EmbeddedStoreError, match="DATABASE_URL is not set"):
            embedded.resolve_store_url("postgres", allow_embedded=False)


def django_setup(
    env: dict[str, str], settings: str = "config.settings.local"
) -> subprocess.CompletedProcess[str]:
    code = "import django; django.setup(); print('loaded')"
    full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings, **env}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class TestStartupRefusesMisconfiguration:
    @pytest.mark.parametrize("variable", ["DATABASE_URL", "CLICKHOUSE_URL"])
    def test_bad_url_stops_startup_naming_the_variable(self, variable: str, tmp_path: Path) -> None:
        result = django_setup({variable: "nonsense://x", "TANDEM_VAR_DIR": str(tmp_path)})
        assert result.returncode != 0
        assert "loaded" not in result.stdout
        assert variable in result.stderr
        # It never falls back silently: nothing embedded was started for that store.
        subdir = {"DATABASE_URL": "pg", "CLICKHOUSE_URL": "clickhouse"}[variable]
        assert not (tmp_path / subdir).exists()
