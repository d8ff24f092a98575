"""`make bench`: run every benchmark in bench/ and write bench/results.json and results.md.

Each ``bench/bench_*.py`` module exposes ``run() -> dict | list[dict]``; every dict is one figure:
``name``, ``value`` (+ ``unit``), the ``baseline`` measured in the same run, ``ratio``, ``target``
and optionally ``met`` (for "lower is better" figures such as latencies the module decides),
``note`` (the gap and its cause when a target is missed) and ``curve`` (growth curve points).
Each module runs in its own process so one benchmark's state (Django settings, pools, caches)
cannot colour another's figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MARKER = "BENCH-RESULT "
PER_BENCH_TIMEOUT = 15 * 60


def discover() -> list[str]:
    return sorted(path.stem for path in HERE.glob("bench_*.py"))


def run_one(name: str) -> tuple[list[dict[str, Any]], float, str]:
    code = (
        "import json, sys, importlib\n"
        f"module = importlib.import_module('bench.{name}')\n"
        "result = module.run()\n"
        f"print({MARKER!r} + json.dumps(result, default=str))\n"
    )
    started = time.monotonic()
    proc = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-c", code],
        cwd=HERE.parent,
        capture_output=True,
        text=True,
        timeout=PER_BENCH_TIMEOUT,
        check=False,
    )
    elapsed = time.monotonic() - started
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARKER):
            raw = json.loads(line[len(MARKER) :])
            return (raw if isinstance(raw, list) else [raw]), elapsed, ""
    error = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return [], elapsed, f"exit {proc.returncode}: {error}"


def met(result: dict[str, Any]) -> bool | None:
    if "met" in result:
        return bool(result["met"])
    if result.get("ratio") is None or result.get("target") is None:
        return None
    return float(result["ratio"]) >= float(result["target"])


def markdown(results: list[dict[str, Any]], failures: dict[str, str]) -> str:
    lines = [
        "# Benchmark results",
        "",
        "| benchmark | figure | value | baseline | ratio | target | met | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        verdict = {True: "yes", False: "**no**", None: "-"}[met(result)]
        unit = f" {result['unit']}" if result.get("unit") else ""
        lines.append(
            f"| {result.get('bench', '')} | {result['name']} | {result.get('value')}{unit} | "
            f"{result.get('baseline', '-')} | {result.get('ratio', '-')} | "
            f"{result.get('target', '-')} | {verdict} | {result.get('note', '')} |"
        )
    curves = [r for r in results if r.get("curve")]
    for result in curves:
        lines += [
            "",
            f"## Growth: {result['name']}",
            "",
            "| size | value | per unit |",
            "|---|---|---|",
        ]
        for point in result["curve"]:
            lines.append(
                f"| {point.get('size')} | {point.get('value')} | {point.get('per_unit', '')} |"
            )
    if failures:
        lines += ["", "## Benchmarks that did not finish", ""]
        lines += [f"- {name}: {error}" for name, error in failures.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("only", nargs="*", help="benchmark module names (default: all)")
    args = parser.parse_args(argv)
    names = args.only or discover()
    results: list[dict[str, Any]] = []
    failures: dict[str, str] = {}
    for name in names:
        print(f"== {name}", flush=True)
        figures, elapsed, error = run_one(name)
        if error:
            failures[name] = error
            print(f"   failed after {elapsed:.0f}s: {error}", flush=True)
        for figure in figures:
            figure["bench"] = name
            figure["seconds"] = round(elapsed, 1)
            results.append(figure)
            print(
                f"   {figure['name']}: {figure.get('value')} {figure.get('unit', '')} "
                f"ratio={figure.get('ratio')} target={figure.get('target')} "
                f"met={met(figure)}",
                flush=True,
            )
    (HERE / "results.json").write_text(
        json.dumps({"results": results, "failures": failures}, indent=2, default=str)
    )
    (HERE / "results.md").write_text(markdown(results, failures))
    print(markdown(results, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
