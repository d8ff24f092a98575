"""A local fake HTTP venue (http.server in a thread) for adapter tests. No test reaches the
internet: adapters are pointed at ``FakeVenue.url``.

A test gives it a ``responder(method, path, query, body) -> Reply`` and reads back every request
it received. A reply can be delayed (to make the client time out) or carry any status and
headers (429 with Retry-After, 5xx).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]


Responder = Callable[[str, str, dict[str, list[str]], Any], Reply]


class FakeVenue:
    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.received: list[Received] = []
        self._lock = threading.Lock()
        venue = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                request = Received(
                    method, parts.path, parse_qs(parts.query), body, dict(self.headers.items())
                )
                with venue._lock:
                    venue.received.append(request)
                reply = venue.responder(method, parts.path, request.query, body)
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        name = host if isinstance(host, str) else host.decode()
        return f"http://{name}:{port}"

    def requests_to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def start(self) -> FakeVenue:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def fake_venue(responder: Responder) -> Iterator[FakeVenue]:
    venue = FakeVenue(responder).start()
    try:
        yield venue
    finally:
        venue.stop()
