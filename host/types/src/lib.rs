//! Domain types shared by every Miroir crate.
//!
//! This crate owns the vocabulary the rest of the gateway speaks: the identifiers of the things
//! Miroir routes between ([`IndexUid`], [`NodeId`], [`GroupId`], [`ShardId`], [`TaskUid`]) and the
//! closed set of error codes Miroir itself answers with ([`ErrorCode`]), each with its HTTP status
//! and its Meilisearch `code`, `type` and `link`. [`ApiError`] renders one of those codes as
//! Meilisearch's error object; [`ForwardedError`] carries an error a node answered, unchanged, and
//! [`ErrorResponse`] is either of the two on its way to the client.
//!
//! [`HookPort`] is the port through which the request path calls optional features (plugins):
//! plan and merge searches, see reads after they were answered and writes after quorum.
//! [`RateLimiter`] is the port of the search page's per-client request budget.
//!
//! It does no I/O and knows nothing about HTTP servers, wasmtime or storage: turning an error into a
//! response happens in the HTTP layer, which asks this crate only for status and body.

mod api_error;
mod changes;
mod error_code;
mod hooks;
mod ids;
mod rate_limit;

pub use api_error::{ApiError, ErrorResponse, ForwardedError};
pub use changes::{ChangeFeed, ChangeFeedError, ChangePage, Recorded};
pub use error_code::{ErrorCode, ErrorType};
pub use hooks::{
    HookError, HookPort, HookSet, NoHooks, ReadExchange, SearchPlan, SearchRoute, ShardAnswer,
    WriteEvent,
};
pub use ids::{GroupId, IndexUid, InvalidId, InvalidIndexUid, NodeId, ShardId, TaskUid};
pub use rate_limit::RateLimiter;
