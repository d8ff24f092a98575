"""`make run` end to end: the launcher brings up every process on embedded stores, serves the
portal, admin, schema and readiness, keeps data across a restart and leaves no orphan behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from config import embedded

pytestmark = [pytest.mark.embedded, pytest.mark.slow]
BASE_DIR = Path(__file__).resolve().parents[2]
STORE_VARIABLES = ("DATABASE_URL", "REDIS_URL", "CLICKHOUSE_URL", "CELERY_BROKER_URL")


class Launcher:
    def __init__(self, var_dir: Path, port: int) -> None:
        self.var_dir, self.port = var_dir, port
        self.base = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self, timeout: float = 240) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in STORE_VARIABLES and not k.startswith("TANDEM_EMBEDDED_")
        }
        env.update(
            TANDEM_VAR_DIR=str(self.var_dir),
            TANDEM_PORT=str(self.port),
            DJANGO_SETTINGS_MODULE="config.settings.local",
            TANDEM_LOG_FORMAT="plain",
            TANDEM_SITE_URL=self.base,
            PYTHONUNBUFFERED="1",
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "config.launcher"],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line:
                self.output.append(line)
                if "Tandem is running at" in line:
                    return
            elif self.proc.poll() is not None:
                break
            else:
                time.sleep(0.1)
        raise AssertionError("launcher did not come up:\n" + "".join(self.output[-60:]))

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=90)

    def get(self, path: str, **headers: str) -> tuple[int, bytes]:
        request = urllib.request.Request(self.base + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def post_json(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")


def wallet_sign_in(launcher: Launcher, account: Any) -> dict[str, Any]:
    code, raw = launcher.get(f"/api/v1/auth/nonce?address={account.address}&chain_id=1")
    assert code == 200, raw
    message = json.loads(raw)["message"]
    signature = account.sign_message(encode_defunct(text=message)).signature.hex()
    status, body = launcher.post_json(
        "/api/v1/auth/siwe",
        {"message": message, "signature": "0x" + signature.removeprefix("0x"), "mode": "jwt"},
    )
    assert status == 200, body
    return body


def processes_using(var_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            environ = proc.info["environ"] or {}
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if str(var_dir) in cmdline or environ.get("TANDEM_VAR_DIR") == str(var_dir):
            found.append(proc)
    return found


def test_make_run_serves_everything_keeps_data_and_leaves_no_orphans(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    launcher = Launcher(var_dir, embedded.free_port())
    account = Account.create()
    try:
        launcher.start()
        assert launcher.get("/")[0] == 200
        status, body = launcher.get("/admin/")
        assert status == 200  # redirected to the staff sign-in page
        assert b"login" in body.lower()
        status, body = launcher.get("/api/schema/")
        assert status == 200
        assert b"openapi" in body
        status, body = launcher.get("/readyz")
        ready = json.loads(body)
        assert status == 200, ready
        assert ready["failed"] == []
        assert set(ready["checks"]) == {"postgres", "redis", "clickhouse", "broker"}
        first = wallet_sign_in(launcher, account)
        assert first["created"] is True
    finally:
        assert launcher.stop() == 0, "".join(launcher.output[-40:])
    time.sleep(1)
    leftovers = processes_using(var_dir)
    assert leftovers == [], [p.info["cmdline"] for p in leftovers]

    # Restart: the account created before is still there, not created again.
    again = Launcher(var_dir, launcher.port)
    try:
        again.start()
        second = wallet_sign_in(again, account)
        assert second["created"] is False
        assert second["user"]["id"] == first["user"]["id"]
        status, me = again.get("/api/v1/me", Authorization=f"Bearer {second['access']}")
        assert status == 200
        assert json.loads(me)["wallet_addr"] == account.address
    finally:
        assert again.stop() == 0
    time.sleep(1)
    assert processes_using(var_dir) == []
