"""Drives Miroir with the official Meilisearch Python SDK, as an application would.

    python3 python_client.py URL KEY

Exits non-zero (with the failed assertion) when Miroir answers differently from what the SDK
and a Meilisearch server promise.
"""
import sys

import meilisearch

url, key = sys.argv[1], sys.argv[2]
client = meilisearch.Client(url, key)

task = client.create_index("books", {"primaryKey": "id"})
assert client.wait_for_task(task.task_uid, timeout_in_ms=30000).status == "succeeded"
index = client.index("books")

task = index.update_settings({
    "filterableAttributes": ["genre", "year"],
    "sortableAttributes": ["year", "id"],
})
assert client.wait_for_task(task.task_uid, timeout_in_ms=30000).status == "succeeded"
settings = index.get_settings()
assert settings["filterableAttributes"] == ["genre", "year"], settings
assert settings["searchableAttributes"] == ["*"], settings

genres = ["fantasy", "poetry", "history"]
docs = [{"id": i, "title": f"book number {i} of the {genres[i % 3]} shelf",
         "genre": genres[i % 3], "year": 1990 + i % 30} for i in range(120)]
task = index.add_documents(docs)
done = client.wait_for_task(task.task_uid, timeout_in_ms=30000)
assert done.status == "succeeded", done
assert done.details["indexedDocuments"] == 120, done.details

found = index.search("book", {"filter": "genre = poetry AND year >= 2000", "limit": 100})
assert found["estimatedTotalHits"] == len(found["hits"]) > 0, found
assert all(h["genre"] == "poetry" and h["year"] >= 2000 for h in found["hits"])

facets = index.search("", {"facets": ["genre"], "limit": 0})
assert facets["facetDistribution"]["genre"] == {"fantasy": 40, "history": 40, "poetry": 40}, facets

ordered = index.search("", {"sort": ["year:desc"], "limit": 10})
years = [h["year"] for h in ordered["hits"]]
assert years == sorted(years, reverse=True) and years[0] == 2019, years

page = index.search("shelf", {"hitsPerPage": 25, "page": 2})
assert page["totalHits"] == 120 and page["totalPages"] == 5 and len(page["hits"]) == 25, page

doc = index.get_document(7)
assert doc.title == "book number 7 of the poetry shelf", vars(doc)
assert not hasattr(doc, "_miroir_shard"), vars(doc)

task = index.delete_document(7)
assert client.wait_for_task(task.task_uid, timeout_in_ms=30000).status == "succeeded"
try:
    index.get_document(7)
    raise AssertionError("document 7 should be gone")
except meilisearch.errors.MeilisearchApiError as error:
    assert error.code == "document_not_found", error

stats = index.get_stats()
assert stats.number_of_documents == 119, stats

# Documents options: `sort` (over every shard), `fields` as a list, `ids`, `retrieveVectors`.
sorted_docs = index.get_documents({"sort": "year:desc,id:asc", "limit": 5, "fields": ["id", "year"]})
pairs = [(d.year, d.id) for d in sorted_docs.results]
expected = sorted(((d["year"], d["id"]) for d in docs if d["id"] != 7), key=lambda p: (-p[0], p[1]))
assert pairs == expected[:5], pairs
assert sorted_docs.total == 119 and not hasattr(sorted_docs.results[0], "title"), vars(sorted_docs)
deep = index.get_documents({"sort": ["year:asc"], "offset": 30, "limit": 10})
assert [d.year for d in deep.results] == sorted(d["year"] for d in docs if d["id"] != 7)[30:40]
by_ids = index.get_documents({"ids": ["3", "1", "7"], "fields": ["id"], "retrieveVectors": True})
assert sorted(d.id for d in by_ids.results) == [1, 3] and by_ids.total == 2, vars(by_ids)

# `skipCreation` and `csvDelimiter` on writes, `customMetadata` on the task.
task = index.update_documents([{"id": 1, "title": "renamed"}, {"id": 9999, "title": "new"}],
                              skip_creation=True)
done = client.wait_for_task(task.task_uid, timeout_in_ms=30000)
assert done.status == "succeeded", done
assert index.get_document(1).title == "renamed"
try:
    index.get_document(9999)
    raise AssertionError("skipCreation must not create document 9999")
except meilisearch.errors.MeilisearchApiError as error:
    assert error.code == "document_not_found", error
task = index.add_documents_csv(b"id;title;genre;year\n500;semicolons;poetry;2001\n",
                               csv_delimiter=";", metadata="from-csv")
done = client.wait_for_task(task.task_uid, timeout_in_ms=30000)
assert done.status == "succeeded" and done.custom_metadata == "from-csv", done
assert index.get_document(500).title == "semicolons"

# Stats with internal database sizes, raw and human.
stats = index.get_stats(show_internal_database_sizes=True)
assert stats.number_of_documents == 120, stats
all_stats = client.get_all_stats(show_internal_database_sizes=True, size_format="human")
sizes = all_stats["indexes"]["books"].get("internalDatabaseSizes")
assert sizes and all(isinstance(v, str) for v in sizes.values()), all_stats
print("python SDK: all checks passed")
