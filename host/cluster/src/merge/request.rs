//! What each node is asked, and the page the client asked for.

use serde_json::{Map, Value};

/// Meilisearch's default page size of a search (`limit`, `hitsPerPage`, a federation's
/// `limit`): the one place Miroir writes it.
pub const DEFAULT_SEARCH_LIMIT: usize = 20;

const DEFAULT_LIMIT: usize = DEFAULT_SEARCH_LIMIT;

/// The client's page, in offset/limit terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientPage {
    pub offset: usize,
    pub limit: usize,
    /// Whether the client used `page`/`hitsPerPage` (the answer then has page fields).
    pub paged: bool,
    pub page: usize,
    /// `hitsPerPage` as the answer shows it (also with `page: 0`, whose `limit` is 0).
    pub per_page: usize,
}

impl ClientPage {
    pub fn from_request(request: &Value) -> Self {
        let number = |key: &str| request.get(key).and_then(Value::as_u64).map(|n| n as usize);
        let paged = request.get("page").is_some() || request.get("hitsPerPage").is_some();
        if paged {
            let per_page = number("hitsPerPage").unwrap_or(DEFAULT_LIMIT);
            let page = number("page").unwrap_or(1);
            let offset = page.saturating_sub(1).saturating_mul(per_page);
            let limit = if page == 0 { 0 } else { per_page };
            Self { offset, limit, paged, page, per_page }
        } else {
            let limit = number("limit").unwrap_or(DEFAULT_LIMIT);
            Self { offset: number("offset").unwrap_or(0), limit, paged, page: 0, per_page: limit }
        }
    }
}

/// The request sent to every node of the covering set for a client search: the first
/// `offset + limit` hits with their ranking score details, so that the merge can order them.
/// `keep` lists fields the merge needs in hits (the primary key, the distinct attribute) that
/// must be retrieved even if the client's `attributesToRetrieve` leaves them out.
pub fn node_request(client: &Value, keep: &[&str]) -> Value {
    let page = ClientPage::from_request(client);
    let bad_number = ["page", "hitsPerPage", "offset", "limit"]
        .iter()
        .any(|k| client.get(*k).is_some_and(|v| v.as_u64().is_none()));
    if bad_number {
        // Leave the request as it is: each node answers Meilisearch's own error for it.
        return client.clone();
    }
    let mut out: Map<String, Value> = client.as_object().cloned().unwrap_or_default();
    for key in ["page", "hitsPerPage", "offset", "limit"] {
        out.remove(key);
    }
    let depth = page.offset.saturating_add(page.limit);
    if page.paged {
        out.insert("page".into(), Value::from(1));
        out.insert("hitsPerPage".into(), Value::from(depth));
    } else {
        out.insert("offset".into(), Value::from(0));
        out.insert("limit".into(), Value::from(depth));
    }
    out.insert("showRankingScore".into(), Value::Bool(true));
    out.insert("showRankingScoreDetails".into(), Value::Bool(true));
    if let Some(Value::Array(fields)) = out.get_mut("attributesToRetrieve") {
        let star = fields.iter().any(|f| f == "*");
        for k in keep {
            if !star && !fields.iter().any(|f| f == k) {
                fields.push(Value::from(*k));
            }
        }
    }
    Value::Object(out)
}
