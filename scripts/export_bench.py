#!/usr/bin/env python3
"""Benchmark of the logical export: documents per second and Miroir's RSS while exporting an
index, against reading the same index through plain paginated `GET .../documents`, in one run.

    cargo build --release -p miroir -p miroir-devnode
    python3 scripts/export_bench.py [--documents 200000] [--bin target/release]

It starts two development nodes (or real `meilisearch` with --meilisearch) and `miroir serve`
with a SQLite task store on loopback, loads the documents through Miroir, then times both reads
of every document and samples Miroir's resident memory (VmRSS) every 20 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from benchlib import free_port, rss_mib, start_devnode, start_miroir, stop, wait_for

KEY = "bench-master-key"
NODE_KEY = "bench-node-key"


def request(method: str, url: str, body: bytes | None = None, content_type: str = "application/json"):
    req = urllib.request.Request(url, data=body, method=method)
    req.add_header("Authorization", f"Bearer {KEY}")
    if body is not None:
        req.add_header("Content-Type", content_type)
    return urllib.request.urlopen(req, timeout=600)


def wait_task(base: str, answer: dict) -> None:
    uid = answer["taskUid"]
    while True:
        task = json.load(request("GET", f"{base}/tasks/{uid}"))
        if task["status"] == "succeeded":
            return
        if task["status"] == "failed":
            raise SystemExit(f"task {uid} failed: {task}")
        time.sleep(0.05)


class PeakRss:
    """Samples a process's RSS every 20 ms while in a `with` block."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()

    def __enter__(self):
        self.peak = rss_mib(self.pid)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mib(self.pid))
            time.sleep(0.02)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=200_000)
    parser.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release"))
    parser.add_argument("--meilisearch", action="store_true", help="real meilisearch nodes from the PATH")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="miroir-export-bench-")
    processes: list[subprocess.Popen] = []
    try:
        nodes = []
        for i in range(2):
            if args.meilisearch:
                port = free_port()
                processes.append(subprocess.Popen(
                    ["meilisearch", "--http-addr", f"127.0.0.1:{port}", "--master-key", NODE_KEY,
                     "--db-path", f"{work}/node-{i}", "--no-analytics"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                nodes.append(f"http://127.0.0.1:{port}")
                wait_for(f"{nodes[-1]}/health")
            else:
                node, url = start_devnode(args.bin, NODE_KEY)
                processes.append(node)
                nodes.append(url)
        miroir, base = start_miroir(args.bin, work, nodes, KEY, NODE_KEY)
        processes.append(miroir)

        wait_task(base, json.load(request("POST", f"{base}/indexes",
                                          json.dumps({"uid": "bench", "primaryKey": "id"}).encode())))
        batch = 10_000
        for start in range(0, args.documents, batch):
            docs = [{"id": i, "title": f"Document {i}", "body": "lorem ipsum " * 8, "n": i % 97}
                    for i in range(start, min(start + batch, args.documents))]
            wait_task(base, json.load(request("POST", f"{base}/indexes/bench/documents", json.dumps(docs).encode())))
        idle = rss_mib(miroir.pid)

        with PeakRss(miroir.pid) as export_rss:
            started = time.perf_counter()
            count = 0
            with request("GET", f"{base}/_miroir/indexes/bench/documents/export") as stream:
                for line in stream:
                    if line.strip():
                        count += 1
            export_seconds = time.perf_counter() - started
        assert count == args.documents, f"export gave {count} documents"

        with PeakRss(miroir.pid) as paged_rss:
            started = time.perf_counter()
            count, offset = 0, 0
            while True:
                page = json.load(request("GET", f"{base}/indexes/bench/documents?offset={offset}&limit=1000"))
                count += len(page["results"])
                offset += 1000
                if len(page["results"]) < 1000:
                    break
            paged_seconds = time.perf_counter() - started
        assert count == args.documents, f"pagination gave {count} documents"

        export_rate = args.documents / export_seconds
        paged_rate = args.documents / paged_seconds
        print(f"documents: {args.documents}, Miroir idle RSS {idle:.1f} MiB")
        print(f"export:     {export_rate:9.0f} docs/s ({export_seconds:.2f} s), peak RSS {export_rss.peak:.1f} MiB")
        print(f"paginated:  {paged_rate:9.0f} docs/s ({paged_seconds:.2f} s), peak RSS {paged_rss.peak:.1f} MiB")
        print(f"ratio export/paginated: {export_rate / paged_rate:.2f}x")
    finally:
        stop(processes)


if __name__ == "__main__":
    sys.exit(main())
