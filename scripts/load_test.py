"""Load test over real HTTP: concurrency, correctness under load, latency percentiles, memory growth.

Starts `assistant serve` as a child process on a free port (embedded index, default corpus), then:

1. asks every dev question serially and keeps the answers as the reference;
2. 50 concurrent clients x 20 questions: counts errors and answers that differ from the serial ones;
3. 20 concurrent clients on /api/ask: p50/p95/p99 and throughput; first SSE event latency;
4. 5,000 requests in all: resident memory of the server before and after.

Usage: .venv/bin/python scripts/load_test.py [--requests 5000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="total requests for the memory check")
    parser.add_argument("--json", action="store_true", help="print figures as JSON")
    parser.add_argument("--cache", action="store_true", help="keep the answer cache on (the server default)")
    args = parser.parse_args()

    questions = [json.loads(line) for line in (ROOT / "tests/data/dev_qa.jsonl").read_text().splitlines() if line]
    port = free_port()
    # No rate limit; without --cache no answer cache either, so every request runs the whole pipeline.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ASSISTANT_SECURITY__RATE_LIMIT_PER_MINUTE": "0"}
    if not args.cache:
        env["ASSISTANT_ANSWER__CACHE_SIZE"] = "0"
    # This checkout's package (python -m from ROOT), not whichever one the venv's console script was installed from.
    server = subprocess.Popen(
        [sys.executable, "-m", "assistant.cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or server.poll() is not None:
                raise SystemExit("server did not start")
            time.sleep(0.5)
        client = httpx.Client(base_url=base, timeout=60, limits=httpx.Limits(max_connections=64))

        def ask(q: dict) -> tuple[float, int, str]:
            body = {"question": q["question"], "history": q.get("history")}
            started = time.perf_counter()
            response = client.post("/api/ask", json=body)
            elapsed = (time.perf_counter() - started) * 1000
            return elapsed, response.status_code, response.json().get("answer", "") if response.is_success else ""

        reference = {q["id"]: ask(q)[2] for q in questions}
        rss_start = rss_mb(server.pid)
        sent = len(questions)

        # 2. 50 clients x 20 questions
        jobs = [questions[i % len(questions)] for i in range(50 * 20)]
        with ThreadPoolExecutor(50) as pool:
            results = list(pool.map(ask, jobs))
        sent += len(jobs)
        errors = sum(status != 200 for _, status, _ in results)
        mismatched = sum(answer != reference[q["id"]] for q, (_, _, answer) in zip(jobs, results, strict=True))

        # 3. 20 clients: latency and throughput
        jobs = [questions[i % len(questions)] for i in range(20 * 25)]
        started = time.perf_counter()
        with ThreadPoolExecutor(20) as pool:
            timed = list(pool.map(ask, jobs))
        wall = time.perf_counter() - started
        sent += len(jobs)
        latencies = [ms for ms, _, _ in timed]
        first_event = []
        for q in questions:
            started = time.perf_counter()
            with client.stream("POST", "/api/ask/stream", json={"question": q["question"]}) as response:
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        first_event.append((time.perf_counter() - started) * 1000)
                        break

        # 4. the rest of the requests, then memory again
        remaining = max(0, args.requests - sent)
        with ThreadPoolExecutor(20) as pool:
            tail = list(pool.map(ask, [questions[i % len(questions)] for i in range(remaining)]))
        errors += sum(status != 200 for _, status, _ in tail)
        sent += remaining
        rss_end = rss_mb(server.pid)
        figures = {
            "concurrent_50x20": {"requests": 1000, "errors": errors, "answers_differing_from_serial": mismatched},
            "clients_20": {
                "requests": len(timed),
                "throughput_rps": round(len(timed) / wall, 1),
                "p50_ms": round(statistics.median(latencies), 1),
                "p95_ms": round(pct(latencies, 0.95), 1),
                "p99_ms": round(pct(latencies, 0.99), 1),
            },
            "first_sse_event_ms": {
                "p50": round(statistics.median(first_event), 1),
                "p95": round(pct(first_event, 0.95), 1),
            },
            "memory": {
                "requests": sent,
                "rss_start_mb": round(rss_start, 1),
                "rss_end_mb": round(rss_end, 1),
                "growth_mb": round(rss_end - rss_start, 1),
            },
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(json.dumps(figures, indent=None if args.json else 2))
    return 0 if errors == 0 and mismatched == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
