//! Every node request's duration, told to an observer the binary installs once (the
//! `miroir_node_request_duration_seconds` histogram), labelled by node and by the kind of
//! route asked (`search`, `documents`, `tasks`, ...), never by index name.

use std::sync::OnceLock;
use std::time::Duration;

use miroir_types::NodeId;

/// Told of each node request: the node, the route kind ([`route_of`]) and the time until its
/// answer (or its failure).
pub type NodeRequestObserver = Box<dyn Fn(&NodeId, &'static str, Duration) + Send + Sync>;

static OBSERVER: OnceLock<NodeRequestObserver> = OnceLock::new();

/// Installs the observer of node request durations; only the first call has an effect.
pub fn observe_node_requests(observer: NodeRequestObserver) {
    let _ = OBSERVER.set(observer);
}

/// Tells the observer, when one is installed.
pub(crate) fn observed(node: &NodeId, path: &str, elapsed: Duration) {
    if let Some(observer) = OBSERVER.get() {
        observer(node, route_of(path), elapsed);
    }
}

/// The kind of route `path` (with or without its query string) asks of a node.
pub fn route_of(path: &str) -> &'static str {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["indexes", _, "search"] => "search",
        ["indexes", _, "facet-search"] => "facet-search",
        ["indexes", _, "similar"] => "similar",
        ["indexes", _, "documents", ..] => "documents",
        ["indexes", _, "settings", ..] => "settings",
        ["indexes", _, "stats"] | ["stats"] => "stats",
        ["indexes"] | ["indexes", _] => "indexes",
        ["multi-search"] => "multi-search",
        ["tasks", ..] | ["batches", ..] => "tasks",
        ["keys", ..] => "keys",
        ["health"] => "health",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_named_by_kind_never_by_index() {
        assert_eq!(route_of("/indexes/books/search"), "search");
        assert_eq!(route_of("/indexes/books/documents/fetch"), "documents");
        assert_eq!(route_of("/indexes/books/documents?primaryKey=id"), "documents");
        assert_eq!(route_of("/tasks?indexUids=books&limit=1"), "tasks");
        assert_eq!(route_of("/indexes/books"), "indexes");
        assert_eq!(route_of("/multi-search"), "multi-search");
        assert_eq!(route_of("/version"), "other");
    }
}
