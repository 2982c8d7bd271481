//! The memory cap of one instance.

/// Most table elements an instance may have: tables hold function references, and a plugin that
/// needs more than this is broken.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Refuses memory growth past the plugin's cap, and remembers that it did so that the failed
/// call is reported as a memory overrun rather than a generic trap.
pub(crate) struct MemoryLimiter {
    max_bytes: usize,
    exceeded: bool,
}

impl MemoryLimiter {
    /// A limiter capping each linear memory at `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        MemoryLimiter { max_bytes, exceeded: false }
    }

    /// Whether a growth was refused since the instance was created.
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.exceeded = true;
            // An error (not `Ok(false)`) traps at the `memory.grow`: Rust's allocator would
            // otherwise abort with a less precise message, or a plugin could ignore the failure.
            return Err(wasmtime::format_err!(
                "memory cap of {} MiB reached (asked for {} MiB)",
                self.max_bytes >> 20,
                desired.div_ceil(1 << 20)
            ));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
