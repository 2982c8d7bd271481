//! A well-behaved plugin for the host's tests: one route per host import, and every hook.
//!
//! Routes (all under `/_miroir/x/test/`): `echo`, `search?index=`, `scatter?index=`,
//! `kv?key=` (`POST` puts the body, `GET` reads, `DELETE` removes), `kv-list?prefix=`,
//! `http?url=`, `misc` (log, metrics, clock, random), `events` (what the off-path hooks saw),
//! `noop` (`POST`, answers 204: for measuring call overhead).
//! `plan-search` adds `"planned": true`; `merge-search` sums `estimatedTotalHits` and
//! concatenates hits.
//!
//! Configuration: `hooks` (a list of hook names, e.g. `["after-response", "on-write"]`) declares
//! only those hooks (default: every hook); `sleep_ms` makes `after-response` of a request whose
//! path ends with `/search` busy-wait that long (to show the hook is off the client's path).
//! `after-response` also counts `after_response_seen` through the metrics import.

use miroir_plugin_sdk::serde_json::{json, Value};
use miroir_plugin_sdk::{
    clock, http, kv, log, metrics, random, scatter, search, Hook, HookError, Manifest, Method,
    Plugin, Request, Response, SearchPlan, SearchRoute, ShardResponse, Timing, WriteEvent,
};

const BASE: &str = "/_miroir/x/test";

struct TestHooks {
    config: Value,
}

fn host_error(e: miroir_plugin_sdk::HostError) -> Response {
    Response::json(502, &json!({ "hostError": { "code": e.code, "message": e.message } }))
}

