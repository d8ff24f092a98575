"""Websocket broadcast: 1,000 clients on one market stream vs raw Redis pub/sub.

    .venv/bin/python -m bench.bench_ws [--clients N] [--messages K] [--json]

Measured path: ``config.streams.publish`` (Lua sequence + backlog in Redis, then the Channels
group on the Redis channel layer) -> the ASGI server (uvicorn, in this process, serving
``config.asgi.application``) -> each client's ``StreamConsumer`` -> its socket. The clients
run in a separate process (asyncio, the ``websockets`` library), so their work does not share
this process's interpreter; all of them are signed in with a real session JWT, subscribe to
``market.BTC`` and receive the snapshot first.

Each published message carries its wall-clock send time; a client's latency for it is
receive time minus send time (one machine, one clock). Messages are spaced further apart than
the stream's coalescing window, so every one must reach every client: a sequence number a
client never saw counts as lost.

Baseline, in the same run: the same number of raw ``redis.asyncio`` pub/sub subscribers in
the client process, the same payloads PUBLISHed by this process at the same spacing. The
ratio printed is Tandem p99 / raw p99: what sequencing, the backlog, the channel layer, the
consumer and websocket framing cost over the bare transport. The target is absolute:
p99 <= 250 ms and 0 lost at 1,000 clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

P99_TARGET_MS = 250.0
STREAM = "market.BTC"
RAW_CHANNEL = "bench:ws:raw"
SPACING_SECONDS = 0.35  # > the market stream's 0.25 s coalescing window


# --------------------------------------------------------------------------- client process


async def _client_main(mode: str, target: str, token: str, clients: int, messages: int) -> None:
    """Open ``clients`` subscribers, print READY, collect until every message or a timeout."""
    received: list[dict[int, float]] = [{} for _ in range(clients)]

    async def ws_client(index: int, ready: asyncio.Event) -> None:
        from websockets.asyncio.client import connect

        async with connect(
            target,
            additional_headers={"Authorization": f"Bearer {token}"},
            max_size=2**20,
            open_timeout=60,
            ping_interval=None,
        ) as socket:
            await socket.send(json.dumps({"op": "subscribe", "stream": STREAM}))
            while True:  # the ack, then the snapshot
                first = json.loads(await socket.recv())
                if first.get("type") == "snapshot":
                    break
            ready.set()
            async for raw in socket:
                now = time.time()
                message = json.loads(raw)
                data = message.get("data") or {}
                if "sent" in data:
                    received[index][int(data["n"])] = now - float(data["sent"])
                if len(received[index]) >= messages:
                    return

    async def redis_client(index: int, ready: asyncio.Event) -> None:
        import redis.asyncio as aioredis

        connection = aioredis.from_url(target)
        pubsub = connection.pubsub()
        await pubsub.subscribe(RAW_CHANNEL)
        ready.set()
        try:
            async for item in pubsub.listen():
                if item["type"] != "message":
                    continue
                now = time.time()
                data = json.loads(item["data"])["data"]
                received[index][int(data["n"])] = now - float(data["sent"])
                if len(received[index]) >= messages:
                    return
        finally:
            await pubsub.aclose()  # type: ignore[attr-defined]  # types-redis predates aclose
            await connection.aclose()  # type: ignore[attr-defined]

    factory = ws_client if mode == "ws" else redis_client
    readies = [asyncio.Event() for _ in range(clients)]
    tasks = []
    # Connect in waves so the handshakes (and their snapshot reads) do not all queue at once.
    for start in range(0, clients, 50):
        wave = range(start, min(start + 50, clients))
        tasks += [asyncio.ensure_future(factory(i, readies[i])) for i in wave]
        await asyncio.wait_for(asyncio.gather(*(readies[i].wait() for i in wave)), timeout=120)
    print("READY", flush=True)
    deadline = messages * SPACING_SECONDS + 20
    _, pending = await asyncio.wait(tasks, timeout=deadline)
    for task in pending:
        task.cancel()
    latencies = sorted(ms * 1000 for per in received for ms in per.values())
    lost = sum(messages - len(per) for per in received)
    print("RESULT " + json.dumps({"latencies_ms": latencies, "lost": lost}), flush=True)


# --------------------------------------------------------------------------- bench process


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    os.environ.setdefault("TANDEM_TEST_DB_SUFFIX", "bench")
    import django

    django.setup()
    from django.db import connection

    connection.creation.create_test_db(verbosity=0, keepdb=True, serialize=False)


class _Server(threading.Thread):
    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        import uvicorn

        from config.asgi import application

        config = uvicorn.Config(
            application,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            ws="websockets-sansio",
            ws_max_queue=1024,
        )
        self.server = uvicorn.Server(config)

    def run(self) -> None:
        self.server.run()

    def stop(self) -> None:
        self.server.should_exit = True
        self.join(timeout=10)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spawn_clients(mode: str, target: str, token: str, clients: int, messages: int) -> Any:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "bench.bench_ws",
            "--client-process",
            mode,
            target,
            token,
            str(clients),
            str(messages),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )


def _wait_ready(proc: Any) -> None:
    for line in proc.stdout:
        if line.startswith("READY"):
            return
    raise RuntimeError(f"client process ended before it was ready (exit {proc.wait()})")


CLIENT_PROCESSES = 2


def _spawn_all(mode: str, target: str, token: str, clients: int, messages: int) -> list[Any]:
    """The clients, split over processes: one Python process reading a thousand sockets is
    itself the bottleneck of the measurement (the server's sweep over 1,000 sockets takes about
    30 ms), so both the Tandem run and the baseline use the same split."""
    share = [
        clients // CLIENT_PROCESSES + (i < clients % CLIENT_PROCESSES)
        for i in range(CLIENT_PROCESSES)
    ]
    procs = [_spawn_clients(mode, target, token, n, messages) for n in share if n]
    for proc in procs:
        _wait_ready(proc)
    return procs


def _collect_all(procs: list[Any]) -> dict[str, Any]:
    results = [_collect(proc) for proc in procs]
    return {
        "latencies_ms": sorted(v for r in results for v in r["latencies_ms"]),
        "lost": sum(int(r["lost"]) for r in results),
    }


def _collect(proc: Any) -> dict[str, Any]:
    for line in proc.stdout:
        if line.startswith("RESULT "):
            proc.wait(timeout=30)
            return dict(json.loads(line[len("RESULT ") :]))
    raise RuntimeError(f"client process gave no result (exit {proc.wait()})")


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def _summary(result: dict[str, Any]) -> dict[str, float]:
    values = result["latencies_ms"]
    return {
        "p50": round(statistics.median(values), 2) if values else float("nan"),
        "p99": round(_percentile(values, 0.99), 2),
        "lost": int(result["lost"]),
        "received": len(values),
    }


def _prepare_market() -> str:
    """A signed-in user's access token, and the BTC symbol the stream authorises against."""
    from accounts.services import jwt_pair_issue
    from accounts.tests.factories import UserFactory
    from trading.models import Symbol

    if not Symbol.objects.filter(name="BTC").exists():
        from trading.services import symbols_sync

        symbols_sync(venue="paper")
    _, tokens = jwt_pair_issue(user=UserFactory.create(), method="siwe")
    return str(tokens["access"])


