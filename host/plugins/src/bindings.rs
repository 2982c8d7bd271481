//! The wasmtime bindings of the `miroir:plugin` world (`wit/` at the repository root). This is the
//! only `bindgen!` of the project; other modules use the generated types from here.

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../../wit",
    imports: {
        "miroir:plugin/search": async,
        "miroir:plugin/http": async,
        "miroir:plugin/kv": async,
        "miroir:plugin/random": trappable,
    },
    exports: { default: async },
});

pub(crate) use miroir::plugin::types;
