#!/usr/bin/env python3
"""Benchmark of a rebalance: the rate at which a run copies documents to a node added to the
fleet, as a ratio of the rate of ingesting the same documents directly into one node, measured in
the same run.

    cargo build --release -p miroir -p miroir-devnode
    python3 scripts/rebalance_bench.py [--documents 100000] [--bin target/release] [--rounds 3]

It starts four development nodes on loopback: one alone (the baseline: every document written to
it in pages of --batch, timed until its last task succeeded) and three for the fleet (`miroir
serve`, SQLite task store, RF 1, one replica group of two nodes, --shards shards). The documents are
loaded through Miroir, then the third node is added (`POST /_miroir/nodes`) and the run is
followed on `/_miroir/rebalance/status` until it succeeded. Two rates are printed: the whole run
(documents copied / run duration, including the run's fixed waits for every instance to follow
each phase, about 9 s) and the copy phase alone (the run's `copySeconds`: time spent copying
shards, divided by the shards copied at once). Each round starts fresh processes; the median
ratios of `--rounds` rounds are printed, since other work on the machine moves single figures a
lot.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchlib import start_devnode, start_miroir, stop


def cpu_seconds(pid: int) -> float:
    """User + system CPU time process `pid` used so far, in seconds."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

KEY = "bench-master-key"
NODE_KEY = "bench-node-key"


def request(method: str, url: str, key: str, body: object | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=600) as answer:
        return json.load(answer)


def wait_task(base: str, key: str, uid: int) -> None:
    while True:
        task = request("GET", f"{base}/tasks/{uid}", key)
        if task["status"] == "succeeded":
            return
        if task["status"] in ("failed", "canceled"):
            raise SystemExit(f"task {uid} {task['status']}: {task}")
        time.sleep(0.02)


def documents(start: int, count: int) -> list[dict]:
    return [{"id": i, "title": f"item {i}", "genre": ["a", "b", "c"][i % 3], "rank": i % 97,
             "description": "a sample document of moderate size " * 4} for i in range(start, start + count)]


def ingest(base: str, key: str, index: str, total: int, batch: int) -> float:
    """Writes `total` documents in pages of `batch`; seconds until the last task succeeded."""
    started = time.perf_counter()
    last = None
    for start in range(0, total, batch):
        answer = request("POST", f"{base}/indexes/{index}/documents?primaryKey=id", key,
                         documents(start, min(batch, total - start)))
        last = answer["taskUid"]
    wait_task(base, key, last)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--bin", default="target/release")
    parser.add_argument("--shards", type=int, default=32)
    parser.add_argument("--parallel", type=int, default=2, help="rebalancer.max_concurrent_shards")
    parser.add_argument("--rounds", type=int, default=3, help="rounds run; the median ratios are reported")
    parser.add_argument("--perf", choices=["target", "sources", "miroir"],
                        help="record a perf profile of these processes during each run (perf-<round>.data)")
    args = parser.parse_args()

    rounds = []
    for number in range(1, args.rounds + 1):
        direct_rate, whole, copy_phase, copied, moves = one_round(args)
        rounds.append((whole / direct_rate, copy_phase / direct_rate))
        print(f"round {number}: copied {copied} documents ({moves} shard moves); direct ingest "
              f"{direct_rate:,.0f} docs/s; whole run {whole:,.0f} docs/s (ratio {whole / direct_rate:.2f}); "
              f"copy phase {copy_phase:,.0f} docs/s (ratio {copy_phase / direct_rate:.2f})", flush=True)
    print(f"documents: {args.documents}, pages of {args.batch}, {args.rounds} rounds")
    print(f"rebalance, whole run, median ratio:  {statistics.median(r[0] for r in rounds):.2f}")
    print(f"rebalance, copy phase, median ratio: {statistics.median(r[1] for r in rounds):.2f}")


def one_round(args: argparse.Namespace) -> tuple[float, float, float, int, int]:
    """One measurement: the direct ingest rate, then a rebalance's whole-run and copy-phase
    rates, the documents it copied and its shard moves."""
    processes = []
    try:
        alone, alone_url = start_devnode(args.bin, NODE_KEY)
        processes.append(alone)
        before = cpu_seconds(alone.pid)
        direct = ingest(alone_url, NODE_KEY, "bench", args.documents, args.batch)
        direct_rate = args.documents / direct
        direct_cpu = cpu_seconds(alone.pid) - before

        fleet = [start_devnode(args.bin, NODE_KEY) for _ in range(3)]
        processes += [p for p, _ in fleet]
        work = tempfile.mkdtemp(prefix="miroir-rebalance-bench-")
        extra = (f"metrics: {{ enabled: false }}\n"
                 f"rebalancer: {{ batch_size: {args.batch}, max_concurrent_shards: {args.parallel} }}\n")
        miroir, base = start_miroir(args.bin, work, [url for _, url in fleet[:2]], KEY, NODE_KEY, extra=extra,
                                    shards=args.shards)
        processes.append(miroir)
        ingest(base, KEY, "bench", args.documents, args.batch)

        added = request("POST", f"{base}/_miroir/nodes", KEY,
                        {"id": "n2", "address": fleet[2][1], "replicaGroup": "g"})
        run_id = added["rebalanceRun"]
        watched = {"miroir": [miroir.pid], "sources": [p.pid for p, _ in fleet[:2]], "target": [fleet[2][0].pid]}
        cpu_before = {k: sum(cpu_seconds(p) for p in v) for k, v in watched.items()}
        perf = None
        if args.perf:
            data = os.path.abspath(f"perf-{args.perf}-{os.getpid()}-{time.time_ns()}.data")
            perf = subprocess.Popen(["perf", "record", "-F", "999", "--call-graph", "fp", "-o", data,
                                     "-p", ",".join(str(p) for p in watched[args.perf])],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started = time.perf_counter()
        while True:
            status = request("GET", f"{base}/_miroir/rebalance/status", KEY)
            if status["current"] is None:
                run = next(r for r in status["runs"] if r["id"] == run_id)
                break
            if time.perf_counter() - started > 3600:
                raise SystemExit("the run did not finish within an hour")
            time.sleep(0.1)
        if perf is not None:
            perf.send_signal(2)
            perf.wait(timeout=60)
            print(f"  profile of the {args.perf}: perf report -i {data}", flush=True)
        if run["state"] != "succeeded":
            raise SystemExit(f"the run ended {run['state']}: {run}")
        copied = run["documentsCopied"]
        cpu = {k: sum(cpu_seconds(p) for p in v) - cpu_before[k] for k, v in watched.items()}
        print(f"  CPU µs per document: direct ingest {direct_cpu / args.documents * 1e6:.1f} (the node); run "
              + ", ".join(f"{k} {v / max(copied, 1) * 1e6:.1f}" for k, v in cpu.items()), flush=True)
        whole = copied / max(run_seconds(run), 1e-9)
        copy_phase = copied / max(run["copySeconds"], 1e-9)
        return direct_rate, whole, copy_phase, copied, run["shardsTotal"]
    finally:
        stop(processes)


def run_seconds(run: dict) -> float:
    """The run's duration from its RFC 3339 timestamps (nanoseconds cut to microseconds)."""
    import re
    from datetime import datetime

    def parse(stamp: str) -> datetime:
        stamp = re.sub(r"(\.\d{6})\d+", r"\1", stamp.replace("Z", "+00:00"))
        return datetime.fromisoformat(stamp)
    return (parse(run["finishedAt"]) - parse(run["startedAt"])).total_seconds()


if __name__ == "__main__":
    sys.exit(main())
