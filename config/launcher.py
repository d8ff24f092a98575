"""`make run`: start the whole Tandem stack on one machine and stop all of it on Ctrl-C.

1. Resolve the stores: external ones from DATABASE_URL / REDIS_URL / CLICKHOUSE_URL, embedded
   engines under var/ for those unset. Each is checked before anything else starts, and a
   store that does not answer stops start-up with a message naming its variable.
2. Migrate PostgreSQL and ClickHouse, collect static files, load the demo data (idempotent).
3. Start the ASGI server (uvicorn: HTTP + websockets), one Celery worker and Celery beat as
   child processes, each in its own process group, and print the URL and demo logins.
4. On Ctrl-C / SIGTERM, or when any child dies: stop every child (its whole process group, so
   no orphan survives) and then the embedded stores this launcher started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from config import embedded

BASE_DIR = Path(__file__).resolve().parent.parent
SETTINGS = os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings.local")


def log(message: str) -> None:
    print(f"[tandem] {message}", flush=True)  # noqa: T201 - this is a command-line program


def fail(message: str) -> int:
    print(f"[tandem] error: {message}", file=sys.stderr, flush=True)  # noqa: T201
    return 1


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, check=True)  # noqa: S603


def check_stores() -> str | None:
    """Connect to each configured store; the first failure, naming its variable, or None."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    result = subprocess.run(
        [sys.executable, "manage.py", "check_stores"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        return (result.stderr.strip() or result.stdout.strip()).splitlines()[-1]
    return None


class Stack:
    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.started_stores: list[str] = []
        self.stopping = False

    def start_stores(self) -> None:
        for store, (variable, _, _) in embedded.STORES.items():
            if os.environ.get(variable):
                log(f"{store}: external ({variable} is set)")
                continue
            started = time.monotonic()
            url = embedded.resolve_store_url(store)
            self.started_stores.append(store)
            log(f"{store}: embedded, {url} ({time.monotonic() - started:.1f}s)")

    def spawn(self, name: str, argv: list[str]) -> None:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": SETTINGS, "PYTHONUNBUFFERED": "1"}
        # Own process group: stopping the group also stops what the child forked (Celery's
        # prefork pool, uvicorn reloaders), so Ctrl-C leaves no orphan behind.
        proc = subprocess.Popen(argv, cwd=BASE_DIR, env=env, start_new_session=True)  # noqa: S603
        self.children.append((name, proc))
        log(f"started {name} (pid {proc.pid})")

    def stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        for name, proc in reversed(self.children):
            if proc.poll() is None:
                log(f"stopping {name}")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for _, proc in self.children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for name, proc in self.children:
            with contextlib.suppress(ProcessLookupError):
                # Anything still alive in the group gets SIGKILL: no orphan survives.
                os.killpg(proc.pid, signal.SIGKILL)
                if proc.poll() is None:
                    log(f"{name} did not stop in time: killed")
        for store in reversed(self.started_stores):
            embedded.stop_embedded(stores=(store,))
            log(f"stopped embedded {store}")


def main() -> int:
    os.chdir(BASE_DIR)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    host = os.environ.get("TANDEM_HOST", "127.0.0.1")
    port = int(os.environ.get("TANDEM_PORT", "8000"))
    if embedded._port_open(host, port):
        return fail(f"port {port} on {host} is already in use (set TANDEM_PORT to another port)")

    stack = Stack()

    def on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        try:
            stack.start_stores()
        except embedded.EmbeddedStoreError as exc:
            return fail(str(exc))
        problem = check_stores()
        if problem:
            return fail(problem)
        log("migrating PostgreSQL and ClickHouse")
        manage("migrate", "--noinput", "-v", "0")
        manage("migrate_clickhouse")
        manage("collectstatic", "--noinput", "-v", "0")
        log("loading demo data")
        manage("seed_demo")

        stack.spawn(
            "web",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--host",
                host,
                "--port",
                str(port),
                "--no-access-log",
                "--timeout-graceful-shutdown",
                "5",
            ],
        )
        stack.spawn(
            "worker",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
                "--queues",
                os.environ.get("TANDEM_QUEUES", "default,ingest,copy,execution,billing"),
                "--hostname",
                "tandem@%h",
            ],
        )
        stack.spawn(
            "beat",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(embedded.var_dir() / "celerybeat-schedule"),
            ],
        )
        url = f"http://{host}:{port}/"
        deadline = time.monotonic() + 60
        while not embedded._port_open(host, port):
            if time.monotonic() > deadline or stack.children[0][1].poll() is not None:
                return fail("the web server did not start; see its output above")
            time.sleep(0.2)
        log("")
        log(f"Tandem is running at {url}")
        log(f"  admin:     {url}admin/   staff@tandem.local / tandem-staff-demo (TOTP: see above)")
        log(f"  portal:    {url}accounts/login/   demo@tandem.local / tandem-demo-1234")
        log(f"  API docs:  {url}api/docs/    health: {url}readyz")
        log("Press Ctrl-C to stop everything.")
        while True:
            for name, proc in stack.children:
                if proc.poll() is not None:
                    return fail(f"{name} exited with code {proc.returncode}; stopping")
            time.sleep(0.5)
    except KeyboardInterrupt:
        log("shutting down")
        return 0
    except subprocess.CalledProcessError as exc:
        return fail(f"{' '.join(map(str, exc.cmd[1:]))} failed with exit code {exc.returncode}")
    finally:
        stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
