//! Errors of loading plugins and of calling them.

use std::path::PathBuf;

use miroir_types::ErrorCode;

/// Why the plugins could not be loaded. The gateway refuses to start with any of these.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The component file does not exist or cannot be read.
    #[error("plugin `{plugin}`: cannot read component `{}`: {source}; build it with `make plugins` or disable the plugin", path.display())]
    Read {
        /// The plugin's configured name.
        plugin: String,
        /// The component path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The component is not a valid Miroir plugin component.
    #[error("plugin `{plugin}`: cannot compile `{}`: {message}", path.display())]
    Compile {
        /// The plugin's configured name.
        plugin: String,
        /// The component path.
        path: PathBuf,
        /// What wasmtime said.
        message: String,
    },
    /// The component imports something Miroir does not provide, or exports the wrong hooks.
    #[error("plugin `{plugin}`: cannot link: {message}")]
    Link {
        /// The plugin's configured name.
        plugin: String,
        /// What wasmtime said.
        message: String,
    },
    /// The first instance could not be created or its `init` or `manifest` failed.
    #[error("plugin `{plugin}` failed at start: {message}")]
    Start {
        /// The plugin's configured name.
        plugin: String,
        /// What went wrong.
        message: String,
    },
    /// Two plugins claim the same route.
    #[error("route {method} {path} is claimed by both `{first}` and `{second}`")]
    RouteConflict {
        /// The method.
        method: String,
        /// The path.
        path: String,
        /// The plugin loaded first.
        first: String,
        /// The plugin loaded second.
        second: String,
    },
    /// The wasmtime engine could not be configured.
    #[error("cannot create the WebAssembly engine: {0}")]
    Engine(String),
}

/// Why one plugin call failed. The gateway keeps serving; only this call fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// The call ran past the plugin's deadline and was stopped.
    #[error("plugin `{plugin}` ran past its {deadline_ms} ms deadline")]
    DeadlineExceeded {
        /// The plugin.
        plugin: String,
        /// Its deadline.
        deadline_ms: u64,
    },
    /// The call tried to grow the instance's memory past the plugin's cap.
    #[error("plugin `{plugin}` exceeded its {memory_mb} MiB memory cap")]
    MemoryExceeded {
        /// The plugin.
        plugin: String,
        /// Its cap.
        memory_mb: u64,
    },
    /// The plugin trapped (panicked, hit `unreachable`, called a forbidden import, ...).
    #[error("plugin `{plugin}` trapped: {message}")]
    Trapped {
        /// The plugin.
        plugin: String,
        /// The trap, as wasmtime describes it.
        message: String,
    },
    /// The plugin answered with a hook error (its own decision, not a failure of the sandbox).
    #[error("plugin `{plugin}` rejected the request: {code}: {message}")]
    Rejected {
        /// The plugin.
        plugin: String,
        /// The status it chose.
        status: u16,
        /// Its error code.
        code: String,
        /// Its message.
        message: String,
    },
    /// No loaded plugin serves this route.
    #[error("no plugin serves {method} {path}")]
    NoRoute {
        /// The method.
        method: String,
        /// The path.
        path: String,
    },
}

impl PluginError {
    /// The Miroir error code the client gets: `miroir_plugin_failed` (502) for every failure of
    /// the plugin itself. `None` for [`PluginError::Rejected`] (the plugin chose its own status
    /// and code) and [`PluginError::NoRoute`] (the gateway answers its usual 404).
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            PluginError::Rejected { .. } | PluginError::NoRoute { .. } => None,
            _ => Some(ErrorCode::MiroirPluginFailed),
        }
    }

    /// The HTTP status the client gets.
    pub fn status(&self) -> u16 {
        match self {
            PluginError::Rejected { status, .. } => *status,
            PluginError::NoRoute { .. } => 404,
            _ => ErrorCode::MiroirPluginFailed.status(),
        }
    }

    /// Whether the sandbox stopped the plugin (deadline, memory, trap), as opposed to the plugin
    /// answering with an error of its own.
    pub fn is_failure(&self) -> bool {
        self.error_code().is_some()
    }

    /// The plugin the error comes from, when there is one.
    pub fn plugin(&self) -> Option<&str> {
        match self {
            PluginError::DeadlineExceeded { plugin, .. }
            | PluginError::MemoryExceeded { plugin, .. }
            | PluginError::Trapped { plugin, .. }
            | PluginError::Rejected { plugin, .. } => Some(plugin),
            PluginError::NoRoute { .. } => None,
        }
    }
}

/// Why a host service a plugin called failed. The plugin receives it as a WIT `host-error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct HostCallError {
    /// The HTTP status a client would get for this error, e.g. `404` for `index_not_found`.
    pub status: u16,
    /// A machine-readable code, e.g. `index_not_found`, `http_target_not_allowed`.
    pub code: String,
    /// A human-readable message.
    pub message: String,
}

impl HostCallError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        HostCallError { status, code: code.into(), message: message.into() }
    }
}
