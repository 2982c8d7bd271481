"""Tests of the Helm chart in charts/miroir.

The chart is rendered by Helm's own Go engine (helm-python-sdk binds libhelm_c, Helm v4's SDK, so
templates, values coalescing and values.schema.json validation are exactly what `helm template`
and `helm install` do). Rendered objects are checked against the Kubernetes OpenAPI schemas with
kubernetes-validate, the rules of values.schema.json also with the `jsonschema` validator, and the
rendered Miroir configuration with the real `miroir check-config`.

Run: python3 -m unittest discover -s charts/tests -v
"""

from __future__ import annotations

import copy
import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import unittest

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "miroir"
EXAMPLES = CHART / "examples"
KUBE_VERSION = "1.30.0"
# Custom resources of the Prometheus operator: no Kubernetes schema exists for them.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}


def load_example(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())


def render(values: dict | None = None) -> list[dict]:
    """Every object the chart renders for `values`, parsed."""
    chart = helm.Chart.load(str(CHART))
    manifests = chart.render(values or {}, name="search", namespace="search", is_install=True)
    objects = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def find(objects: list[dict], kind: str, name: str | None = None) -> dict:
    matches = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    if len(matches) != 1:
        raise AssertionError(f"expected one {kind} {name or ''}, found {len(matches)}")
    return matches[0]


def kinds(objects: list[dict]) -> list[str]:
    return sorted(o["kind"] for o in objects)


def miroir_config(objects: list[dict]) -> dict:
    return yaml.safe_load(find(objects, "ConfigMap")["data"]["miroir.yaml"])


