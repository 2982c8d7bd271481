//! Browsing documents (`GET .../documents`, `POST .../documents/fetch`) with one global offset
//! and limit over every shard, as one node holding every document pages them.
//!
//! The order is shard-major (see [`miroir_cluster::merge::browse_plan`]): one node's internal
//! order cannot be reproduced across shards, and this order is the same whichever replicas
//! answer. Two rounds: every shard is counted (`limit: 0`, restricted to the shard with
//! `_miroir_shard.s<N> EXISTS`), then only the shards the page reaches are asked for their
//! slice, on the node that counted them. `total` is the sum over shards, so each document is
//! counted once, never once per replica. A request a node refuses is sent again unchanged to
//! one node, so the client gets exactly the error one node gives.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use miroir_cluster::merge::{browse_plan, ShardSlice};
use miroir_cluster::{
    scatter_each_shard, Assignment, Coverage, Gathered, NodeBody, NodeRequest, ReadPart, ReadPlan,
    Refused,
};
use miroir_types::{ErrorCode, ForwardedError, NodeId, ShardId};
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::body::{json_body, RawBody};
use crate::bookkeeping::shard_filter;
use crate::catalog::check_read_uid;
use crate::documents::sorted::{fields_with_sort, merge_sorted, parse_sort, SortField};
use crate::documents::strip_document;
use crate::error::{HttpError, HttpResult};
use crate::read_catalog::index_for_read;
use crate::reserved_names;
use crate::search::ClientTransport;
use crate::AppState;

/// Meilisearch's default page size for documents.
const DEFAULT_LIMIT: usize = 20;

/// Round-robin over replica groups for browsing, per instance.
static NEXT_GROUP: AtomicUsize = AtomicUsize::new(0);

/// The client's browse request, in the form it came.
enum Browse {
    /// `GET .../documents`: the query parameters.
    Get(Vec<(String, String)>),
    /// `POST .../documents/fetch`: the JSON body.
    Fetch(Value),
}

/// A node request: method, path with query, body.
type NodeCall = (Method, String, Option<NodeBody>);

impl Browse {
    /// Whether the client's `filter` names Miroir's bookkeeping field.
    fn names_shard_field(&self) -> bool {
        match self {
            Browse::Get(params) => {
                params.iter().any(|(k, v)| k == "filter" && reserved_names::names_shard_field(v))
            }
            Browse::Fetch(body) => reserved_names::request_names_shard_field(body),
        }
    }

