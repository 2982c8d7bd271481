//! Stale replicas: nodes that lost, or never received, their copy of an index.
//!
//! A node restarted on an empty disk answers `index_not_found` for an index Miroir created on
//! it, and once a write has created the index again without Miroir's bookkeeping settings it
//! refuses the `_miroir_shard` filter that restricts it to its shards. Neither answer is the
//! client's fault: the read must go to another replica, and the node must not be asked again
//! for that index for a while. [`StaleReplicas`] remembers such `(node, index)` pairs for
//! [`STALE_FOR`] and counts the answers; [`is_stale_answer`] recognises them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use miroir_types::NodeId;

use crate::node_client::{NodeError, NodeResponse};

/// What a node's outcome means for a read of an index Miroir knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// A 2xx answer.
    Answered,
    /// A 4xx that is the client's own error: every node would give it; forwarded.
    Refused,
    /// The node does not hold Miroir's copy of the index ([`is_stale_answer`]): ask another.
    Stale,
    /// A 5xx, a timeout or no connection: ask another.
    Failed,
}

impl ReadOutcome {
    /// Classifies one node's outcome.
    pub fn of(outcome: &Result<NodeResponse, NodeError>) -> Self {
        match outcome {
            Ok(response) if response.is_success() => ReadOutcome::Answered,
            Ok(response) if is_stale_answer(response.status, &response.body) => ReadOutcome::Stale,
            Ok(response) if response.status < 500 => ReadOutcome::Refused,
            _ => ReadOutcome::Failed,
        }
    }
}

/// How long a node that gave a stale answer for an index is kept last for that index.
pub const STALE_FOR: Duration = Duration::from_secs(10);

/// The bookkeeping field whose refusal marks a node stale (see `miroir-http`'s bookkeeping).
const SHARD_FIELD_ATTRIBUTE: &str = "Attribute `_miroir_shard";

/// Whether a node's answer (`status`, `body`) to a read of an index Miroir knows says that the
/// node does not hold Miroir's copy of the index: `index_not_found`, or a filter error about
/// the `_miroir_shard` attribute (which only Miroir's shard restriction names: a client's
/// expression naming it is answered before any scatter).
pub fn is_stale_answer(status: u16, body: &[u8]) -> bool {
    if !(400..500).contains(&status) {
        return false;
    }
    let Ok(error) = serde_json::from_slice::<serde_json::Value>(body) else { return false };
    let code = error["code"].as_str().unwrap_or_default();
    let message = error["message"].as_str().unwrap_or_default();
    code == "index_not_found"
        || (code.ends_with("_filter") && message.contains(SHARD_FIELD_ATTRIBUTE))
}

/// The `(node, index)` pairs that recently answered stale, and how many stale answers each node
/// gave since start.
#[derive(Debug)]
pub struct StaleReplicas {
    ttl: Duration,
    marks: Mutex<HashMap<(NodeId, String), Instant>>,
    held: Mutex<std::collections::BTreeSet<(NodeId, String)>>,
    answers: Mutex<BTreeMap<NodeId, u64>>,
}

impl Default for StaleReplicas {
    fn default() -> Self {
        StaleReplicas::new(STALE_FOR)
    }
}