def container(objects: list[dict]) -> dict:
    return find(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def env(objects: list[dict]) -> dict:
    return {e["name"]: e for e in container(objects)["env"]}


def miroir_binary() -> pathlib.Path | None:
    explicit = os.environ.get("MIROIR_BIN")
    if explicit:
        return pathlib.Path(explicit)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    for profile in ("debug", "release"):
        candidate = target / profile / "miroir"
        if candidate.exists():
            return candidate
    return None


class RendersValidObjects(unittest.TestCase):
    def assert_valid_kubernetes(self, objects: list[dict]) -> None:
        for obj in objects:
            if obj["kind"] in CUSTOM_KINDS:
                self.assertEqual(obj["apiVersion"], "monitoring.coreos.com/v1")
                continue
            with self.subTest(kind=obj["kind"], name=obj["metadata"]["name"]):
                kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)

    def test_default_values(self):
        objects = render()
        self.assert_valid_kubernetes(objects)
        self.assertEqual(
            kinds(objects),
            ["ConfigMap", "Deployment", "PersistentVolumeClaim", "PodDisruptionBudget", "Service", "Service", "StatefulSet"],
        )
        deployment = find(objects, "Deployment")
        self.assertEqual(deployment["spec"]["replicas"], 1)
        self.assertEqual(deployment["spec"]["strategy"]["type"], "Recreate")
        main = container(objects)
        self.assertEqual(main["livenessProbe"]["httpGet"]["path"], "/health")
        self.assertEqual(main["readinessProbe"]["httpGet"]["path"], "/_miroir/ready")
        self.assertEqual(main["resources"]["limits"], {"cpu": "2", "memory": "3840Mi"})
        self.assertEqual({p["name"]: p["containerPort"] for p in main["ports"]}, {"http": 7700, "metrics": 9090})
        variables = env(objects)
        self.assertEqual(variables["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name")
        self.assertEqual(variables["MIROIR_INSTANCE_ID"]["value"], "$(POD_NAME)")
        for name in ("MIROIR_MASTER_KEY", "MIROIR_ADMIN_API_KEY", "MIROIR_NODE_MASTER_KEY"):
            self.assertEqual(variables[name]["valueFrom"]["secretKeyRef"]["name"], "search-miroir-keys")
        self.assertEqual(find(objects, "PodDisruptionBudget")["spec"]["minAvailable"], 1)

        config = miroir_config(objects)
        self.assertEqual(config["task_store"], {"backend": "sqlite", "path": "/data/miroir.db"})
        self.assertEqual(
            [n["id"] for n in config["nodes"]], ["search-miroir-meili-0", "search-miroir-meili-1"]
        )
        self.assertEqual(
            config["nodes"][1]["address"],
            "http://search-miroir-meili-1.search-miroir-meili.search.svc.cluster.local:7700",
        )
        meili = find(objects, "StatefulSet", "search-miroir-meili")
        mounts = meili["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
        self.assertEqual(mounts, [{"name": "data", "mountPath": "/meilisearch-data"}])
        # `/multi-search` is part of the Meilisearch API: on, its component is in the image.
        self.assertEqual(config["multi_search"], {"enabled": True})
        for feature in ("vector_search", "shadow", "cdc"):
            self.assertEqual(config[feature], {"enabled": False})
        self.assertNotIn("search_ui", config)

    def test_ha_example(self):
        objects = render(load_example("ha"))
        self.assert_valid_kubernetes(objects)
        self.assertEqual(find(objects, "Deployment")["spec"]["replicas"], 2)
        self.assertNotIn("strategy", find(objects, "Deployment")["spec"])
        config = miroir_config(objects)
        self.assertEqual(config["task_store"], {"backend": "redis"})
        self.assertEqual(config["replication_factor"], 2)
        self.assertEqual(sorted({n["replica_group"] for n in config["nodes"]}), ["g0", "g1"])
        self.assertEqual(env(objects)["MIROIR_TASK_STORE__URL"]["value"], "redis://search-miroir-redis:6379/0")
        find(objects, "StatefulSet", "search-miroir-redis")
        self.assertEqual(env(objects)["MIROIR_MASTER_KEY"]["valueFrom"]["secretKeyRef"]["name"], "miroir-keys")
        self.assertNotIn("Secret", kinds(objects))
        rules = find(objects, "PrometheusRule")["spec"]["groups"][0]["rules"]
        by_name = {r["alert"]: r["expr"] for r in rules}
        self.assertIn("> 819.2", by_name["MiroirRequestsNearLimit"])
        self.assertIn("miroir_background_queue_depth", by_name["MiroirBackgroundQueueBacklog"])
        self.assertIn("> 0.1", by_name["MiroirTaskStoreSlow"])
        self.assertIn("> 0.8", by_name["MiroirCpuHigh"])
        self.assertIn("> 0.85", by_name["MiroirMemoryHigh"])
        # Every Miroir metric an alert reads is one the gateway exports (docs/metrics.md).
        documented = set(re.findall(r"`(miroir_[a-z_]+)`", (ROOT / "docs" / "metrics.md").read_text()))
        for name, expr in by_name.items():
            for metric in re.findall(r"\b(miroir_[a-z_]+?)(?:_bucket)?\b", expr):
                self.assertIn(metric, documented, f"{name} reads {metric}")
        monitor = find(objects, "ServiceMonitor")
        self.assertEqual(monitor["spec"]["endpoints"][0]["port"], "metrics")

    def test_hpa_example(self):
        objects = render(load_example("hpa"))
        self.assert_valid_kubernetes(objects)
        hpa = find(objects, "HorizontalPodAutoscaler")
        self.assertEqual((hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]), (2, 24))
        self.assertNotIn("replicas", find(objects, "Deployment")["spec"])
        url = env(objects)["MIROIR_TASK_STORE__URL"]["valueFrom"]["secretKeyRef"]
        self.assertEqual(url, {"name": "miroir-redis", "key": "url"})
        self.assertNotIn("StatefulSet", kinds(objects))
        self.assertEqual(len(miroir_config(objects)["nodes"]), 4)

    def test_memory_constrained_example(self):
        objects = render(load_example("memory-constrained"))
        self.assert_valid_kubernetes(objects)
        config = miroir_config(objects)
        self.assertEqual(config["multi_search"], {"enabled": True})
        self.assertEqual(config["vector_search"], {"enabled": False})
        self.assertEqual(config["server"]["max_concurrent_requests"], 256)
        self.assertEqual(container(objects)["resources"]["limits"]["memory"], "1536Mi")

    def test_secret_created_only_from_values(self):
        objects = render({"secrets": {"values": {"masterKey": "a-master-key"}}})
        secret = find(objects, "Secret")
        self.assertEqual(list(secret["data"]), ["master-key"])
        self.assertEqual(secret["data"]["master-key"], "YS1tYXN0ZXIta2V5")

    def test_search_page_key_comes_from_the_secret(self):
        objects = render(
            {"search_ui": {"enabled": True}, "secrets": {"values": {"searchUiApiKey": "a-search-key"}}}
        )
        self.assertEqual(find(objects, "Secret")["data"]["search-ui-api-key"], "YS1zZWFyY2gta2V5")
        variable = env(objects)["MIROIR_SEARCH_UI__API_KEY"]
        self.assertEqual(variable["valueFrom"]["secretKeyRef"]["key"], "search-ui-api-key")
        self.assertEqual(miroir_config(objects)["search_ui"]["enabled"], True)

    def test_feature_settings_reach_the_config(self):
        config = miroir_config(render({"vector_search": {"enabled": True, "fusion": "rrf"}}))
        self.assertEqual(config["vector_search"], {"enabled": True, "fusion": "rrf"})


    def test_grafana_dashboard(self):
        self.assertNotIn("miroir-dashboard", [o["metadata"]["name"] for o in render()])
        objects = render({"metrics": {"grafanaDashboard": {"enabled": True}}})
        self.assert_valid_kubernetes(objects)
        config_map = find(objects, "ConfigMap", "search-miroir-dashboard")
        self.assertEqual(config_map["metadata"]["labels"]["grafana_dashboard"], "1")
        dashboard = json.loads(config_map["data"]["miroir.json"])
        self.assertEqual(dashboard["uid"], "miroir-overview")
        # Every Miroir metric a panel reads is one the gateway exports (docs/metrics.md).
        documented = set(re.findall(r"`(miroir_[a-z_]+)`", (ROOT / "docs" / "metrics.md").read_text()))
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                for metric in re.findall(r"\b(miroir_[a-z_]+?)(?:_bucket|_count)?\b", target["expr"]):
                    self.assertIn(metric, documented, f"{panel['title']} reads {metric}")


class RenderedConfigIsAccepted(unittest.TestCase):
    """The ConfigMap of every example passes the real `miroir check-config`."""

    def test_check_config(self):
        binary = miroir_binary()
        if binary is None:
            self.fail("no miroir binary: build it (cargo build -p miroir) or set MIROIR_BIN")
        plugins = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "plugins"
        cases = {"default": {}, **{name: load_example(name) for name in ("ha", "hpa", "memory-constrained")}}
        for name, values in cases.items():
            with self.subTest(example=name), tempfile.TemporaryDirectory() as tmp:
                path = pathlib.Path(tmp) / "miroir.yaml"
                path.write_text(find(render(values), "ConfigMap")["data"]["miroir.yaml"])
                environment = dict(os.environ, MIROIR_PLUGINS__DIR=str(plugins))
                if name in ("ha", "hpa"):
                    environment["MIROIR_TASK_STORE__URL"] = "redis://127.0.0.1:6379/0"
                result = subprocess.run(
                    [str(binary), "check-config", str(path)], capture_output=True, text=True, env=environment
                )
                self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
                self.assertIn("config OK", result.stdout)


GOOD = {"nodes": [{"id": "n0", "address": "http://n0:7700", "replica_group": "a"}]}
REDIS = {"backend": "redis", "redis": {"deploy": True}}

# (values merged over GOOD, the path named in Helm's error, or None when the values are accepted)
RULES = [
    ({"miroir": {"replicas": 2}}, "/taskStore/backend"),
    ({"miroir": {"replicas": 2}, "taskStore": REDIS}, None),
    ({"miroir": {"replicas": 2, "hpa": {"enabled": True}}, "taskStore": {"backend": "sqlite"}}, "/taskStore/backend"),
    ({"miroir": {"replicas": 1, "hpa": {"enabled": True}}, "taskStore": REDIS}, "/miroir/replicas"),
    ({"miroir": {"replicas": 2, "hpa": {"enabled": True, "minReplicas": 1}}, "taskStore": REDIS}, "/miroir/hpa/minReplicas"),
    ({"miroir": {"replicas": 2, "hpa": {"enabled": True}}, "taskStore": REDIS}, None),
    ({"miroir": {"replicas": 3}, "taskStore": REDIS, "search_ui": {"enabled": True, "rate_limit": {"backend": "local"}}}, "/search_ui/rate_limit/backend"),
    ({"miroir": {"replicas": 2, "hpa": {"enabled": True}}, "taskStore": REDIS, "search_ui": {"enabled": True}}, "/search_ui/rate_limit/backend"),
    ({"miroir": {"replicas": 3}, "taskStore": REDIS, "search_ui": {"enabled": True, "rate_limit": {"backend": "redis"}}}, None),
    ({"miroir": {"replicas": 3}, "taskStore": REDIS, "search_ui": {"enabled": False, "rate_limit": {"backend": "local"}}}, None),
    ({"miroir": {"replicas": 1}, "search_ui": {"enabled": True, "rate_limit": {"backend": "local"}}}, None),
    ({"taskStore": {"backend": "redis"}}, "/taskStore/redis"),
    ({"taskStore": {"backend": "redis", "redis": {"url": "redis://r:6379/0"}}}, None),
    ({"taskStore": {"backend": "postgres"}}, "/taskStore/backend"),
    ({"meilisearch": {"enabled": False}, "nodes": []}, "/nodes"),
    ({"config": {"master_key": "x"}}, "/config"),
]


def merged(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


class SchemaRules(unittest.TestCase):
    def test_helm_refuses_and_accepts(self):
        for extra, path in RULES:
            values = merged(GOOD, extra)
            with self.subTest(values=json.dumps(extra)):
                if path is None:
                    render(values)
                    continue
                with self.assertRaises(helm.HelmValuesError) as refused:
                    render(values)
                self.assertIn(f"at '{path}'", str(refused.exception))

    def test_jsonschema_agrees(self):
        """A second, independent validator gives the same verdicts on the coalesced values."""
        chart = helm.Chart.load(str(CHART))
        schema = json.loads((CHART / "values.schema.json").read_text())
        for extra, path in RULES:
            values = chart.merge_values(merged(GOOD, extra))
            with self.subTest(values=json.dumps(extra)):
                errors = list(jsonschema.Draft7Validator(schema).iter_errors(values))
                self.assertEqual(bool(errors), path is not None, [e.message for e in errors])


if __name__ == "__main__":
    unittest.main()