def _publish_all(publish: Any, messages: int) -> None:
    for n in range(messages):
        publish({"price": str(50_000 + n), "n": n, "sent": time.time()})
        time.sleep(SPACING_SECONDS)


def run(clients: int = 1000, messages: int = 20) -> dict[str, Any]:
    _setup_django()
    import redis
    from django.conf import settings

    from config import streams

    token = _prepare_market()
    port = _free_port()
    server = _Server(port)
    server.start()
    while not server.server.started:
        time.sleep(0.05)
    try:
        procs = _spawn_all("ws", f"ws://127.0.0.1:{port}/ws/v1/", token, clients, messages)
        time.sleep(1)
        _publish_all(lambda data: streams.publish(STREAM, "ticker", data), messages)
        tandem = _summary(_collect_all(procs))
    finally:
        server.stop()

    redis_url = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"]
    raw = redis.Redis.from_url(redis_url)
    procs = _spawn_all("redis", redis_url, "-", clients, messages)
    time.sleep(1)
    _publish_all(
        lambda data: raw.publish(
            RAW_CHANNEL, json.dumps({"stream": STREAM, "type": "ticker", "seq": 0, "data": data})
        ),
        messages,
    )
    baseline = _summary(_collect_all(procs))
    ratio = round(tandem["p99"] / baseline["p99"], 2) if baseline["p99"] else None
    met = tandem["p99"] <= P99_TARGET_MS and tandem["lost"] == 0
    return {
        "name": f"websocket broadcast p99, {clients} clients on one market stream",
        "value": tandem["p99"],
        "unit": "ms",
        "baseline": baseline["p99"],
        "ratio": ratio,
        "target": f"p99 <= {P99_TARGET_MS:.0f} ms, 0 lost",
        "met": met,
        "note": (
            f"p50 {tandem['p50']} ms, lost {tandem['lost']} of {clients * messages}; raw Redis "
            f"pub/sub p50 {baseline['p50']} ms, p99 {baseline['p99']} ms, lost "
            f"{baseline['lost']}; ratio = Tandem p99 / raw p99"
        ),
        "tandem": tandem,
        "raw_redis": baseline,
        "run_id": uuid.uuid4().hex[:8],
    }


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--client-process":
        mode, target, token, clients, messages = argv[1:6]
        asyncio.run(_client_main(mode, target, token, int(clients), int(messages)))
        return
    parser = argparse.ArgumentParser(prog="python -m bench.bench_ws")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = parser.parse_args(argv)
    result = run(clients=args.clients, messages=args.messages)
    if args.json:
        print(json.dumps(result))
        return
    t, b = result["tandem"], result["raw_redis"]
    print(f"Tandem /ws/v1/ {args.clients} clients: p50 {t['p50']} ms, p99 {t['p99']} ms, ", end="")
    print(f"lost {t['lost']}")
    print(
        f"raw Redis pub/sub, same clients: p50 {b['p50']} ms, p99 {b['p99']} ms, lost {b['lost']}"
    )
    print(f"ratio (Tandem p99 / raw p99) {result['ratio']}; target {result['target']}: ", end="")
    print("met" if result["met"] else "NOT met")


if __name__ == "__main__":
    main()
