#!/usr/bin/env python3
"""Benchmark of trace export's cost: search throughput of `miroir serve` with tracing off, with
every request exported over OTLP/HTTP, and with `telemetry.sampling_ratio: 0.01`, in one run.

    cargo build --release -p miroir -p miroir-devnode
    python3 scripts/trace_bench.py [--seconds 10] [--clients 8] [--query ""] [--bin target/release]

It starts three development nodes and, for each configuration in turn, `miroir serve` (SQLite
task store, 8 shards) on loopback, loads 2000 small documents, then runs `--clients` processes
that each send searches (`{"q": QUERY, "limit": 10}`) on one keep-alive connection for
`--seconds`. The OTLP collector is a
small HTTP server in this script that accepts `POST /v1/traces` and counts the bytes it gets
(it does not decode them). Everything shares the machine: compare the ratios, not the figures.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from benchlib import free_port, start_devnode, start_miroir, stop

KEY = "bench-master-key"
NODE_KEY = "bench-node-key"
RUNS = iter(range(1_000_000))


class Collector(http.server.ThreadingHTTPServer):
    """Accepts OTLP/HTTP exports and counts requests and bytes."""

    daemon_threads = True

    def __init__(self):
        self.exports = 0
        self.bytes = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", free_port()), CollectorHandler)


class CollectorHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        with self.server.lock:
            self.server.exports += 1
            self.server.bytes += length
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def request(method: str, url: str, body: bytes | None = None):
    req = urllib.request.Request(url, data=body, method=method)
    req.add_header("Authorization", f"Bearer {KEY}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    return json.load(urllib.request.urlopen(req, timeout=60))


def wait_task(base: str, answer: dict) -> None:
    uid = answer["taskUid"]
    while True:
        task = request("GET", f"{base}/tasks/{uid}")
        if task["status"] == "succeeded":
            return
        if task["status"] == "failed":
            raise SystemExit(f"task {uid} failed: {task}")
        time.sleep(0.05)


def client(port: int, index: str, search: bytes, seconds: float, counts) -> None:
    """Searches on one keep-alive connection until `seconds` pass; adds its count to `counts`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    done, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        connection.request("POST", f"/indexes/{index}/search", search, headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"search answered {response.status}")
        done += 1
    counts.put(done)


def run(args, bin_dir: str, nodes: list[str], name: str, telemetry: str) -> float:
    """Searches per second through a fresh `miroir serve` with the `telemetry` section."""
    work = tempfile.mkdtemp(prefix=f"miroir-trace-bench-{name.replace(' ', '-')}-")
    extra = f"metrics: {{ enabled: false }}\ntelemetry: {{ log_level: warn{telemetry} }}\n"
    miroir, base = start_miroir(bin_dir, work, nodes, KEY, NODE_KEY, extra=extra)
    # The nodes outlive each gateway: every run has an index of its own.
    index = f"bench{next(RUNS)}"
    try:
        wait_task(base, request("POST", f"{base}/indexes", json.dumps({"uid": index, "primaryKey": "id"}).encode()))
        docs = [{"id": i, "title": f"phone {i}", "brand": f"b{i % 17}"} for i in range(2000)]
        wait_task(base, request("POST", f"{base}/indexes/{index}/documents", json.dumps(docs).encode()))
        port = int(base.rsplit(":", 1)[1])
        # Warm up the connections and the caches.
        warm = multiprocessing.Queue()
        search = json.dumps({"q": args.query, "limit": 10}).encode()
        client(port, index, search, 1.0, warm)
        counts = multiprocessing.Queue()
        workers = [multiprocessing.Process(target=client, args=(port, index, search, args.seconds, counts))
                   for _ in range(args.clients)]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        total = sum(counts.get(timeout=args.seconds + 60) for _ in workers)
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
        metrics = urllib.request.Request(f"{base}/_miroir/metrics")
        metrics.add_header("Authorization", f"Bearer {KEY}")
        text = urllib.request.urlopen(metrics, timeout=10).read().decode()
        dropped = next((line.split()[-1] for line in text.splitlines()
                        if line.startswith("miroir_trace_spans_dropped_total ")), "0")
        rate = total / elapsed
        print(f"{name:<28} {rate:9.0f} searches/s ({total} in {elapsed:.1f} s), spans dropped {dropped}")
        return rate
    finally:
        stop([miroir])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--query", default="", help="the search's `q`; the default placeholder search keeps the "
                        "development nodes' share small, so the gateway's own cost shows")
    parser.add_argument("--rounds", type=int, default=3, help="each configuration is measured this many times, alternating")
    parser.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release"))
    args = parser.parse_args()
    collector = Collector()
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{collector.server_address[1]}"
    processes: list[subprocess.Popen] = []
    try:
        nodes = []
        for _ in range(3):
            node, url = start_devnode(args.bin, NODE_KEY)
            processes.append(node)
            nodes.append(url)
        configs = [
            ("tracing off", ""),
            ("export every request", f', otlp_endpoint: "{endpoint}", sampling_ratio: 1.0'),
            ("sampling_ratio 0.01", f', otlp_endpoint: "{endpoint}", sampling_ratio: 0.01'),
        ]
        rates: dict[str, list[float]] = {name: [] for name, _ in configs}
        os.environ["OTEL_BSP_SCHEDULE_DELAY"] = "1000"
        for _ in range(args.rounds):
            for name, telemetry in configs:
                rates[name].append(run(args, args.bin, nodes, name, telemetry))
        print(f"collector: {collector.exports} exports, {collector.bytes / 1e6:.1f} MB")
        # Each round's runs are close in time: a ratio within a round suffers less from the
        # machine's other load than one across rounds.
        off = rates["tracing off"]
        for name, values in rates.items():
            ratios = sorted(v / o for v, o in zip(values, off))
            median = ratios[len(ratios) // 2]
            print(f"{name:<24} best {max(values):6.0f} searches/s; ratio to tracing off by round "
                  f"{', '.join(f'{r:.3f}' for r in ratios)} (median {median:.3f})")
    finally:
        stop(processes)
        collector.shutdown()


if __name__ == "__main__":
    sys.exit(main())
