#!/usr/bin/env python3
"""Miroir's memory under large document bodies: peak and retained RSS for 1 and for 4 bodies of
~95 MB sent at once, against the sum of the bodies in flight.

    cargo build -p miroir -p miroir-devnode
    python3 scripts/body_memory.py [--mb 95] [--bin target/debug]

Starts one development node and `miroir serve` (SQLite) on loopback; samples VmRSS every 20 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
import urllib.request

from benchlib import rss_mib, start_devnode, start_miroir, stop

KEY = "memory-master-key"
NODE_KEY = "memory-node-key"


def body(megabytes: int, offset: int) -> bytes:
    """A JSON array of documents about `megabytes` MB long, ids from `offset`."""
    text = "x" * 900
    count = megabytes * 1_000_000 // 1000
    return json.dumps([{"id": offset + i, "text": text} for i in range(count)]).encode()


def post(url: str, data: bytes, results: list) -> None:
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Authorization", f"Bearer {KEY}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            results.append(response.status)
    except urllib.error.HTTPError as error:
        results.append(error.code)


def measure(pid: int, base: str, bodies: list[bytes]) -> tuple[float, float]:
    """Sends `bodies` at once; the peak RSS while they are served and the RSS 15 s after."""
    peak = rss_mib(pid)
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mib(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    results: list = []
    senders = [threading.Thread(target=post, args=(f"{base}/indexes/big/documents", b, results)) for b in bodies]
    for s in senders:
        s.start()
    for s in senders:
        s.join()
    time.sleep(15)
    done.set()
    sampler.join()
    assert all(status == 202 for status in results), results
    return peak, rss_mib(pid)


def documents_in(base: str) -> int:
    request = urllib.request.Request(f"{base}/indexes/big/stats")
    request.add_header("Authorization", f"Bearer {KEY}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["numberOfDocuments"]


def wait_for_documents(base: str, expected: int) -> None:
    """Waits (at most 5 minutes) until the index holds every document sent."""
    deadline = time.time() + 300
    while documents_in(base) != expected:
        assert time.time() < deadline, f"{documents_in(base)} documents, {expected} sent"
        time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=95)
    parser.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "debug"))
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="miroir-body-memory-")
    node, node_url = start_devnode(args.bin, NODE_KEY)
    processes = [node]
    try:
        miroir, base = start_miroir(args.bin, work, [node_url], KEY, NODE_KEY,
                                    server="max_body_bytes: 200000000")
        processes.append(miroir)
        idle = rss_mib(miroir.pid)
        one = [body(args.mb, 0)]
        four = [body(args.mb, (i + 1) * 1_000_000) for i in range(4)]
        size = len(one[0]) / 1_000_000
        peak1, after1 = measure(miroir.pid, base, one)
        peak4, after4 = measure(miroir.pid, base, four)
        print(f"idle RSS {idle:.0f} MiB; body {size:.0f} MB")
        print(f"1 body : peak {peak1:.0f} MiB ({(peak1 - idle) / size:.2f}x the body), 15 s after {after1:.0f} MiB")
        print(f"4 bodies: peak {peak4:.0f} MiB ({(peak4 - idle) / (4 * size):.2f}x the bodies), 15 s after {after4:.0f} MiB")
        sent = 5 * (args.mb * 1_000_000 // 1000)
        wait_for_documents(base, sent)
        print(f"all {sent} documents written")
    finally:
        stop(processes)


if __name__ == "__main__":
    main()
