#!/usr/bin/env python3
"""What a search costs Miroir, against a plain reverse proxy and against no proxy, in one run.

    make bench-proxy        # or:
    cargo build --release -p miroir -p miroir-devnode
    python3 scripts/proxy_bench.py [--seconds 10] [--connections 16] [--rounds 3] [--bin DIR]

Needs `wrk` and `nginx` (Debian: `apt-get install -y wrk nginx`). It starts four development
nodes that replay the answers they already computed (`--replay-searches`, so the node's own scan
does not drown the proxies' cost), loads 2,000 products, and measures with `wrk` (16
connections, keep-alive) the same `q` + `filter` search sent

- `direct` to node 0;
- `nginx`: through nginx (one worker per core, keep-alive upstream) to node 0;
- `miroir S=1`: through `miroir serve` over node 0 alone, the index in one shard (the
  whole-index path: the client's request is sent as it is, the answer has its bookkeeping
  taken out);
- `miroir S=16`: through `miroir serve` over three other nodes, the index in 16 shards (a
  scatter of three node requests and a merge).

The targets are measured in turn, round after round, so they share the machine's state.
For each it reports throughput, p50/p99 latency (from wrk), and the CPU time the proxy process
spent per request (user + system, from /proc/<pid>/stat, every nginx process summed), and the
node's. Ratios are computed per round, the median printed. `--perf SECONDS` also records a
`perf` profile of `miroir S=1` (and S=16) into the work directory, for `perf report`.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchlib import free_port, start_miroir, stop, wait_for

KEY = "bench-master-key"
NODE_KEY = "bench-node-key"
TICKS = os.sysconf("SC_CLK_TCK")
SEARCH = {"q": "phone", "filter": "price > 100", "limit": 20}


def start_node(bin_dir: str) -> tuple[subprocess.Popen, str, int]:
    """A development node replaying its searches; the process, its URL and port."""
    port = free_port()
    process = subprocess.Popen([f"{bin_dir}/miroir-devnode", "--http-addr", f"127.0.0.1:{port}",
                                "--master-key", NODE_KEY, "--replay-searches"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/health")
    return process, url, port


def start_nginx(work: str, upstream_port: int) -> tuple[subprocess.Popen, int]:
    """nginx from the system, proxying everything to the node with keep-alive connections."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    conf = pathlib.Path(work, "nginx.conf")
    conf.write_text(f"""
worker_processes auto;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {work}/nginx-access.log;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    upstream node {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://node;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
""")
    process = subprocess.Popen([nginx, "-p", work, "-c", str(conf), "-g", "daemon off;"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(f"http://127.0.0.1:{port}/health")
    return process, port


def cpu_ticks(pid: int) -> int:
    """User + system ticks of `pid` and of its child processes still running (nginx workers)."""
    def own(p: int) -> int:
        try:
            fields = pathlib.Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            return 0
        return int(fields[11]) + int(fields[12])
    total = own(pid)
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == pid:
                total += own(int(entry.name))
    return total


def request(method: str, url: str, body=None, key: str = KEY):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    return json.load(urllib.request.urlopen(req, timeout=60))


def wait_task(base: str, answer: dict) -> None:
    uid = answer["taskUid"]
    for _ in range(6000):
        task = request("GET", f"{base}/tasks/{uid}")
        if task["status"] == "succeeded":
            return
        if task["status"] == "failed":
            raise SystemExit(f"task {uid} failed: {task}")
        time.sleep(0.05)
    raise SystemExit(f"task {uid} did not finish")


def products() -> list[dict]:
    brands = ["acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne"]
    kinds = ["phone", "laptop", "tablet", "watch", "camera", "speaker", "router", "monitor"]
    return [{
        "id": i,
        "title": f"{brands[i % 7]} {kinds[i % 8]} model {i}",
        "brand": brands[i % 7],
        "kind": kinds[i % 8],
        "price": (i * 37) % 500 + 9.99,
        "description": f"A {kinds[i % 8]} by {brands[i % 7]}, number {i} of the catalogue, "
                       f"with a {['red', 'blue', 'black'][i % 3]} finish.",
    } for i in range(2000)]


def load(base: str, index: str) -> None:
    wait_task(base, request("POST", f"{base}/indexes", {"uid": index, "primaryKey": "id"}))
    wait_task(base, request("PATCH", f"{base}/indexes/{index}/settings",
                            {"filterableAttributes": ["brand", "price", "kind"]}))
    wait_task(base, request("POST", f"{base}/indexes/{index}/documents", products()))


def wrk(args, port: int, index: str, key: str, work: str) -> dict:
    """One wrk run of the search; throughput, p50 and p99 in ms, requests."""
    script = pathlib.Path(work, f"search-{port}.lua")
    body = json.dumps(SEARCH).replace("\\", "\\\\").replace("'", "\\'")
    script.write_text(f"wrk.method = 'POST'\nwrk.body = '{body}'\n"
                      f"wrk.headers['Content-Type'] = 'application/json'\n"
                      f"wrk.headers['Authorization'] = 'Bearer {key}'\n")
    out = subprocess.run(["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d",
                          f"{max(1, round(args.seconds))}s", "--latency", "-s", str(script),
                          f"http://127.0.0.1:{port}/indexes/{index}/search"],
                         capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")

    def latency(pct: str) -> float:
        value, unit = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": latency("50"), "p99": latency("99"), "requests": requests}


def measure(args, target: dict, node_pids: list[int], work: str) -> dict:
    proxy_before = cpu_ticks(target["pid"]) if target["pid"] else 0
    nodes_before = sum(cpu_ticks(pid) for pid in node_pids)
    result = wrk(args, target["port"], target["index"], target["key"], work)
    proxy_ticks = (cpu_ticks(target["pid"]) - proxy_before) if target["pid"] else 0
    node_ticks = sum(cpu_ticks(pid) for pid in node_pids) - nodes_before
    result["cpu_us"] = proxy_ticks / TICKS * 1e6 / result["requests"]
    result["node_cpu_us"] = node_ticks / TICKS * 1e6 / result["requests"]
    return result


def profile(args, target: dict, work: str, name: str) -> None:
    """Records `perf` samples of the target's process while wrk runs."""
    data = pathlib.Path(work, f"perf-{name}.data")
    perf = subprocess.Popen(["perf", "record", "-F", str(args.perf_frequency), "--call-graph", args.perf_call_graph,
                             "-p", str(target["pid"]), "-o", str(data)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    saved, args.seconds = args.seconds, args.perf
    try:
        wrk(args, target["port"], target["index"], target["key"], work)
    finally:
        args.seconds = saved
        perf.send_signal(2)
        perf.wait(timeout=60)
    print(f"profile of {name}: perf report -i {data}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--perf", type=float, default=0.0, help="also record a perf profile this long")
    parser.add_argument("--perf-call-graph", default="fp", help="perf's --call-graph: fp, or dwarf (slower, "
                        "but unwinds Rust code built without frame pointers)")
    parser.add_argument("--perf-frequency", type=int, default=999)
    parser.add_argument("--only", default="", help="comma-separated targets to measure (default: all)")
    parser.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release"))
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            raise SystemExit(f"`{tool}` is missing: apt-get install -y wrk nginx")
    work = tempfile.mkdtemp(prefix="miroir-proxy-bench-")
    processes: list[subprocess.Popen] = []
    try:
        # Node 0 serves direct, nginx and S=1; nodes 1 to 3 serve S=16. Two Miroir deployments
        # must not share nodes: each keeps its catalog on its nodes.
        nodes = [start_node(args.bin) for _ in range(4)]
        processes += [p for p, _, _ in nodes]
        node_pids = [p.pid for p, _, _ in nodes]
        whole_work, scatter_work = pathlib.Path(work, "s1"), pathlib.Path(work, "s16")
        whole_work.mkdir()
        scatter_work.mkdir()
        whole, whole_url = start_miroir(args.bin, str(whole_work), [nodes[0][1]], KEY, NODE_KEY, shards=1)
        processes.append(whole)
        scatter, scatter_url = start_miroir(args.bin, str(scatter_work), [n[1] for n in nodes[1:]], KEY, NODE_KEY,
                                            shards=16)
        processes.append(scatter)
        load(whole_url, "products")
        load(scatter_url, "products16")
        nginx, nginx_port = start_nginx(work, nodes[0][2])
        processes.append(nginx)
        port = lambda url: int(url.rsplit(":", 1)[1])
        targets = {
            "direct": {"pid": 0, "port": nodes[0][2], "index": "products", "key": NODE_KEY},
            "nginx": {"pid": nginx.pid, "port": nginx_port, "index": "products", "key": NODE_KEY},
            "miroir S=1": {"pid": whole.pid, "port": port(whole_url), "index": "products", "key": KEY},
            "miroir S=16": {"pid": scatter.pid, "port": port(scatter_url), "index": "products16", "key": KEY},
        }
        if args.only:
            targets = {name: t for name, t in targets.items() if name in args.only.split(",")}
        hits = request("POST", f"{whole_url}/indexes/products/search", SEARCH)["estimatedTotalHits"]
        print(f"search {json.dumps(SEARCH)} matches {hits} of 2000 products; wrk -c {args.connections} "
              f"-t {args.threads}, {args.seconds:.0f} s per run, {args.rounds} rounds; "
              f"{os.cpu_count()} cores\n")
        # Warm every path (connections, caches, the nodes' recorded answers).
        saved, args.seconds = args.seconds, 2
        for target in targets.values():
            wrk(args, target["port"], target["index"], target["key"], work)
        args.seconds = saved
        results: dict[str, list[dict]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, target in targets.items():
                r = measure(args, target, node_pids, work)
                results[name].append(r)
                print(f"  {name:<12} {r['rps']:8.0f} req/s  p50 {r['p50']:6.2f} ms  p99 {r['p99']:6.2f} ms  "
                      f"proxy CPU {r['cpu_us']:6.1f} µs/req  nodes {r['node_cpu_us']:6.1f} µs/req")
        print()
        med = lambda xs: statistics.median(xs)
        print(f"{'median':<12} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'proxy CPU µs/req':>17}")
        for name, rs in results.items():
            print(f"{name:<12} {med([r['rps'] for r in rs]):8.0f} {med([r['p50'] for r in rs]):7.2f} "
                  f"{med([r['p99'] for r in rs]):7.2f} {med([r['cpu_us'] for r in rs]):17.1f}")
        print()

        def ratio(a: str, b: str, key: str) -> float:
            return med([x[key] / y[key] for x, y in zip(results[a], results[b]) if y[key]])
        for name in [n for n in ("nginx", "miroir S=1", "miroir S=16") if n in results and "nginx" in results and "direct" in results]:
            print(f"{name:<12} throughput {ratio(name, 'direct', 'rps'):.2f}× direct, "
                  f"CPU/request {ratio(name, 'nginx', 'cpu_us'):.2f}× nginx, "
                  f"p50 +{med([x['p50'] - y['p50'] for x, y in zip(results[name], results['direct'])]):.2f} ms, "
                  f"p99 {ratio(name, 'direct', 'p99'):.2f}× direct")
        if args.perf:
            for name, short in (("miroir S=1", "s1"), ("miroir S=16", "s16")):
                if name in targets:
                    profile(args, targets[name], work, short)
    finally:
        stop(processes)
        print(f"\nwork directory (logs, profiles): {work}")


if __name__ == "__main__":
    sys.exit(main())
