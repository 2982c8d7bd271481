#!/usr/bin/env python3
"""Slow clients against one `miroir serve`: N connections each send a search's headers and part
of its body, then nothing. Measures how long `/health` and a whole search take meanwhile, and
when the gateway closes the slow connections.

    cargo build -p miroir -p miroir-devnode
    python3 scripts/slow_clients.py [--connections 1100] [--bin target/debug]

`--bin` may point at an older build to compare. Runs on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
import urllib.request

from benchlib import start_devnode, start_miroir, stop

KEY = "slow-master-key"
NODE_KEY = "slow-node-key"


def timed_get(url: str, limit: float, key: str | None = None) -> str:
    """`GET url`: the status and the time it took, or how long it waited for nothing."""
    started = time.perf_counter()
    request = urllib.request.Request(url)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=limit) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except Exception as error:  # timeout or reset
        return f"no answer after {time.perf_counter() - started:.1f} s ({type(error).__name__})"
    return f"{status} in {(time.perf_counter() - started) * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=1100)
    parser.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "debug"))
    parser.add_argument("--watch", type=float, default=100.0, help="seconds to watch the slow connections")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="miroir-slow-clients-")
    node, node_url = start_devnode(args.bin, NODE_KEY)
    processes = [node]
    try:
        miroir, base = start_miroir(args.bin, work, [node_url], KEY, NODE_KEY)
        processes.append(miroir)
        port = int(base.rsplit(":", 1)[1])
        print(f"before: /health {timed_get(f'{base}/health', 60)}, "
              f"GET /indexes {timed_get(f'{base}/indexes', 60, KEY)}")
        head = (f"POST /indexes/movies/search HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
                f"Content-Type: application/json\r\nContent-Length: 40\r\n\r\n{{\"q\":").encode()
        slow = []
        for _ in range(args.connections):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(head)
            s.setblocking(False)
            slow.append(s)
        time.sleep(1.0)
        print(f"with {args.connections} slow connections: /health {timed_get(f'{base}/health', 60)}, "
              f"GET /indexes {timed_get(f'{base}/indexes', 60, KEY)}")
        started = time.time()
        open_count = len(slow)
        while open_count and time.time() - started < args.watch:
            time.sleep(1.0)
            still = []
            for s in slow:
                try:
                    data = s.recv(4096)
                    if data == b"":
                        s.close()
                        continue
                    # An answer (408) arrived; the connection may stay open after it.
                    still.append(s)
                except BlockingIOError:
                    still.append(s)
                except OSError:
                    s.close()
            slow = still
            if len(slow) != open_count:
                print(f"  after {time.time() - started:5.1f} s: {len(slow)} slow connections still open")
                open_count = len(slow)
        print(f"after {time.time() - started:.0f} s: {len(slow)} of {args.connections} slow connections still open")
        for s in slow:
            s.close()
    finally:
        stop(processes)


if __name__ == "__main__":
    main()