    /// The request with the bookkeeping field renamed in its filter.
    fn disguised(&self) -> Browse {
        match self {
            Browse::Get(params) => Browse::Get(
                params
                    .iter()
                    .map(|(k, v)| {
                        let v = if k == "filter" { reserved_names::disguise(v) } else { v.clone() };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            Browse::Fetch(body) => Browse::Fetch(reserved_names::disguised_request(body)),
        }
    }

    /// The client's `offset` and `limit`; `None` when either is malformed (one node then reports
    /// it).
    fn window(&self) -> Option<(usize, usize)> {
        match self {
            Browse::Get(params) => {
                let number = |name: &str, default: usize| {
                    params
                        .iter()
                        .find(|(k, _)| k == name)
                        .map_or(Some(default), |(_, v)| v.parse().ok())
                };
                Some((number("offset", 0)?, number("limit", DEFAULT_LIMIT)?))
            }
            Browse::Fetch(body) => {
                let object = body.as_object()?;
                let number = |name: &str, default: usize| match object.get(name) {
                    None => Some(default),
                    Some(v) => v.as_u64().and_then(|n| usize::try_from(n).ok()),
                };
                Some((number("offset", 0)?, number("limit", DEFAULT_LIMIT)?))
            }
        }
    }

    /// The client's request as it came, for one node.
    fn unchanged(&self, uid: &str) -> NodeCall {
        match self {
            Browse::Get(params) => (Method::GET, get_path(uid, params.iter()), None),
            Browse::Fetch(body) => fetch_request(uid, body),
        }
    }

    /// The client's `sort`, when it sent one (`None` when there is none to merge by).
    fn sort(&self) -> Option<Vec<String>> {
        let list: Vec<String> = match self {
            Browse::Get(params) => params
                .iter()
                .filter(|(k, _)| k == "sort")
                .flat_map(|(_, v)| v.split(','))
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            Browse::Fetch(body) => match body.get("sort") {
                Some(Value::Array(items)) => {
                    items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
                }
                _ => Vec::new(),
            },
        };
        (!list.is_empty()).then_some(list)
    }

    /// The client's `fields`, when it named some.
    fn fields(&self) -> Option<Vec<String>> {
        match self {
            Browse::Get(params) => params.iter().find(|(k, _)| k == "fields").map(|(_, v)| {
                v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
            }),
            Browse::Fetch(body) => match body.get("fields") {
                Some(Value::Array(items)) => {
                    Some(items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                }
                _ => None,
            },
        }
    }

    /// The request for `limit` documents from `offset` of `shard` only.
    fn for_shard(&self, uid: &str, shard: ShardId, offset: usize, limit: usize) -> NodeCall {
        self.for_shard_with(uid, shard, (offset, limit), None)
    }

    /// [`Browse::for_shard`], asking for `fields` instead of the client's when given.
    fn for_shard_with(
        &self,
        uid: &str,
        shard: ShardId,
        (offset, limit): (usize, usize),
        fields: Option<&[String]>,
    ) -> NodeCall {
        let only = shard_filter(shard);
        match self {
            Browse::Get(params) => {
                let filter = match params.iter().find(|(k, _)| k == "filter") {
                    Some((_, client)) if !client.trim().is_empty() => {
                        format!("({client}) AND {only}")
                    }
                    _ => only,
                };
                let replaced: &[&str] = if fields.is_some() {
                    &["offset", "limit", "filter", "fields"]
                } else {
                    &["offset", "limit", "filter"]
                };
                let kept = params.iter().filter(|(k, _)| !replaced.contains(&k.as_str())).cloned();
                let added = [
                    ("filter".to_owned(), filter),
                    ("offset".to_owned(), offset.to_string()),
                    ("limit".to_owned(), limit.to_string()),
                ];
                let fields = fields.map(|f| ("fields".to_owned(), f.join(",")));
                let all: Vec<(String, String)> = kept.chain(added).chain(fields).collect();
                (Method::GET, get_path(uid, all.iter()), None)
            }
            Browse::Fetch(body) => {
                let mut body = body.clone();
                body["filter"] = match body.get("filter").cloned() {
                    None | Some(Value::Null) => json!([only]),
                    Some(Value::Array(mut items)) => {
                        items.push(Value::from(only));
                        Value::Array(items)
                    }
                    Some(other) => json!([other, only]),
                };
                body["offset"] = json!(offset);
                body["limit"] = json!(limit);
                if let Some(fields) = fields {
                    body["fields"] = json!(fields);
                }
                fetch_request(uid, &body)
            }
        }
    }
}

fn get_path<'a>(uid: &str, params: impl Iterator<Item = &'a (String, String)>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        query.append_pair(k, v);
    }
    let query = query.finish();
    if query.is_empty() {
        format!("/indexes/{uid}/documents")
    } else {
        format!("/indexes/{uid}/documents?{query}")
    }
}

fn fetch_request(uid: &str, body: &Value) -> NodeCall {
    let bytes = serde_json::to_vec(body).expect("a JSON value serializes");
    (Method::POST, format!("/indexes/{uid}/documents/fetch"), Some(NodeBody::json(bytes)))
}

/// `GET /indexes/{uid}/documents`.
pub async fn browse_get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
    RawQuery(query): RawQuery,
) -> HttpResult<Response> {
    check_read_uid(&uid)?;
    let params = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    browse(&state, &caller, &uid, Browse::Get(params)).await
}

/// `POST /indexes/{uid}/documents/fetch`.
pub async fn browse_post(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> HttpResult<Response> {
    check_read_uid(&uid)?;
    let request = json_body(&headers, &body)?;
    browse(&state, &caller, &uid, Browse::Fetch(request)).await
}

/// One read of a browse: the index's plan, asked through the scatter engine.
struct Read<'a> {
    state: &'a AppState,
    caller: &'a Caller,
    uid: &'a str,
    assignment: Arc<Assignment>,
    plan: ReadPlan,
}

impl Read<'_> {
    /// Every shard of `wanted` asked with its own request (`request(shard)`), a shard of
    /// `pinned` first of the node given; failover is the engine's. Failures are logged and
    /// counted; a node's 4xx stops the read.
    async fn each_shard(
        &self,
        wanted: &BTreeSet<ShardId>,
        pinned: &BTreeMap<ShardId, NodeId>,
        request: &(dyn Fn(ShardId) -> NodeCall + Sync),
    ) -> Result<Gathered, Refused> {
        let part = ReadPart {
            plan: &self.plan,
            assignment: &self.assignment,
            view: self.state.read_view(self.uid),
        };
        let transport = ClientTransport::new(self.state, self.caller.node_auth());
        let node_request = |_: &NodeId, shard: ShardId| {
            let (method, path, body) = request(shard);
            NodeRequest { method, path, body }
        };
        let gathered = scatter_each_shard(&transport, part, wanted, pinned, &node_request).await?;
        for failure in &gathered.failures {
            let (node, verdict) = (&failure.node, failure.outcome);
            let error = failure.error.as_ref().map(ToString::to_string);
            tracing::warn!(%node, index = self.uid, ?verdict, status = ?failure.status, ?error,
                "a node failed a browse; asking a replica");
            self.state.read_stats().node_failed(node);
        }
        Ok(gathered)
    }

