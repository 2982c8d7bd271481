"""Helpers shared by the measurement scripts in this folder: free loopback ports, waiting for a
server, a process's resident memory, and starting development nodes and `miroir serve`."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import time
import urllib.request


def free_port() -> int:
    """A free port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, limit: float = 60.0) -> None:
    """Polls `url` until it answers, for at most `limit` seconds."""
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


def rss_mib(pid: int) -> float:
    """The resident memory (VmRSS) of process `pid`, in MiB."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_devnode(bin_dir: str, key: str, *extra: str) -> tuple[subprocess.Popen, str]:
    """A development node on a free port (with `extra` arguments), once it answers; the process
    and its URL."""
    port = free_port()
    process = subprocess.Popen([f"{bin_dir}/miroir-devnode", "--http-addr", f"127.0.0.1:{port}",
                                "--master-key", key, *extra], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/health")
    return process, url


def start_miroir(bin_dir: str, work: str, nodes: list[str], key: str, node_key: str,
                 server: str = "", extra: str = "metrics: { enabled: false }\n",
                 shards: int = 8) -> tuple[subprocess.Popen, str]:
    """`miroir serve` (SQLite task store in `work`) over `nodes`, once it answers; the process
    and its URL. `server` adds flow-mapping entries to the `server` section."""
    port = free_port()
    node_lines = "".join(f'  - {{ id: n{i}, address: "{url}", replica_group: g }}\n' for i, url in enumerate(nodes))
    server = f", {server}" if server else ""
    config = pathlib.Path(work, "miroir.yaml")
    config.write_text(f"server: {{ bind: 127.0.0.1, port: {port}{server} }}\n{extra}"
                      f"task_store: {{ path: miroir.db }}\nshards: {shards}\nnodes:\n{node_lines}")
    env = dict(os.environ, MIROIR_MASTER_KEY=key, MIROIR_NODE_MASTER_KEY=node_key)
    # The log stays in `work`, for a surprising figure to be explained.
    log = open(pathlib.Path(work, "miroir.log"), "wb")
    process = subprocess.Popen([f"{bin_dir}/miroir", "serve", "--config", str(config)], cwd=work, env=env,
                               stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/health")
    return process, url


def stop(processes: list[subprocess.Popen]) -> None:
    """Terminates `processes`, killing any that do not stop within 10 s."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
