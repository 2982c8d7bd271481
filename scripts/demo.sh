#!/usr/bin/env bash
# Start Miroir on its embedded defaults (SQLite task store) in front of three local nodes, load
# the sample catalogue through it, and print a search. The nodes are real `meilisearch` when it
# is on the PATH, development nodes otherwise. Everything runs until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${DEMO_PORT:-7700}"
KEY="${DEMO_MASTER_KEY:-demo-master-key}"
NODE_KEY="${DEMO_NODE_KEY:-demo-node-key}"
DOCS="${DEMO_DOCS:-2000}"
URL="http://127.0.0.1:${PORT}"
WORK="$(mktemp -d)"

cargo build --quiet -p miroir -p miroir-devnode
BIN="${CARGO_TARGET_DIR:-target}/debug"
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

NODES_YAML=""
for i in 0 1 2; do
  node_port="$(free_port)"
  if command -v meilisearch >/dev/null; then
    meilisearch --http-addr "127.0.0.1:${node_port}" --master-key "$NODE_KEY" \
      --db-path "$WORK/node-$i" --no-analytics >"$WORK/node-$i.log" 2>&1 &
  else
    "$BIN/miroir-devnode" --http-addr "127.0.0.1:${node_port}" --master-key "$NODE_KEY" \
      >"$WORK/node-$i.log" 2>&1 &
  fi
  PIDS+=($!)
  NODES_YAML+="  - { id: node-$i, address: \"http://127.0.0.1:${node_port}\", replica_group: a }"$'\n'
done
node_kind=$(command -v meilisearch >/dev/null && echo "meilisearch" || echo "development nodes")

cat >"$WORK/miroir.yaml" <<YAML
server: { bind: 127.0.0.1, port: ${PORT} }
nodes:
${NODES_YAML}shards: 8
metrics: { enabled: false }
task_store: { backend: sqlite, path: miroir.db }
YAML
MIROIR_MASTER_KEY="$KEY" MIROIR_NODE_MASTER_KEY="$NODE_KEY" \
  "$BIN/miroir" serve --config "$WORK/miroir.yaml" >"$WORK/miroir.log" 2>&1 &
PIDS+=($!)

python3 - "$URL" "$KEY" "$DOCS" <<'PY'
import json, subprocess, sys, time, urllib.request

url, key, n = sys.argv[1], sys.argv[2], sys.argv[3]

def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method,
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")

def wait(task):
    for _ in range(1200):
        status = call("GET", f"/tasks/{task['taskUid']}")["status"]
        if status in ("succeeded", "failed", "canceled"):
            return status
        time.sleep(0.05)
    return "timeout"

for _ in range(200):  # up to 20 s for Miroir and the nodes to start
    try:
        call("GET", "/health"); break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("Miroir did not start; see the logs in the work directory")

docs = json.loads(subprocess.check_output([sys.executable, "examples/data/gen_products.py", n]))
wait(call("POST", "/indexes", {"uid": "products", "primaryKey": "id"}))
wait(call("PATCH", "/indexes/products/settings", {"filterableAttributes": ["brand", "category", "price"],
                                                   "sortableAttributes": ["price"]}))
status = wait(call("POST", "/indexes/products/documents", docs))
print(f"loaded {n} products through Miroir (8 shards over 3 nodes): {status}")
query = {"q": "wireless headphones", "filter": "price < 2000", "limit": 5, "showRankingScore": True}
answer = call("POST", "/indexes/products/search", query)
print(f"search {json.dumps(query)}: {answer['estimatedTotalHits']} hits")
for hit in answer["hits"]:
    print(f"  {hit['_rankingScore']:.4f}  {hit['id']}  {hit['title']}  ${hit['price']}")
PY

echo "Miroir running at ${URL} (master key: ${KEY}) in front of 3 ${node_kind}; logs in ${WORK}; Ctrl-C to stop"
wait "${PIDS[-1]}"