    /// The error one node gives the client's request as it came (asked first of `node`, the
    /// one that refused a shard's request, else of shard 0's owners as a read ranks them),
    /// else `refused` (what a node said to a shard's request), else a generic one.
    async fn exact_error(
        &self,
        request: &Browse,
        node: Option<&NodeId>,
        refused: Option<ForwardedError>,
    ) -> HttpError {
        let first = ShardId::new(0);
        let pinned: BTreeMap<ShardId, NodeId> =
            node.map(|node| (first, node.clone())).into_iter().collect();
        let unchanged = |_: ShardId| request.unchanged(self.uid);
        match self.each_shard(&BTreeSet::from([first]), &pinned, &unchanged).await {
            Err(Refused { response, .. }) => {
                ForwardedError::new(response.status, response.body.to_vec()).into()
            }
            Ok(_) => match refused {
                Some(error) => error.into(),
                None => HttpError::Internal("a node accepted a browse request it refused".into()),
            },
        }
    }
}

/// `body` as a documents fetch of `uid`, for `shard` only: asked of one of the shard's replicas
/// as a browse picks them (of `pinned` first when given), failing over as a browse does. The
/// node that answered and its answer; `None` when no replica answered; the node's error when one
/// refused. The caller puts the shard's filter in `body`.
pub(crate) async fn fetch_from_shard(
    state: &AppState,
    caller: &Caller,
    uid: &str,
    shard_count: u32,
    shard: ShardId,
    pinned: Option<&NodeId>,
    body: &Value,
) -> HttpResult<Option<(NodeId, Value)>> {
    let assignment = state.assignment(shard_count);
    let rotation = NEXT_GROUP.fetch_add(1, Ordering::Relaxed);
    let plan = ReadPlan::new(&state.topology(), &assignment, &state.read_view(uid), rotation, None);
    let read = Read { state, caller, uid, assignment, plan };
    let pinned: BTreeMap<ShardId, NodeId> =
        pinned.map(|node| (shard, node.clone())).into_iter().collect();
    let request = |_: ShardId| fetch_request(uid, body);
    let gathered =
        read.each_shard(&BTreeSet::from([shard]), &pinned, &request).await.map_err(|refused| {
            HttpError::from(ForwardedError::new(
                refused.response.status,
                refused.response.body.to_vec(),
            ))
        })?;
    Ok(gathered.answers.into_iter().next().map(|(node, _, response)| (node, response.json())))
}

