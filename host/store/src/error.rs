//! The one error type every store operation returns.

/// Why a store operation failed.
///
/// Callers can rely on the variant: `Unavailable` is worth retrying later, `Conflict` means the
/// store refused the write because the state changed under the caller (retrying the same request
/// will not help), `NotFound` means the record the operation needs does not exist.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or failed to answer (I/O, connection lost, busy timeout).
    #[error("task store unavailable: {0}")]
    Unavailable(String),
    /// The write lost a race or carried a stale version or fencing token.
    #[error("task store conflict: {0}")]
    Conflict(String),
    /// The record the operation applies to does not exist.
    #[error("not found in task store: {0}")]
    NotFound(String),
    /// A stored value could not be decoded; the store holds data this version cannot read.
    #[error("corrupt data in task store: {0}")]
    Corrupt(String),
    /// The caller passed a value the store cannot hold (for example a date out of range).
    #[error("invalid input to task store: {0}")]
    Invalid(String),
}

impl StoreError {
    /// Whether retrying the same operation later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// The result type of every store operation.
pub type StoreResult<T> = Result<T, StoreError>;
