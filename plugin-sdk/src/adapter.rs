//! Implements the generated `Guest` trait for any [`Plugin`], holding the plugin's state.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

use crate::plugin::Plugin;
use crate::types::Response;
use crate::wit::exports::miroir::plugin::hooks::Guest;
use crate::wit::miroir::plugin::types as wit;

thread_local! {
    // One plugin per component, and components are single-threaded: one slot, type-erased so the
    // generic adapter needs no generic static.
    static STATE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Runs `f` on the plugin's state. Hooks never re-enter the guest, so the borrow cannot clash.
fn with_plugin<P: Plugin, R>(f: impl FnOnce(&mut P) -> R) -> R {
    STATE.with(|state| {
        let mut state = state.borrow_mut();
        let plugin = state
            .as_mut()
            .and_then(|p| p.downcast_mut::<P>())
            .expect("the host calls init before any hook");
        f(plugin)
    })
}

/// The bridge between the generated bindings and a [`Plugin`]. Used by [`crate::export!`].
pub struct Adapter<P>(PhantomData<P>);

impl<P: Plugin> Guest for Adapter<P> {
    fn init(config: String) -> Result<(), String> {
        install_panic_hook();
        let config = serde_json::from_str(&config)
            .map_err(|e| format!("the plugin's config is not JSON: {e}"))?;
        let plugin = P::init(config)?;
        STATE.with(|state| *state.borrow_mut() = Some(Box::new(plugin)));
        Ok(())
    }

    fn manifest() -> wit::Manifest {
        with_plugin::<P, _>(|p| p.manifest()).into()
    }

    fn handle(request: wit::Request) -> wit::Response {
        with_plugin::<P, _>(|p| p.handle(request.into())).into()
    }

    fn plan_search(
        index: String,
        route: wit::SearchRoute,
        request: String,
    ) -> Result<wit::SearchPlan, wit::HookError> {
        let request = parse_json(&request)?;
        with_plugin::<P, _>(|p| p.plan_search(&index, route.into(), request))
            .map(Into::into)
            .map_err(Into::into)
    }

    fn merge_search(
        index: String,
        request: String,
        responses: Vec<wit::ShardResponse>,
    ) -> Result<String, wit::HookError> {
        let request = parse_json(&request)?;
        let responses = responses.into_iter().map(Into::into).collect();
        with_plugin::<P, _>(|p| p.merge_search(&index, request, responses))
            .map(|v| v.to_string())
            .map_err(Into::into)
    }

    fn after_response(request: wit::Request, response: wit::Response, timing: wit::Timing) {
        let response = Response::from(response);
        with_plugin::<P, _>(|p| p.after_response(request.into(), response, timing.into()))
    }

    fn on_write(event: wit::WriteEvent) {
        with_plugin::<P, _>(|p| p.on_write(event.into()))
    }

    fn tick() {
        with_plugin::<P, _>(|p| p.tick())
    }
}

/// Reports panics through the host's log: the sandbox gives a plugin no stderr.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            crate::log::error(&format!("plugin panicked: {info}"));
        }));
    });
}

fn parse_json(text: &str) -> Result<serde_json::Value, wit::HookError> {
    serde_json::from_str(text).map_err(|e| wit::HookError {
        status: 400,
        code: "bad_request".into(),
        message: format!("the search request is not JSON: {e}"),
    })
}