impl StaleReplicas {
    /// A registry keeping marks for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        StaleReplicas {
            ttl,
            marks: Mutex::default(),
            held: Mutex::default(),
            answers: Mutex::default(),
        }
    }

    /// Records a stale answer of `node` for `index`: counted, and the pair is stale for the
    /// registry's time to live from now.
    pub fn mark(&self, node: &NodeId, index: &str) {
        let key = (node.clone(), index.to_owned());
        self.marks.lock().expect("stale marks lock").insert(key, Instant::now());
        *self.answers.lock().expect("stale answers lock").entry(node.clone()).or_default() += 1;
    }

    /// Keeps `node` stale for `index` with no time limit: Miroir created the index again on a
    /// node that had lost it, so the node answers reads normally for documents it does not
    /// hold. Only [`StaleReplicas::release`] (a refill, or the index deleted) ends it.
    pub fn hold(&self, node: &NodeId, index: &str) {
        self.held.lock().expect("stale holds lock").insert((node.clone(), index.to_owned()));
    }

    /// Replaces every held mark with `held` (the set every instance shares, from the task store).
    pub fn replace_held(&self, held: std::collections::BTreeSet<(NodeId, String)>) {
        *self.held.lock().expect("stale holds lock") = held;
    }

    /// Whether `node` is held stale for `index` ([`StaleReplicas::hold`]).
    pub fn is_held(&self, node: &NodeId, index: &str) -> bool {
        let held = self.held.lock().expect("stale holds lock");
        !held.is_empty() && held.contains(&(node.clone(), index.to_owned()))
    }

    /// Ends every mark of `index` (held or timed): the index was deleted or replaced.
    pub fn release(&self, index: &str) {
        self.held.lock().expect("stale holds lock").retain(|(_, i)| i != index);
        self.marks.lock().expect("stale marks lock").retain(|(_, i), _| i != index);
    }

    /// Ends the marks (held or timed) of `node` for `index`: it was refilled.
    pub fn release_node(&self, node: &NodeId, index: &str) {
        let key = (node.clone(), index.to_owned());
        self.held.lock().expect("stale holds lock").remove(&key);
        self.marks.lock().expect("stale marks lock").remove(&key);
    }

    /// Forgets a timed mark (not a held one): `node` answered a read of `index` normally.
    pub fn clear(&self, node: &NodeId, index: &str) {
        let mut marks = self.marks.lock().expect("stale marks lock");
        if !marks.is_empty() {
            marks.remove(&(node.clone(), index.to_owned()));
        }
    }

    /// Whether `node` answered stale for `index` less than the time to live ago, or is held
    /// stale for it.
    pub fn is_stale(&self, node: &NodeId, index: &str) -> bool {
        if self.is_held(node, index) {
            return true;
        }
        let marks = self.marks.lock().expect("stale marks lock");
        if marks.is_empty() {
            return false;
        }
        marks.get(&(node.clone(), index.to_owned())).is_some_and(|at| at.elapsed() < self.ttl)
    }

    /// Whether `node` is stale for any index.
    pub fn is_stale_anywhere(&self, node: &NodeId) -> bool {
        self.stale_indexes().contains_key(node)
    }

    /// The indexes each node is stale for now (nodes without any are left out).
    pub fn stale_indexes(&self) -> BTreeMap<NodeId, Vec<String>> {
        let mut out: BTreeMap<NodeId, Vec<String>> = BTreeMap::new();
        let mut marks = self.marks.lock().expect("stale marks lock");
        marks.retain(|_, at| at.elapsed() < self.ttl);
        for (node, index) in marks.keys() {
            out.entry(node.clone()).or_default().push(index.clone());
        }
        for (node, index) in self.held.lock().expect("stale holds lock").iter() {
            out.entry(node.clone()).or_default().push(index.clone());
        }
        out.values_mut().for_each(|indexes| {
            indexes.sort();
            indexes.dedup();
        });
        out
    }

    /// Stale answers by node since start (only grows).
    pub fn answers(&self) -> BTreeMap<NodeId, u64> {
        self.answers.lock().expect("stale answers lock").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str) -> NodeId {
        NodeId::new(name).unwrap()
    }

    #[test]
    fn missing_indexes_and_refused_bookkeeping_filters_are_stale() {
        let not_found = br#"{"message":"Index `p` not found.","code":"index_not_found","type":"invalid_request","link":""}"#;
        assert!(is_stale_answer(404, not_found));
        let refused = br#"{"message":"Index `p`: Attribute `_miroir_shard.s3` is not filterable. This index does not have configured filterable attributes.\n1:17 _miroir_shard.s3 EXISTS","code":"invalid_search_filter"}"#;
        assert!(is_stale_answer(400, refused));
        let browse = br#"{"message":"Inside `.queries[1]`: Index `p`: Attribute `_miroir_shard.s0` is not filterable.","code":"invalid_document_filter"}"#;
        assert!(is_stale_answer(400, browse));
    }

    #[test]
    fn client_errors_are_not_stale() {
        let client = br#"{"message":"Index `p`: Attribute `title` is not filterable. Available filterable attribute patterns are: `_miroir_shard`, `brand`.","code":"invalid_search_filter"}"#;
        assert!(!is_stale_answer(400, client));
        let doc = br#"{"message":"Document `1` not found.","code":"document_not_found"}"#;
        assert!(!is_stale_answer(404, doc));
        assert!(!is_stale_answer(500, br#"{"code":"index_not_found"}"#));
        assert!(!is_stale_answer(404, b"not json"));
    }

    #[test]
    fn outcomes_are_classified() {
        let answer = |status: u16, body: &'static [u8]| {
            Ok(NodeResponse { status, body: bytes::Bytes::from_static(body) })
        };
        assert_eq!(ReadOutcome::of(&answer(200, b"{}")), ReadOutcome::Answered);
        assert_eq!(
            ReadOutcome::of(&answer(404, br#"{"code":"index_not_found"}"#)),
            ReadOutcome::Stale
        );
        assert_eq!(
            ReadOutcome::of(&answer(400, br#"{"code":"invalid_search_q"}"#)),
            ReadOutcome::Refused
        );
        assert_eq!(ReadOutcome::of(&answer(502, b"")), ReadOutcome::Failed);
        let timeout = NodeError::Timeout { node: node("n"), timeout: Duration::from_secs(1) };
        assert_eq!(ReadOutcome::of(&Err(timeout)), ReadOutcome::Failed);
    }

    #[test]
    fn marks_expire_and_answers_are_counted() {
        let stale = StaleReplicas::new(Duration::from_millis(50));
        let n = node("n1");
        assert!(!stale.is_stale(&n, "p"));
        stale.mark(&n, "p");
        stale.mark(&n, "p");
        assert!(stale.is_stale(&n, "p") && !stale.is_stale(&n, "q"));
        assert_eq!(stale.stale_indexes().get(&n), Some(&vec!["p".to_owned()]));
        assert_eq!(stale.answers().get(&n), Some(&2));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!stale.is_stale(&n, "p"));
        assert!(stale.stale_indexes().is_empty());
        stale.mark(&n, "p");
        stale.clear(&n, "p");
        assert!(!stale.is_stale_anywhere(&n));
        assert_eq!(stale.answers().get(&n), Some(&3), "counts only grow");
    }

    #[test]
    fn held_marks_last_until_released() {
        let stale = StaleReplicas::new(Duration::from_millis(10));
        let n = node("n1");
        stale.hold(&n, "p");
        stale.clear(&n, "p");
        std::thread::sleep(Duration::from_millis(20));
        assert!(stale.is_stale(&n, "p") && !stale.is_stale(&n, "q"));
        assert_eq!(stale.stale_indexes().get(&n), Some(&vec!["p".to_owned()]));
        stale.release("p");
        assert!(!stale.is_stale(&n, "p"));
    }
}
