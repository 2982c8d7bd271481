//! A plugin that misbehaves on request, for the host's sandbox tests.
//!
//! Routes under `/_miroir/x/bad/`: `loop` never returns, `alloc` allocates without bound, `trap`
//! panics, `http?url=` sends a GET to any URL (the host must refuse targets its config does not
//! name), `ok` answers `{"calls": n}` where `n` counts the calls this instance served: it starts
//! again at 1 on a fresh instance.
//!
//! With `config.tick` set to `"loop"` or `"trap"`, it also declares the `tick` hook, which then
//! never returns or panics.

use std::hint::black_box;

use miroir_plugin_sdk::serde_json::{json, Value};
use miroir_plugin_sdk::{http, Hook, Manifest, Method, Plugin, Request, Response};

struct Misbehave {
    calls: u64,
    tick: Option<String>,
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
        Ok(Misbehave { calls: 0, tick })
    }

    fn manifest(&self) -> Manifest {
        let manifest = ["loop", "alloc", "trap", "http", "ok"]
            .into_iter()
            .fold(Manifest::new("test-misbehave", "0.1.0"), |m, route| {
                m.route(Method::Get, format!("/_miroir/x/bad/{route}"))
            });
        if self.tick.is_some() {
            manifest.hook(Hook::Tick)
        } else {
            manifest
        }
    }

    fn tick(&mut self) {
        match self.tick.as_deref() {
            Some("loop") => spin(),
            Some("trap") => panic!("asked to trap in tick"),
            _ => {}
        }
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
