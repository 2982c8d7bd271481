//! Miroir's task registry on the task store: recording tasks, deriving their status from the
//! node tasks they map to, and the `/tasks` routes.

pub mod batches;
pub(crate) mod derive;
pub(crate) mod query;
mod record;
pub mod routes;
pub(crate) mod view;

pub use derive::refresh;
pub use record::{enqueue, enqueue_with_change, failed_task, Hints};
pub use view::{render, summary};