async fn browse(
    state: &AppState,
    caller: &Caller,
    uid: &str,
    request: Browse,
) -> HttpResult<Response> {
    let meta = index_for_read(state, uid).await?;
    if request.names_shard_field() {
        let (method, path, body) = request.disguised().unchanged(uid);
        let body = body.map(|b| b.to_bytes());
        reserved_names::refuse_like_one_node(state, caller, uid, (method, &path, body)).await?;
    }
    let assignment = state.assignment(meta.shard_count);
    let rotation = NEXT_GROUP.fetch_add(1, Ordering::Relaxed);
    let plan = ReadPlan::new(&state.topology(), &assignment, &state.read_view(uid), rotation, None);
    let read = Read { state, caller, uid, assignment, plan };
    let shards: BTreeSet<ShardId> = (0..meta.shard_count).map(ShardId::new).collect();
    let Some((offset, limit)) = request.window() else {
        return Err(read.exact_error(&request, None, None).await);
    };

    if let Some(sort) = request.sort().as_deref().and_then(parse_sort) {
        return browse_sorted(&read, &request, &shards, (offset, limit), &sort).await;
    }

    // Round 1: how many matching documents each shard holds.
    let count = |shard: ShardId| request.for_shard(uid, shard, 0, 0);
    let counts = match read.each_shard(&shards, &BTreeMap::new(), &count).await {
        Ok(counts) => counts,
        Err(Refused { node, response, .. }) => {
            let refused = ForwardedError::new(response.status, response.body.to_vec());
            return Err(read.exact_error(&request, Some(&node), Some(refused)).await);
        }
    };
    let mut missing = counts.missing;
    let mut totals: BTreeMap<ShardId, u64> = shards.iter().map(|s| (*s, 0)).collect();
    let mut counted: BTreeMap<ShardId, NodeId> = BTreeMap::new();
    for (node, answered, response) in counts.answers {
        for shard in answered {
            totals.insert(shard, response.json()["total"].as_u64().unwrap_or(0));
            counted.insert(shard, node.clone());
        }
    }

    // Round 2: the slices of the shards the page reaches, on the node that counted each.
    let order: Vec<ShardId> = totals.keys().copied().collect();
    let per_shard: Vec<u64> = totals.values().copied().collect();
    let slices: BTreeMap<ShardId, ShardSlice> = browse_plan(&per_shard, offset, limit)
        .into_iter()
        .map(|slice| (order[slice.position], slice))
        .collect();
    let wanted: BTreeSet<ShardId> = slices.keys().copied().collect();
    let fetch = |shard: ShardId| {
        let slice = &slices[&shard];
        request.for_shard(uid, shard, slice.offset, slice.limit)
    };
    let pages = read.each_shard(&wanted, &counted, &fetch).await.map_err(|refused| {
        HttpError::from(ForwardedError::new(
            refused.response.status,
            refused.response.body.to_vec(),
        ))
    })?;
    missing.extend(pages.missing);
    let mut by_shard: BTreeMap<ShardId, Vec<Value>> = BTreeMap::new();
    for (_, answered, response) in pages.answers {
        if let (Some(shard), Value::Array(items)) =
            (answered.first(), response.json()["results"].take())
        {
            by_shard.insert(*shard, items);
        }
    }
    // Shard-major: the slices in shard order.
    let results: Vec<Value> = by_shard.into_values().flatten().collect();
    let total: u64 = totals.values().sum();
    page_response(state, uid, results, (offset, limit, total), &missing)
}

/// The merged page, or `miroir_shard_unavailable` when shards are missing and the policy says
/// so; a partial page carries `X-Miroir-Degraded`.
fn page_response(
    state: &AppState,
    uid: &str,
    mut results: Vec<Value>,
    (offset, limit, total): (usize, usize, u64),
    missing: &BTreeSet<ShardId>,
) -> HttpResult<Response> {
    let coverage = crate::search::coverage(state, missing);
    if let Coverage::Unavailable(count) = coverage {
        return Err(HttpError::api(
            ErrorCode::MiroirShardUnavailable,
            format!("{count} shard(s) of index `{uid}` have no replica answering."),
        ));
    }
    results.iter_mut().for_each(strip_document);
    let mut response = Json(json!({
        "results": results, "offset": offset, "limit": limit, "total": total,
    }))
    .into_response();
    crate::search::mark_degraded(&mut response, &coverage);
    Ok(response)
}

