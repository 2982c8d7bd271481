//! A plugin that misbehaves on request, for the host's sandbox tests.
//!
//! Routes under `/_miroir/x/bad/`: `loop` never returns, `alloc` allocates without bound, `trap`
//! panics, `http?url=` sends a GET to any URL (the host must refuse targets its config does not
//! name), `ok` answers `{"calls": n}` where `n` counts the calls this instance served: it starts
//! again at 1 on a fresh instance.

use std::hint::black_box;

use miroir_plugin_sdk::serde_json::{json, Value};
use miroir_plugin_sdk::{http, Manifest, Method, Plugin, Request, Response};

struct Misbehave {
    calls: u64,
}

impl Plugin for Misbehave {
    fn init(_config: Value) -> Result<Self, String> {
        Ok(Misbehave { calls: 0 })
    }

    fn manifest(&self) -> Manifest {
        ["loop", "alloc", "trap", "http", "ok"]
            .into_iter()
            .fold(Manifest::new("test-misbehave", "0.1.0"), |m, route| {
                m.route(Method::Get, format!("/_miroir/x/bad/{route}"))
            })
    }

    fn handle(&mut self, request: Request) -> Response {
        self.calls += 1;
        match request.path.rsplit('/').next().unwrap_or("") {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
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
