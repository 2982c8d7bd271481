//! A plugin that misbehaves on request, for the host's sandbox tests.
//!
//! Routes under `/_miroir/x/bad/`: `loop` never returns, `alloc` allocates without bound, `trap`
//! panics, `http?url=` sends a GET to any URL (the host must refuse targets its config does not
//! name), `ok` answers `{"calls": n}` where `n` counts the calls this instance served: it starts
//! again at 1 on a fresh instance.
//!
//! With `config.tick` set to `"loop"` or `"trap"`, it also declares the `tick` hook, which then
//! never returns or panics; with `config.search` set so, it declares `plan-search`, likewise.

use std::hint::black_box;

use miroir_plugin_sdk::serde_json::{json, Value};
use miroir_plugin_sdk::{
    http, Hook, HookError, Manifest, Method, Plugin, Request, Response, SearchPlan, SearchRoute,
};

struct Misbehave {
    calls: u64,
    tick: Option<String>,
    search: Option<String>,
}

fn misbehave(how: Option<&str>, hook: &str) {
    match how {
        Some("loop") => spin(),
        Some("trap") => panic!("asked to trap in {hook}"),
        _ => {}
    }
}

fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

impl Plugin for Misbehave {
    fn init(config: Value) -> Result<Self, String> {
        let tick = config.get("tick").and_then(Value::as_str).map(str::to_owned);
        let search = config.get("search").and_then(Value::as_str).map(str::to_owned);
        Ok(Misbehave { calls: 0, tick, search })
    }

    fn manifest(&self) -> Manifest {
        let manifest = ["loop", "alloc", "trap", "http", "ok"]
            .into_iter()
            .fold(Manifest::new("test-misbehave", "0.1.0"), |m, route| {
                m.route(Method::Get, format!("/_miroir/x/bad/{route}"))
            });
        let manifest = if self.tick.is_some() { manifest.hook(Hook::Tick) } else { manifest };
        if self.search.is_some() {
            manifest.hook(Hook::PlanSearch)
        } else {
            manifest
        }
    }

    fn tick(&mut self) {
        misbehave(self.tick.as_deref(), "tick");
    }

    fn plan_search(
        &mut self,
        _index: &str,
        _route: SearchRoute,
        request: Value,
    ) -> Result<SearchPlan, HookError> {
        misbehave(self.search.as_deref(), "plan-search");
        Ok(SearchPlan::Rewrite(request))
    }

    fn handle(&mut self, request: Request) -> Response {
        self.calls += 1;
        match request.path.rsplit('/').next().unwrap_or("") {
            "loop" => spin(),
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    black_box(&hoard);
                }
            }
            "trap" => panic!("asked to trap"),
            "http" => {
                let url = request.query_param("url").unwrap_or_default();
                match http::send(http::Request::get(url)) {
                    Ok(r) => Response::json(200, &json!({ "status": r.status })),
                    Err(e) => Response::json(502, &json!({ "code": e.code, "message": e.message })),
                }
            }
            _ => Response::json(200, &json!({ "calls": self.calls })),
        }
    }
}

miroir_plugin_sdk::export!(Misbehave);