/// A browse with `sort`: every shard is asked for its first `offset + limit` documents in the
/// client's order (with the sort fields, stripped after if the client's `fields` left them out),
/// the pages are merged by the sort values and the client's window is cut from the merge.
async fn browse_sorted(
    read: &Read<'_>,
    request: &Browse,
    shards: &BTreeSet<ShardId>,
    (offset, limit): (usize, usize),
    sort: &[SortField],
) -> HttpResult<Response> {
    let (fields, added) = match request.fields() {
        Some(client) => {
            let (all, added) = fields_with_sort(&client, sort);
            (Some(all), added)
        }
        None => (None, Vec::new()),
    };
    let depth = offset.saturating_add(limit);
    let uid = read.uid;
    let ask = |shard: ShardId| request.for_shard_with(uid, shard, (0, depth), fields.as_deref());
    let answers = match read.each_shard(shards, &BTreeMap::new(), &ask).await {
        Ok(answers) => answers,
        Err(Refused { node, response, .. }) => {
            let refused = ForwardedError::new(response.status, response.body.to_vec());
            return Err(read.exact_error(request, Some(&node), Some(refused)).await);
        }
    };
    let mut total = 0;
    let mut by_shard: BTreeMap<ShardId, Vec<Value>> = BTreeMap::new();
    for (_, answered, response) in answers.answers {
        let mut body = response.json();
        total += body["total"].as_u64().unwrap_or(0);
        let items = match body["results"].take() {
            Value::Array(items) => items,
            _ => Vec::new(),
        };
        if let Some(shard) = answered.first() {
            by_shard.insert(*shard, items);
        }
    }
    let pages: Vec<Vec<Value>> = by_shard.into_values().collect();
    let mut results: Vec<Value> =
        merge_sorted(pages, sort).into_iter().skip(offset).take(limit).collect();
    if !added.is_empty() {
        for document in &mut results {
            if let Value::Object(map) = document {
                added.iter().for_each(|name| {
                    map.remove(name);
                });
            }
        }
    }
    page_response(read.state, uid, results, (offset, limit, total), &answers.missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(query: &str) -> Browse {
        Browse::Get(
            form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    #[test]
    fn shard_requests_keep_the_client_filter_and_add_the_shard() {
        let (_, path, _) =
            get("fields=id&filter=a%20%3D%201&limit=3").for_shard("i", ShardId::new(4), 2, 5);
        assert_eq!(
            path,
            "/indexes/i/documents?fields=id&filter=%28a+%3D+1%29+AND+_miroir_shard.s4+EXISTS\
             &offset=2&limit=5"
        );
        let (_, path, _) = get("").for_shard("i", ShardId::new(0), 0, 0);
        assert_eq!(path, "/indexes/i/documents?filter=_miroir_shard.s0+EXISTS&offset=0&limit=0");
    }

    #[test]
    fn fetch_filters_become_arrays_with_the_shard() {
        let body = |b: Value, shard| {
            let (_, _, body) = Browse::Fetch(b).for_shard("i", ShardId::new(shard), 1, 2);
            serde_json::from_slice::<Value>(&body.expect("a body").to_bytes()).expect("json")
        };
        assert_eq!(
            body(json!({"filter": "a = 1", "fields": ["id"]}), 3),
            json!({"filter": ["a = 1", "_miroir_shard.s3 EXISTS"], "fields": ["id"],
                   "offset": 1, "limit": 2})
        );
        assert_eq!(
            body(json!({"filter": [["a = 1", "a = 2"]]}), 0)["filter"],
            json!([["a = 1", "a = 2"], "_miroir_shard.s0 EXISTS"])
        );
        assert_eq!(body(json!({}), 1)["filter"], json!(["_miroir_shard.s1 EXISTS"]));
    }

    #[test]
    fn malformed_windows_are_left_to_the_node() {
        assert_eq!(get("offset=3").window(), Some((3, 20)));
        assert_eq!(get("limit=x").window(), None);
        assert_eq!(Browse::Fetch(json!({"limit": -1})).window(), None);
        assert_eq!(Browse::Fetch(json!([])).window(), None);
        assert_eq!(Browse::Fetch(json!({"offset": 5, "limit": 0})).window(), Some((5, 0)));
    }
}
