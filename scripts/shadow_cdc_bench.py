#!/usr/bin/env python3
"""Benchmarks of the shadow tee and of change data capture, in one run each:

    cargo build --release -p miroir -p miroir-devnode
    python3 scripts/shadow_cdc_bench.py shadow [--seconds 10] [--clients 8] [--rounds 3]
    python3 scripts/shadow_cdc_bench.py cdc [--seconds 10] [--clients 4] [--rounds 3] [--nats nats-server]

`shadow`: three development nodes behind `miroir serve` (SQLite task store, 8 shards), 2000
small documents; a fourth development node holding the same documents is the shadow target (`--target dead`:
a port nobody listens on, to measure the tee's own cost without the target's work).
For each round, `miroir serve` with `shadow.enabled: false`, then with `sample_rate: 1.0`:
`--clients` processes search on keep-alive connections for `--seconds`; the script reports
searches per second, the client-side p50 latency, the CPU seconds Miroir, the three nodes and
the target used during the measurement, and the ratios shadow-on / shadow-off.

`cdc`: the same setup, with three empty development nodes for each run (nodes slow down as
documents pile up, which would favour the run that comes first); for each round, `miroir serve` with `cdc.enabled: false`, then with the
long-poll queue and a NATS sink (a `nats-server -js` this script starts): `--clients` processes
each add documents in batches of 10 (one write, so one event, per request) for `--seconds`.
With CDC on, a long-poll consumer (`GET /_miroir/changes`) and a NATS subscriber (a minimal
protocol client in this script) count events while the writers run and until they caught up.
Reported: writes acknowledged per second (on / off), the CPU Miroir, the nodes, `nats-server` and
the script's consumers used meanwhile, and events per second each consumer got.

Everything shares the machine (the nodes, the gateway, the target, the clients): compare the
ratios within a round, not the figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import resource
import socket
import statistics
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


def request(method: str, url: str, body: bytes | None = None, key: str = KEY):
    req = urllib.request.Request(url, data=body, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    return json.load(urllib.request.urlopen(req, timeout=60))


def wait_task(base: str, answer: dict, key: str = KEY) -> None:
    uid = answer["taskUid"]
    while True:
        task = request("GET", f"{base}/tasks/{uid}", key=key)
        if task["status"] == "succeeded":
            return
        if task["status"] == "failed":
            raise SystemExit(f"task {uid} failed: {task}")
        time.sleep(0.05)


def load(base: str, index: str, key: str = KEY) -> None:
    wait_task(base, request("POST", f"{base}/indexes", json.dumps({"uid": index, "primaryKey": "id"}).encode(), key), key)
    docs = [{"id": i, "title": f"phone {i}", "brand": f"b{i % 17}"} for i in range(2000)]
    wait_task(base, request("POST", f"{base}/indexes/{index}/documents", json.dumps(docs).encode(), key), key)


def searcher(port: int, index: str, search: bytes, seconds: float, out) -> None:
    """Searches on one keep-alive connection for `seconds`; puts its latencies (ms)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    latencies, deadline = [], time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        connection.request("POST", f"/indexes/{index}/search", search, headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"search answered {response.status}")
        latencies.append((time.perf_counter() - started) * 1000)
    out.put(latencies)


