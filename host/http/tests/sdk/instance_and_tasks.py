"""The official Python SDK's instance and task calls, as an application makes them: tasks with
`customMetadata`, `reverse` and `canceledBy` listings, batches, experimental features, dumps,
and (with --webhooks) webhooks that receive the finished tasks. Prints one JSON object with what
each call answered, so that Miroir's answers can be compared with one node's.

Usage: instance_and_tasks.py URL MASTER_KEY [--webhooks]
"""

import http.server
import json
import queue
import sys
import threading

import meilisearch
from meilisearch.errors import MeilisearchApiError

url, master = sys.argv[1], sys.argv[2]
with_webhooks = "--webhooks" in sys.argv[3:]
client = meilisearch.Client(url, master)
out = {}


def attempt(name, call):
    try:
        out[name] = call()
    except MeilisearchApiError as error:
        out[name] = {"status": error.status_code, "code": error.code}


def wait(task):
    return client.wait_for_task(task.task_uid, timeout_in_ms=60_000, interval_in_ms=20)


received = queue.Queue()
if with_webhooks:

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.put((dict(self.headers), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    hook = client.create_webhook({"url": hook_url, "headers": {"authorization": "Bearer sdk"}})
    out["webhooks.created-headers"] = hook.headers
    out["webhooks.listed"] = [w.url == hook_url for w in client.get_webhooks().results]
    updated = client.update_webhook(hook.uuid, {"headers": {"x-sdk": "yes"}})
    out["webhooks.updated-headers"] = updated.headers

wait(client.create_index("sdk_tasks", {"primaryKey": "id"}))
index = client.index("sdk_tasks")
added = wait(index.add_documents([{"id": 1}, {"id": 2}], metadata="import #1"))
out["task.custom-metadata"] = added.custom_metadata
out["task.listed-metadata"] = client.get_tasks({"limit": 1}).results[0].custom_metadata
reverse = client.get_tasks({"reverse": "true", "indexUids": ["sdk_tasks"]}).results
out["tasks.reverse"] = [t.type for t in reverse]
out["tasks.canceled-by"] = client.get_tasks({"canceledBy": ["999999"]}).total
batches = client.get_batches({"limit": 1})
out["batches.list"] = [b.stats["totalNbTasks"] for b in batches.results]
out["batches.one"] = client.get_batch(batches.results[0].uid).stats["totalNbTasks"]
out["experimental.get"] = client.get_experimental_features().get("containsFilter")
out["experimental.update"] = client.update_experimental_features({"containsFilter": True}).get(
    "containsFilter"
)
dump = wait(client.create_dump())
out["dump"] = [dump.type, dump.status, dump.index_uid]
attempt("tasks.delete-without-filter", lambda: client.delete_tasks({}))

if with_webhooks:
    deliveries = []
    while True:
        try:
            headers, body = received.get(timeout=10)
        except queue.Empty:
            break
        task = json.loads(body.decode().splitlines()[0])
        deliveries.append(task)
        if task["type"] == "dumpCreation":
            break
    out["webhooks.delivered-types"] = sorted({t["type"] for t in deliveries})
    out["webhooks.metadata"] = [
        t.get("customMetadata") for t in deliveries if t["type"] == "documentAdditionOrUpdate"
    ]
    out["webhooks.header"] = headers.get("x-sdk") if deliveries else None
    client.delete_webhook(hook.uuid)
    out["webhooks.after-delete"] = len(client.get_webhooks().results)

print(json.dumps(out, sort_keys=True))
