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
import pathlib
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

KEY = "memory-master-key"
NODE_KEY = "memory-node-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_for(url: str) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


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
    """Sends `bodies` at once; the peak RSS while they are served and the RSS 5 s after."""
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
    time.sleep(5)
    done.set()
    sampler.join()
    assert all(status == 202 for status in results), results
    return peak, rss_mib(pid)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=95)
    parser.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "debug"))
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="miroir-body-memory-")
    node_port, port = free_port(), free_port()
    node = subprocess.Popen([f"{args.bin}/miroir-devnode", "--http-addr", f"127.0.0.1:{node_port}",
                             "--master-key", NODE_KEY], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pathlib.Path(work, "miroir.yaml").write_text(
        f"server: {{ bind: 127.0.0.1, port: {port}, max_body_bytes: 200000000 }}\n"
        f"metrics: {{ enabled: false }}\ntask_store: {{ path: miroir.db }}\nshards: 4\n"
        f'nodes:\n  - {{ id: n0, address: "http://127.0.0.1:{node_port}", replica_group: g }}\n'
    )
    env = dict(os.environ, MIROIR_MASTER_KEY=KEY, MIROIR_NODE_MASTER_KEY=NODE_KEY)
    miroir = subprocess.Popen([f"{args.bin}/miroir", "serve", "--config", f"{work}/miroir.yaml"], cwd=work,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"http://127.0.0.1:{node_port}/health")
        wait_for(f"{base}/health")
        idle = rss_mib(miroir.pid)
        one = [body(args.mb, 0)]
        four = [body(args.mb, (i + 1) * 1_000_000) for i in range(4)]
        size = len(one[0]) / 1_000_000
        peak1, after1 = measure(miroir.pid, base, one)
        peak4, after4 = measure(miroir.pid, base, four)
        print(f"idle RSS {idle:.0f} MiB; body {size:.0f} MB")
        print(f"1 body : peak {peak1:.0f} MiB ({(peak1 - idle) / size:.2f}x the body), 5 s after {after1:.0f} MiB")
        print(f"4 bodies: peak {peak4:.0f} MiB ({(peak4 - idle) / (4 * size):.2f}x the bodies), 5 s after {after4:.0f} MiB")
    finally:
        miroir.terminate()
        node.terminate()
        miroir.wait(timeout=30)
        node.wait(timeout=10)


if __name__ == "__main__":
    main()