def writer(port: int, index: str, first: int, seconds: float, out) -> None:
    """Adds batches of 10 documents on one keep-alive connection for `seconds`; puts its count."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    done, deadline, next_id = 0, time.perf_counter() + seconds, first
    while time.perf_counter() < deadline:
        docs = [{"id": next_id + i, "title": f"case {next_id + i}"} for i in range(10)]
        next_id += 10
        connection.request("POST", f"/indexes/{index}/documents", json.dumps(docs).encode(), headers)
        response = connection.getresponse()
        response.read()
        if response.status != 202:
            raise SystemExit(f"write answered {response.status}")
        done += 1
    out.put(done)


def run_processes(target, args_list: list[tuple], timeout: float) -> list:
    out = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=target, args=(*a, out)) for a in args_list]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=timeout) for _ in workers]
    for worker in workers:
        worker.join()
    return results


def children_cpu_seconds() -> float:
    """User + system CPU time of this script's ended child processes (the writers), in seconds."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds(pid: int) -> float:
    """User + system CPU time process `pid` used so far, in seconds."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def shadow_run(args, nodes: list[str], target: str, shadow: bool) -> tuple[float, float]:
    name = "shadow 100%" if shadow else "shadow off"
    # One task store for every run: the index loaded by the first is in the catalog of all.
    work = args._work
    extra = "metrics: { enabled: false }\ntelemetry: { log_level: warn }\n"
    if shadow:
        extra += (f"shadow: {{ enabled: true, sample_rate: 1.0, targets: "
                  f"[{{ name: twin, address: \"{target}\", api_key_env: BENCH_TARGET_KEY }}] }}\n")
    os.environ["BENCH_TARGET_KEY"] = NODE_KEY
    miroir, base = start_miroir(args.bin, work, nodes, KEY, NODE_KEY, extra=extra)
    index = "bench"
    try:
        if not args._loaded:
            load(base, index)
            args._loaded = True
        port = int(base.rsplit(":", 1)[1])
        search = json.dumps({"q": args.query, "limit": 10}).encode()
        run_processes(searcher, [(port, index, search, 1.0)], 60)  # warm up
        pids = {"miroir": [miroir.pid], "nodes": [p.pid for p in args._nodes],
                "target": [p.pid for p in args._target]}
        cpu_before = {k: sum(cpu_seconds(p) for p in v) for k, v in pids.items()}
        started = time.perf_counter()
        results = run_processes(searcher, [(port, index, search, args.seconds)] * args.clients, args.seconds + 60)
        elapsed = time.perf_counter() - started
        cpu = {k: sum(cpu_seconds(p) for p in v) - cpu_before[k] for k, v in pids.items()}
        latencies = sorted(l for r in results for l in r)
        rate = len(latencies) / elapsed
        p50 = latencies[len(latencies) // 2]
        extra_info = ""
        if shadow:
            summary = request("GET", f"{base}/_miroir/shadow/summary")
            twin = summary["targets"][0]
            extra_info = (f", compared {twin['compared']}, identical {twin['identical']}, "
                          f"dropped {summary['dropped']}")
        extra_info += "; CPU s: " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
        print(f"{name:<12} {rate:8.0f} searches/s, p50 {p50:6.2f} ms ({len(latencies)} in {elapsed:.1f} s){extra_info}",
              flush=True)
        return rate, p50
    finally:
        stop([miroir])


class NatsCounter(threading.Thread):
    """Subscribes to `subject` with the NATS text protocol and counts messages."""

    def __init__(self, port: int, subject: str):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.recv(4096)  # INFO
        self.sock.sendall(f'CONNECT {{"verbose":false,"headers":true}}\r\nSUB {subject} 1\r\nPING\r\n'.encode())
        self.count = 0
        self.buffer = b""

    def run(self):
        while True:
            data = self.sock.recv(1 << 16)
            if not data:
                return
            self.buffer += data
            while True:
                line_end = self.buffer.find(b"\r\n")
                if line_end < 0:
                    break
                line = self.buffer[:line_end].decode()
                if line.startswith("MSG") or line.startswith("HMSG"):
                    size = int(line.split()[-1])
                    if len(self.buffer) < line_end + 2 + size + 2:
                        break
                    self.buffer = self.buffer[line_end + 2 + size + 2:]
                    self.count += 1
                else:
                    self.buffer = self.buffer[line_end + 2:]
                    if line == "PING":
                        self.sock.sendall(b"PONG\r\n")


class Counted:
    """A consumer left out by `--consumers`: counts as having everything."""

    count = float("inf")
    stopped = False


class LongPoller(threading.Thread):
    """Reads `GET /_miroir/changes` from cursor 0 and counts events."""

    def __init__(self, base: str, index: str):
        super().__init__(daemon=True)
        self.base, self.index, self.count, self.cursor, self.stopped = base, index, 0, 0, False

    def run(self):
        port = int(self.base.rsplit(":", 1)[1])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {KEY}"}
        while not self.stopped:
            connection.request("GET", f"/_miroir/changes?index={self.index}&since={self.cursor}"
                                      f"&limit=1000&timeout=1s", headers=headers)
            page = json.loads(connection.getresponse().read())
            self.count += len(page["events"])
            self.cursor = page["cursor"]


def cdc_run(args, nodes: list[str], nats_port: int | None) -> float:
    on = nats_port is not None
    name = "cdc on" if on else "cdc off"
    work = tempfile.mkdtemp(prefix="miroir-cdc-bench-")
    extra = "metrics: { enabled: false }\ntelemetry: { log_level: warn }\n"
    index = f"ingest{next(RUNS)}"
    if on and (args.bare or args.consumers == "long-poll"):
        extra += "cdc: { enabled: true }\n"
    elif on:
        extra += f"cdc: {{ enabled: true, sinks: {{ nats: {{ url: \"nats://127.0.0.1:{nats_port}\" }} }} }}\n"
    miroir, base = start_miroir(args.bin, work, nodes, KEY, NODE_KEY, extra=extra)
    try:
        wait_task(base, request("POST", f"{base}/indexes", json.dumps({"uid": index, "primaryKey": "id"}).encode()))
        port = int(base.rsplit(":", 1)[1])
        poller = nats = None
        if on and not args.bare:
            if args.consumers in ("both", "nats"):
                nats = NatsCounter(nats_port, f"miroir.changes.{index}")
                nats.start()
            if args.consumers in ("both", "long-poll"):
                poller = LongPoller(base, index)
                poller.start()
        pids = {"miroir": [miroir.pid], "nodes": [p.pid for p in args._nodes],
                "nats-server": [p.pid for p in args._nats], "consumers": [os.getpid()]}
        cpu_before = {k: sum(cpu_seconds(p) for p in v) for k, v in pids.items()}
        writers_before = children_cpu_seconds()
        started = time.perf_counter()
        counts = run_processes(writer, [(port, index, i * 10_000_000, args.seconds) for i in range(args.clients)],
                               args.seconds + 60)
        elapsed = time.perf_counter() - started
        writes = sum(counts)
        rate = writes / elapsed
        cpu = {k: sum(cpu_seconds(p) for p in v) - cpu_before[k] for k, v in pids.items()}
        cpu["writers"] = children_cpu_seconds() - writers_before
        line = f"{name:<8} {rate:8.0f} writes/s ({writes} in {elapsed:.1f} s); CPU s: " + ", ".join(
            f"{k} {v:.1f}" for k, v in cpu.items())
        if on and not args.bare:
            poller = poller or Counted()
            nats = nats or Counted()
            during = (poller.count, nats.count)
            deadline = time.perf_counter() + 120
            while (poller.count < writes or nats.count < writes) and time.perf_counter() < deadline:
                time.sleep(0.05)
            drained = time.perf_counter() - started
            poller.stopped = True
            line += (f"; long-poll {during[0] / elapsed:.0f} events/s while ingesting, all {poller.count} "
                     f"after {drained:.1f} s ({poller.count / drained:.0f}/s); NATS {during[1] / elapsed:.0f} "
                     f"events/s while ingesting, all {nats.count} after {drained:.1f} s ({nats.count / drained:.0f}/s)")
        print(line, flush=True)
        return rate
    finally:
        stop([miroir])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["shadow", "cdc"])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--query", default="phone")
    parser.add_argument("--target", choices=["twin", "replay", "dead"], default="twin",
                        help="shadow: a development node holding the same documents; the same answering "
                        "repeated searches from memory (`--replay-searches`: a target whose work is not "
                        "on this machine's cores, as on its own machine); or a port nobody listens on")
    parser.add_argument("--replay-nodes", action="store_true",
                        help="shadow: the three nodes answer repeated searches from memory too, so "
                        "Miroir's own work (and the tee's) is most of the search's cost")
    parser.add_argument("--bare", action="store_true",
                        help="cdc: the queue sink only and no consumer (the cost of recording alone)")
    parser.add_argument("--consumers", choices=["both", "long-poll", "nats"], default="both",
                        help="cdc: which consumers read the events (long-poll: the NATS sink is off too)")
    parser.add_argument("--nats", default=os.environ.get("MIROIR_TEST_NATS_SERVER", "nats-server"))
    parser.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release"))
    args = parser.parse_args()
    args._loaded = False
    args._work = tempfile.mkdtemp(prefix="miroir-shadow-bench-")
    args._nodes, args._target = [], []
    processes: list[subprocess.Popen] = []
    try:
        nodes = []
        for _ in range(3):
            node, url = start_devnode(args.bin, NODE_KEY, *(["--replay-searches"] if args.replay_nodes else []))
            processes.append(node)
            nodes.append(url)
        if args.what == "shadow":
            args._nodes = list(processes)
            if args.target in ("twin", "replay"):
                replay = ["--replay-searches"] if args.target == "replay" else []
                target, target_url = start_devnode(args.bin, NODE_KEY, *replay)
                processes.append(target)
                args._target = [target]
                load(target_url, "bench", key=NODE_KEY)
            else:
                target_url = f"http://127.0.0.1:{free_port()}"
            ratios = []
            for _ in range(args.rounds):
                off_rate, off_p50 = shadow_run(args, nodes, target_url, False)
                on_rate, on_p50 = shadow_run(args, nodes, target_url, True)
                ratios.append((on_rate / off_rate, on_p50 / off_p50))
            print("shadow 100% / off by round: " + "; ".join(
                f"throughput {t:.3f}, p50 {p:.3f}" for t, p in ratios))
            print(f"median: throughput {statistics.median(t for t, _ in ratios):.3f}, "
                  f"p50 {statistics.median(p for _, p in ratios):.3f}")
        else:
            nats_port = free_port()
            nats_dir = tempfile.mkdtemp(prefix="miroir-bench-nats-")
            nats = subprocess.Popen([args.nats, "-a", "127.0.0.1", "-p", str(nats_port), "-js", "-sd", nats_dir],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            processes.append(nats)
            args._nats = [nats]
            deadline = time.time() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", nats_port)).close()
                    break
                except OSError:
                    if time.time() > deadline:
                        raise SystemExit("nats-server did not start")
                    time.sleep(0.05)
            def fresh_nodes() -> list[str]:
                # Each run on empty nodes: the nodes slow down as earlier runs' documents pile
                # up, which would favour whichever setting runs first.
                stop(processes[1:])
                del processes[1:]
                urls = []
                for _ in range(3):
                    node, url = start_devnode(args.bin, NODE_KEY)
                    processes.append(node)
                    urls.append(url)
                args._nodes = processes[1:]
                return urls

            stop(processes[:3])
            del processes[:3]  # nats-server stays first; the nodes of each run follow it
            ratios = []
            for _ in range(args.rounds):
                off = cdc_run(args, fresh_nodes(), None)
                on = cdc_run(args, fresh_nodes(), nats_port)
                ratios.append(on / off)
            print("ingest cdc on / off by round: " + ", ".join(f"{r:.3f}" for r in ratios))
    finally:
        stop(processes)


if __name__ == "__main__":
    sys.exit(main())
