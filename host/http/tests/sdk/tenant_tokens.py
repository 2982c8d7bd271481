"""Tenant tokens made by the official Python SDK (`generate_tenant_token`), used as a frontend
would: prints one JSON object with what every request answered, so that Miroir's answers can be
compared with one node's.

Usage: tenant_tokens.py URL MASTER_KEY
"""

import datetime
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import meilisearch
from meilisearch.errors import MeilisearchApiError

url, master = sys.argv[1], sys.argv[2]
client = meilisearch.Client(url, master)


def wait(task):
    client.wait_for_task(task.task_uid, timeout_in_ms=60_000, interval_in_ms=20)


wait(client.create_index("tenants", {"primaryKey": "id"}))
wait(client.create_index("others", {"primaryKey": "id"}))
index = client.index("tenants")
wait(index.update_filterable_attributes(["tenant", "kind"]))
docs = [
    {"id": i, "tenant": "abc"[i % 3], "kind": "xy"[i % 2], "title": f"item {i}"}
    for i in range(1, 61)
]
wait(index.add_documents(docs))

keys = client.get_keys({"limit": 100}).results
search_key = next(k for k in keys if k.name == "Default Search API Key")
out = {}


def attempt(name, call):
    try:
        out[name] = call()
    except MeilisearchApiError as error:
        out[name] = {"status": error.status_code, "code": error.code}


def ids(answer):
    return sorted(hit["id"] for hit in answer["hits"])


def token(rules, key=search_key.key, uid=search_key.uid, expires_at=None):
    return client.generate_tenant_token(uid, rules, api_key=key, expires_at=expires_at)


def search_with(tok, uid="tenants", params=None):
    return meilisearch.Client(url, tok).index(uid).search("", {"limit": 100, **(params or {})})


def get_search(tok, query):
    request = urllib.request.Request(
        f"{url}/indexes/tenants/search?{urllib.parse.urlencode(query)}",
        headers={"Authorization": f"Bearer {tok}"},
    )
    try:
        with urllib.request.urlopen(request) as answer:
            return ids(json.load(answer))
    except urllib.error.HTTPError as error:
        return {"status": error.code, "code": json.load(error)["code"]}


in_an_hour = datetime.datetime.now(tz=datetime.timezone.utc) + datetime.timedelta(hours=1)
tenant_a = token({"tenants": {"filter": "tenant = a"}}, expires_at=in_an_hour)
attempt("search", lambda: ids(search_with(tenant_a)))
attempt("search.and-filter", lambda: ids(search_with(tenant_a, params={"filter": "kind = x"})))
attempt(
    "search.array-filter",
    lambda: ids(search_with(tenant_a, params={"filter": [["kind = x", "kind = y"], "tenant != b"]})),
)
attempt("search.total", lambda: search_with(tenant_a, params={"limit": 1})["estimatedTotalHits"])
attempt("search.get", lambda: get_search(tenant_a, {"filter": "kind = y", "limit": 100}))
attempt(
    "facet-search",
    lambda: meilisearch.Client(url, tenant_a).index("tenants").facet_search("kind")["facetHits"],
)
attempt(
    "search.array-rules",
    lambda: len(search_with(token(["tenants"]))["hits"]),
)
attempt(
    "search.star-rule",
    lambda: ids(search_with(token({"*": {"filter": "tenant = b"}}), params={"filter": "kind = x"})),
)
attempt(
    "search.specific-rule-wins",
    lambda: ids(search_with(token({"*": {"filter": "tenant = b"}, "tenants": {"filter": "tenant = c"}}))),
)
attempt("refused.other-index", lambda: ids(search_with(tenant_a, uid="others")))
attempt(
    "refused.documents",
    lambda: meilisearch.Client(url, tenant_a).index("tenants").get_documents().total,
)
attempt("refused.bad-signature", lambda: ids(search_with(token(["*"], key="not-the-key"))))
attempt(
    "refused.unknown-key",
    lambda: ids(search_with(token(["*"], uid="3c7bc6a6-0000-4000-8000-000000000000"))),
)
short = token(
    ["*"],
    expires_at=datetime.datetime.now(tz=datetime.timezone.utc) + datetime.timedelta(seconds=2),
)
time.sleep(3)
attempt("refused.expired", lambda: ids(search_with(short)))
attempt(
    "refused.bad-filter",
    lambda: ids(search_with(token({"tenants": {"filter": "title = x"}}))),
)

print(json.dumps(out, sort_keys=True))
