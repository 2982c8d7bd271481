#!/usr/bin/env bash
# Start a local development node, load the sample catalogue, and print one search.
# The node keeps running until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${DEMO_PORT:-7700}"
KEY="${DEMO_MASTER_KEY:-demo-master-key}"
DOCS="${DEMO_DOCS:-2000}"
URL="http://127.0.0.1:${PORT}"

cargo build --quiet -p miroir-devnode
BIN="${CARGO_TARGET_DIR:-target}/debug/miroir-devnode"
"$BIN" --http-addr "127.0.0.1:${PORT}" --master-key "$KEY" >/tmp/miroir-demo-node.log 2>&1 &
NODE_PID=$!
trap 'kill $NODE_PID 2>/dev/null || true' EXIT

python3 - "$URL" "$KEY" "$DOCS" <<'PY'
import json, subprocess, sys, time, urllib.request

url, key, n = sys.argv[1], sys.argv[2], sys.argv[3]

def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method,
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")

for _ in range(100):  # up to 10 s for the node to start
    try:
        call("GET", "/health"); break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("the node did not start; see /tmp/miroir-demo-node.log")

docs = json.loads(subprocess.check_output([sys.executable, "examples/data/gen_products.py", n]))
call("POST", "/indexes", {"uid": "products", "primaryKey": "id"})
call("PATCH", "/indexes/products/settings", {"filterableAttributes": ["brand", "category", "price"],
                                              "sortableAttributes": ["price"]})
task = call("POST", "/indexes/products/documents", docs)
for _ in range(600):
    status = call("GET", f"/tasks/{task['taskUid']}")["status"]
    if status in ("succeeded", "failed", "canceled"):
        break
    time.sleep(0.05)
print(f"loaded {n} products: task {task['taskUid']} {status}")
query = {"q": "wireless headphones", "filter": "price < 2000", "limit": 5, "showRankingScore": True}
answer = call("POST", "/indexes/products/search", query)
print(f"search {json.dumps(query)}: {answer['estimatedTotalHits']} hits")
for hit in answer["hits"]:
    print(f"  {hit['_rankingScore']:.4f}  {hit['id']}  {hit['title']}  ${hit['price']}")
PY

echo "development node running at ${URL} (master key: ${KEY}); Ctrl-C to stop"
wait $NODE_PID