/// Appends `event` to the `events` list kept in the plugin's key-value store, so that it survives
/// instance replacement and is visible whichever instance serves `GET events`.
fn record(event: Value) {
    let mut events: Vec<Value> = kv::get("events")
        .ok()
        .flatten()
        .and_then(|b| miroir_plugin_sdk::serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    events.push(event);
    let bytes = Value::Array(events).to_string().into_bytes();
    if let Err(e) = kv::put("events", &bytes) {
        log::error(&format!("cannot record event: {e}"));
    }
}

impl Plugin for TestHooks {
    fn init(config: Value) -> Result<Self, String> {
        if config.get("fail_init").and_then(Value::as_bool) == Some(true) {
            return Err("asked to fail".into());
        }
        Ok(TestHooks { config })
    }

    fn manifest(&self) -> Manifest {
        let mut manifest = Manifest::new("test-hooks", "0.1.0");
        for (method, path) in [
            (Method::Post, "echo"),
            (Method::Get, "echo"),
            (Method::Post, "search"),
            (Method::Get, "scatter"),
            (Method::Get, "kv"),
            (Method::Post, "kv"),
            (Method::Delete, "kv"),
            (Method::Get, "kv-list"),
            (Method::Get, "http"),
            (Method::Get, "misc"),
            (Method::Get, "events"),
            (Method::Post, "noop"),
        ] {
            // `"routes": false` loads a second copy beside the first (hooks only).
            if self.config.get("routes") != Some(&json!(false)) {
                manifest = manifest.route(method, format!("{BASE}/{path}"));
            }
        }
        let wanted = |name: &str| match self.config.get("hooks").and_then(Value::as_array) {
            Some(names) => names.iter().any(|n| n == name),
            None => true,
        };
        [
            ("plan-search", Hook::PlanSearch),
            ("merge-search", Hook::MergeSearch),
            ("after-response", Hook::AfterResponse),
            ("on-write", Hook::OnWrite),
            ("tick", Hook::Tick),
        ]
        .into_iter()
        .filter(|(name, _)| wanted(name))
        .fold(manifest, |m, (_, hook)| m.hook(hook))
    }

    fn handle(&mut self, request: Request) -> Response {
        let route = request.path.strip_prefix(BASE).unwrap_or("").trim_start_matches('/');
        let index = request.query_param("index").unwrap_or_default();
        match (request.method.as_str(), route) {
            ("POST", "noop") => Response { status: 204, headers: Vec::new(), body: Vec::new() },
            (_, "echo") => Response::json(
                200,
                &json!({
                    "method": request.method,
                    "path": request.path,
                    "query": request.query,
                    "headers": request.headers,
                    "body": String::from_utf8_lossy(&request.body),
                    "config": self.config,
                }),
            ),
            ("POST", "search") => {
                let body: Value = request.json().unwrap_or(json!({}));
                match search(&index, &body) {
                    Ok(result) => Response::json(200, &result),
                    Err(e) => host_error(e),
                }
            }
            ("GET", "scatter") => match scatter(&index, &json!({ "q": request.query_param("q") })) {
                Ok(shards) => Response::json(
                    200,
                    &Value::Array(
                        shards
                            .into_iter()
                            .map(|s| json!({ "shard": s.shard, "node": s.node, "status": s.status, "took_us": s.took_us, "body": s.body }))
                            .collect(),
                    ),
                ),
                Err(e) => host_error(e),
            },
            (method, "kv") => {
                let key = request.query_param("key").unwrap_or_default();
                let result = match method {
                    "POST" => kv::put(&key, &request.body).map(|()| json!({ "put": key })),
                    "DELETE" => kv::delete(&key).map(|()| json!({ "deleted": key })),
                    _ => kv::get(&key).map(|v| {
                        json!({ "value": v.map(|b| String::from_utf8_lossy(&b).into_owned()) })
                    }),
                };
                match result {
                    Ok(body) => Response::json(200, &body),
                    Err(e) => host_error(e),
                }
            }
            ("GET", "kv-list") => {
                match kv::list_prefix(&request.query_param("prefix").unwrap_or_default()) {
                    Ok(keys) => Response::json(200, &json!({ "keys": keys })),
                    Err(e) => host_error(e),
                }
            }
            ("GET", "http") => {
                let url = request.query_param("url").unwrap_or_default();
                match http::send(http::Request::get(url)) {
                    Ok(r) => Response::json(
                        200,
                        &json!({ "status": r.status, "body": String::from_utf8_lossy(&r.body) }),
                    ),
                    Err(e) => host_error(e),
                }
            }
            ("GET", "misc") => {
                log::info("misc route called");
                metrics::counter_add("misc_calls", 1, &[("route", "misc")]);
                metrics::histogram_observe("misc_seconds", 0.001, &[]);
                metrics::gauge_set("misc_gauge", 42.0, &[]);
                Response::json(
                    200,
                    &json!({ "now_ms": clock::now_ms(), "random_len": random::bytes(16).len() }),
                )
            }
            ("GET", "events") => {
                let events = kv::get("events").ok().flatten().unwrap_or_else(|| b"[]".to_vec());
                Response { status: 200, headers: Vec::new(), body: events }
            }
            _ => Response::error(404, "not_found", format!("no route {}", request.path)),
        }
    }

    fn plan_search(
        &mut self,
        index: &str,
        route: SearchRoute,
        mut request: Value,
    ) -> Result<SearchPlan, HookError> {
        if route == SearchRoute::Similar || request.get("decline").is_some() {
            return Ok(SearchPlan::Decline);
        }
        if request.get("reject").is_some() {
            return Err(HookError::new(400, "invalid_search_q", format!("rejected for {index}")));
        }
        if request.get("answer").is_some() {
            let body = json!({"hits": [], "answeredBy": "test-hooks", "index": index});
            let headers = vec![("x-test-hooks".to_owned(), "answered".to_owned())];
            return Ok(SearchPlan::Answer { body, headers });
        }
        request["planned"] = json!(true);
        Ok(SearchPlan::Rewrite(request))
    }

    fn merge_search(
        &mut self,
        index: &str,
        request: Value,
        responses: Vec<ShardResponse>,
    ) -> Result<Value, HookError> {
        let mut hits = Vec::new();
        let mut total = 0;
        for response in responses {
            total += response.body["estimatedTotalHits"].as_u64().unwrap_or(0);
            if let Some(shard_hits) = response.body["hits"].as_array() {
                hits.extend(shard_hits.iter().cloned());
            }
        }
        Ok(
            json!({ "index": index, "query": request["q"], "hits": hits, "estimatedTotalHits": total }),
        )
    }

    fn after_response(&mut self, request: Request, response: Response, timing: Timing) {
        let sleep_ms = self.config.get("sleep_ms").and_then(Value::as_u64).unwrap_or(0);
        if sleep_ms > 0 && request.path.ends_with("/search") {
            let until = clock::now_ms() + sleep_ms;
            while clock::now_ms() < until {
                std::hint::spin_loop();
            }
        }
        metrics::counter_add("after_response_seen", 1, &[]);
        record(json!({
            "hook": "after-response",
            "path": request.path,
            "status": response.status,
            "total_us": timing.total_us,
        }));
    }

    fn on_write(&mut self, event: WriteEvent) {
        record(json!({
            "hook": "on-write",
            "event_id": event.event_id,
            "task_uid": event.task_uid,
            "index": event.index,
            "operation": event.operation,
            "primary_keys": event.primary_keys,
            "shards": event.shards,
        }));
    }

    fn tick(&mut self) {
        record(json!({ "hook": "tick" }));
    }
}

miroir_plugin_sdk::export!(TestHooks);
