//! The search read path: one replica group (round-robin), a covering set in it, the search
//! sent to each node of the set restricted to the shards that node answers for, and the
//! answers merged as one node holding every document would answer (`miroir_cluster::merge`).

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use miroir_cluster::merge::{
    merge_facet_search, merge_search, merge_search_raw, node_request, whole_answer,
    whole_answer_bytes, MergeSettings,
};
use miroir_cluster::{
    Assignment, Coverage, NodeAuth, NodeBody, NodeError, NodeRequest, NodeResponse, NodeTransport,
    ReadOutcome, ReadPlan, DEGRADED_HEADER,
};
use miroir_config::UnavailableShardPolicy;
use miroir_types::{ApiError, ErrorCode, ForwardedError, NodeId, ShardId};
use serde_json::Value;

use crate::auth::Caller;
use crate::body::RawBody;
use crate::bookkeeping::{shard_filter, SHARD_FIELD};
use crate::error::{HttpError, HttpResult};
use crate::read_catalog::index_for_read;
use crate::session::{pin_read, session_id};
use crate::AppState;

/// Round-robin over replica groups, per instance.
static NEXT_GROUP: AtomicUsize = AtomicUsize::new(0);

/// The merge settings of each index, by settings version (read from a node once per version).
static MERGE_SETTINGS: LazyLock<Mutex<HashMap<String, (u64, MergeSettings)>>> =
    LazyLock::new(Default::default);

/// `POST /indexes/{uid}/search`
pub async fn search_post(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> HttpResult<Response> {
    let request = json_request(&body)?;
    scatter_gather(&state, &caller, &uid, &headers, request, Some(body)).await
}

/// A JSON request body, or Meilisearch's `malformed_payload` error.
pub(crate) fn json_request(body: &[u8]) -> HttpResult<Value> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorCode::MalformedPayload,
            format!("The json payload provided is malformed. `{e}`."),
        )
        .into()
    })
}

/// `GET /indexes/{uid}/search`: the query string as the equivalent POST body.
pub async fn search_get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> HttpResult<Response> {
    let request = get_params_as_body(query.as_deref());
    scatter_gather(&state, &caller, &uid, &headers, request, None).await
}

/// Meilisearch's GET search parameters as a POST body: lists are comma-separated, numbers and
/// booleans are text. Values that do not parse are passed as text, so the node reports them.
pub(crate) fn get_params_as_body(query: Option<&str>) -> Value {
    const LISTS: &[&str] = &[
        "attributesToRetrieve",
        "attributesToCrop",
        "attributesToHighlight",
        "attributesToSearchOn",
        "facets",
        "sort",
        "locales",
    ];
    const NUMBERS: &[&str] =
        &["offset", "limit", "page", "hitsPerPage", "cropLength", "rankingScoreThreshold"];
    const BOOLS: &[&str] = &[
        "showMatchesPosition",
        "showRankingScore",
        "showRankingScoreDetails",
        "showPerformanceDetails",
        "retrieveVectors",
    ];
    let mut body = serde_json::Map::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let parsed = if LISTS.contains(&key.as_ref()) {
            Value::from(split_list(&value))
        } else if NUMBERS.contains(&key.as_ref()) {
            serde_json::from_str::<serde_json::Number>(&value)
                .map(Value::Number)
                .unwrap_or_else(|_| Value::from(value.as_ref()))
        } else if BOOLS.contains(&key.as_ref()) {
            value.parse::<bool>().map(Value::Bool).unwrap_or_else(|_| Value::from(value.as_ref()))
        } else if key == "vector" {
            // A JSON array, or numbers separated by commas (`vector=0.1,0.2`).
            serde_json::from_str(&value)
                .or_else(|_| {
                    value
                        .split(',')
                        .map(|n| serde_json::from_str::<serde_json::Number>(n.trim()))
                        .collect::<Result<Vec<_>, _>>()
                        .map(|numbers| {
                            Value::from(numbers.into_iter().map(Value::Number).collect::<Vec<_>>())
                        })
                })
                .unwrap_or_else(|_| Value::from(value.as_ref()))
        } else {
            Value::from(value.as_ref())
        };
        body.insert(key.into_owned(), parsed);
    }
    Value::Object(body)
}

/// Split a comma-separated list, keeping commas inside parentheses (`_geoPoint(1, 2):asc`).
fn split_list(value: &str) -> Vec<String> {
    let (mut out, mut current, mut depth) = (Vec::new(), String::new(), 0usize);
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut current).trim().to_owned());
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    out.push(current.trim().to_owned());
    out.retain(|s| !s.is_empty());
    out
}

/// A search; `body`, when the client sent one, is its JSON as sent (a node holding the whole
/// index is sent these bytes).
pub(crate) async fn scatter_gather(
    state: &AppState,
    caller: &Caller,
    uid: &str,
    headers: &HeaderMap,
    request: Value,
    body: Option<Bytes>,
) -> HttpResult<Response> {
    if let Some(policy) = crate::ilm::policy(state, uid) {
        return crate::ilm::search(state, caller, &policy.pattern, headers, "search", &request)
            .await;
    }
    crate::reserved_names::check_json_read(state, caller, uid, "search", &request).await?;
    crate::search_hooks::check_vector_feature(state, &request)?;
    if state.hooks().hooks().searches() {
        let hooked =
            crate::search_hooks::hooked_search(state, caller, uid, headers, &request, None).await?;
        if let Some(answer) = hooked {
            return Ok(answer.respond());
        }
    }
    let own = OwnRequest { json: &request, bytes: body.as_ref() };
    let scatter = scatter_search(state, caller, uid, headers, own).await?;
    Ok(scatter.search_response(&request))
}

/// The client's own search request: its JSON, and the bytes it was sent as (when it was a
/// body), which a node holding the whole index is sent unchanged.
#[derive(Clone, Copy)]
pub(crate) struct OwnRequest<'a> {
    pub(crate) json: &'a Value,
    pub(crate) bytes: Option<&'a Bytes>,
}

/// A search's scatter, where one node holding the whole index may answer the client's own
/// request (see [`scatter_with`]).
async fn scatter_search(
    state: &AppState,
    caller: &Caller,
    uid: &str,
    headers: &HeaderMap,
    own: OwnRequest<'_>,
) -> HttpResult<Scatter> {
    let requests = search_requests(own.json, "search");
    scatter_with(state, caller, uid, headers, "search", &requests, Some(own)).await
}

/// A merged search run on behalf of plugin `plugin` (its `search` import), with the node key:
/// the search hooks of the other plugins apply, the calling plugin's own never do.
pub async fn search_value(
    state: &AppState,
    plugin: &str,
    uid: &str,
    request: Value,
) -> HttpResult<Value> {
    let (caller, headers) = (&Caller::Master, &HeaderMap::new());
    crate::search_hooks::check_vector_feature(state, &request)?;
    if state.hooks().hooks().searches() {
        let hooked =
            crate::search_hooks::hooked_search(state, caller, uid, headers, &request, Some(plugin))
                .await?;
        if let Some(answer) = hooked {
            return Ok(answer.body);
        }
    }
    let own = OwnRequest { json: &request, bytes: None };
    let scatter = scatter_search(state, caller, uid, headers, own).await?;
    Ok(scatter.merged_search(&request))
}

/// Each shard's raw answer to a search (plugins' `scatter` import), failed shards included:
/// see [`crate::search_hooks::shard_answers`].
pub async fn scatter_answers(
    state: &AppState,
    uid: &str,
    request: Value,
) -> HttpResult<Vec<miroir_types::ShardAnswer>> {
    let (answers, _) = crate::search_hooks::shard_answers(
        state,
        &Caller::Master,
        uid,
        &HeaderMap::new(),
        &request,
    )
    .await?;
    Ok(answers)
}

/// `POST /indexes/{uid}/facet-search`: counts summed over one covering set.
pub async fn facet_search(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> HttpResult<Response> {
    let request = json_request(&body)?;
    if let Some(policy) = crate::ilm::policy(&state, &uid) {
        let pattern = &policy.pattern;
        return crate::ilm::search(&state, &caller, pattern, &headers, "facet-search", &request)
            .await;
    }
    crate::reserved_names::check_json_read(&state, &caller, &uid, "facet-search", &request).await?;
    let scatter = scatter(&state, &caller, &uid, &headers, "facet-search", &request).await?;
    let merged = merge_facet_search(&request, scatter.answers(), &scatter.settings);
    Ok(scatter.respond(merged))
}

/// What one scatter gathered.
pub(crate) struct Scatter {
    /// The nodes' answers, as they sent them.
    bodies: Vec<Bytes>,
    /// The same, parsed when first asked for (see [`Scatter::answers`]).
    answers: std::sync::OnceLock<Vec<Value>>,
    /// The shards each answer covers, in the same order.
    pub(crate) shards: Vec<Vec<ShardId>>,
    pub(crate) missing: BTreeSet<ShardId>,
    pub(crate) settings: MergeSettings,
    /// A node's answer to the client's own request, from a node holding the whole index
    /// (nothing to merge; `answers` is then empty): its body as the node sent it.
    pub(crate) whole: Option<Bytes>,
}

impl Scatter {
    fn new(
        bodies: Vec<Bytes>,
        shards: Vec<Vec<ShardId>>,
        missing: BTreeSet<ShardId>,
        settings: MergeSettings,
        whole: Option<Bytes>,
    ) -> Self {
        Scatter { bodies, answers: std::sync::OnceLock::new(), shards, missing, settings, whole }
    }

    /// The nodes' answers as JSON (`null` for one that is not).
    pub(crate) fn answers(&self) -> &[Value] {
        self.answers.get_or_init(|| {
            self.bodies.iter().map(|b| serde_json::from_slice(b).unwrap_or(Value::Null)).collect()
        })
    }

    /// The search answer as the client gets it: the whole-index answer (see
    /// [`Scatter::whole_response`]), else the merge written from the nodes' bytes without
    /// building their documents ([`merge_search_raw`]), else the merge of the parsed answers.
    pub(crate) fn search_response(&self, request: &Value) -> Response {
        if let Some(response) = self.whole_response() {
            return response;
        }
        let bodies: Vec<&[u8]> = self.bodies.iter().map(|b| b.as_ref()).collect();
        match merge_search_raw(request, &bodies, &self.settings) {
            Some(merged) => {
                let mut response = Response::new(axum::body::Body::from(merged));
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                self.mark_degraded(&mut response);
                response
            }
            None => self.respond(merge_search(request, self.answers(), &self.settings)),
        }
    }

    /// The merged answer, with `X-Miroir-Degraded` when some shards did not answer.
    /// The search answer one node holding everything gives: the whole-index answer as it is
    /// (bookkeeping taken out), else the merge of every answer.
    pub(crate) fn merged_search(&self, request: &Value) -> Value {
        match &self.whole {
            Some(body) => whole_answer(
                serde_json::from_slice(body).unwrap_or(Value::Null),
                self.settings.max_values_per_facet,
            ),
            None => merge_search(request, self.answers(), &self.settings),
        }
    }

    /// The answer of a node holding the whole index, as the client gets it: the node's bytes
    /// with the bookkeeping fields taken out, never parsed into a document (every search of
    /// an index in one shard takes this path). `None` for a scatter to merge.
    pub(crate) fn whole_response(&self) -> Option<Response> {
        let body = self.whole.as_ref()?;
        let answer = match whole_answer_bytes(body, self.settings.max_values_per_facet)? {
            Cow::Borrowed(_) => body.clone(),
            Cow::Owned(stripped) => Bytes::from(stripped),
        };
        let mut response = Response::new(axum::body::Body::from(answer));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.mark_degraded(&mut response);
        Some(response)
    }

    pub(crate) fn respond(&self, merged: Value) -> Response {
        let mut response = Json(merged).into_response();
        self.mark_degraded(&mut response);
        response
    }

    /// `X-Miroir-Degraded` on `response` when some shards did not answer.
    fn mark_degraded(&self, response: &mut Response) {
        mark_degraded(response, &Coverage::of(&self.missing, false));
    }
}

/// The coverage of a read that lacks `missing`, as `scatter.unavailable_shard_policy` says.
pub(crate) fn coverage(state: &AppState, missing: &BTreeSet<ShardId>) -> Coverage {
    let policy = state.config().scatter.unavailable_shard_policy;
    Coverage::of(missing, policy == UnavailableShardPolicy::Error)
}

/// `X-Miroir-Degraded` on `response` for a partial answer.
pub(crate) fn mark_degraded(response: &mut Response, coverage: &Coverage) {
    if let Some(value) = coverage.degraded().and_then(|v| HeaderValue::from_str(v).ok()) {
        response.headers_mut().insert(DEGRADED_HEADER, value);
    }
}

/// Send `request` (as the node request of `route`) to one covering set; see [`scatter_with`].
pub(crate) async fn scatter(
    state: &AppState,
    caller: &Caller,
    uid: &str,
    headers: &HeaderMap,
    route: &str,
    request: &Value,
) -> HttpResult<Scatter> {
    let requests = search_requests(request, route);
    scatter_with(state, caller, uid, headers, route, &requests, None).await
}

/// The node requests of `route` for the client's `request`: a search asks for what the merge
/// needs ([`node_request`]), other routes send the request as it is.
pub(crate) fn search_requests<'a>(
    request: &'a Value,
    route: &'a str,
) -> impl Fn(&MergeSettings, &[ShardId]) -> (String, Value) + Send + Sync + 'a {
    move |settings: &MergeSettings, _: &[ShardId]| {
        let base = if route == "search" {
            let mut keep = vec![settings.primary_key.as_str()];
            keep.extend(request.get("distinct").and_then(Value::as_str));
            keep.extend(settings.distinct_attribute.as_deref());
            node_request(request, &keep)
        } else {
            request.clone()
        };
        (route.to_owned(), base)
    }
}

/// The request a node of a scatter is sent, given the merge settings and the shards the node
/// answers for: the route under `/indexes/{uid}/` and the JSON body, before the restriction to
/// those shards is added.
pub(crate) type NodeRequests<'a> =
    dyn Fn(&MergeSettings, &[ShardId]) -> (String, Value) + Send + Sync + 'a;

/// Send each node of one covering set of the next group that can cover every shard its
/// request (`requests`; `route` names it in logs); a node that fails or times out has its
/// shards asked of another replica in the same group, then in the other groups.
///
/// With `whole` (the client's own request), when the plan asks a single node that holds every
/// shard of the index, that node is sent `whole` as it is: its answer is already the answer
/// (no merge, no ranking details to compute or parse), and the scatter says so.
pub(crate) async fn scatter_with(
    state: &AppState,
    caller: &Caller,
    uid: &str,
    headers: &HeaderMap,
    route: &str,
    requests: &NodeRequests<'_>,
    whole: Option<OwnRequest<'_>>,
) -> HttpResult<Scatter> {
    scatter_shaped(state, caller, uid, headers, route, requests, whole, None).await
}

/// [`scatter_with`]; with `per_shard`, each node is sent one Meilisearch multi-search holding
/// one query per shard it answers for (each restricted to that shard), and the scatter's
/// answers are per shard (see [`crate::search_hooks::PerShard`]).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn scatter_shaped(
    state: &AppState,
    caller: &Caller,
    uid: &str,
    headers: &HeaderMap,
    route: &str,
    requests: &NodeRequests<'_>,
    whole: Option<OwnRequest<'_>>,
    per_shard: Option<&crate::search_hooks::PerShard>,
) -> HttpResult<Scatter> {
    let meta = index_for_read(state, uid).await?;
    let assignment = state.assignment(meta.shard_count);
    let rotation = NEXT_GROUP.fetch_add(1, Ordering::Relaxed);
    let pinned = match session_id(state, headers) {
        Some(session) => pin_read(state, &session).await?,
        None => None,
    };
    let view = state.read_view(uid);
    let plan = ReadPlan::new(&state.topology(), &assignment, &view, rotation, pinned.as_ref());
    let primary_key = meta.primary_key.clone().unwrap_or_else(|| "id".to_owned());
    let settings = merge_settings(state, uid, meta.settings_version, &primary_key).await?;
    // One node holding, and answering for, every shard is sent the client's own request.
    let all = assignment.shards() as usize;
    let whole_node = whole
        .filter(|_| holds_whole_index(&plan, &assignment))
        .and_then(|_| plan.covering.nodes.keys().next().cloned());
    let request = |node: &NodeId, shards: &[ShardId]| {
        if let Some(per_shard) = per_shard {
            let (_, base) = requests(&settings, shards);
            return per_shard.node_request(uid, node, &base, shards);
        }
        let (route, bytes) = match whole {
            Some(own) if whole_node.as_ref() == Some(node) && shards.len() == all => {
                let bytes = match own.bytes {
                    Some(bytes) => bytes.clone(),
                    None => serde_json::to_vec(own.json).expect("a JSON value serializes").into(),
                };
                (route.to_owned(), bytes)
            }
            _ => {
                let (route, base) = requests(&settings, shards);
                let body = restricted(&base, shards);
                (route, serde_json::to_vec(&body).expect("a JSON value serializes").into())
            }
        };
        NodeRequest {
            method: Method::POST,
            path: format!("/indexes/{uid}/{route}"),
            body: Some(NodeBody::json(bytes)),
        }
    };
    let transport = ClientTransport { state, auth: caller.node_auth(), per_shard };
    let mut gathered = miroir_cluster::scatter(&transport, &plan, &assignment, &view, &request)
        .await
        .map_err(|refused| {
            // The same error one node would give (bad filter, unknown field...).
            let response = refused.response;
            let body = match per_shard {
                // The multi-search's error names the query: one node's search error does not.
                Some(_) => crate::search_hooks::unwrap_query_error(&response.body),
                None => response.body.to_vec(),
            };
            HttpError::from(ForwardedError::new(response.status, body))
        })?;
    let stats = state.read_stats();
    stats.sent(gathered.sent.0, false);
    stats.sent(gathered.sent.1, true);
    for failure in &gathered.failures {
        let node = &failure.node;
        let (status, error) = (failure.status, failure.error.as_ref().map(ToString::to_string));
        if failure.outcome == ReadOutcome::Stale {
            tracing::warn!(%node, index = uid, ?status,
                "a node does not hold Miroir's copy of the index (stale replica); asking another");
        } else {
            tracing::warn!(%node, ?status, ?error, "a node failed a {route}; asking a replica");
        }
        stats.node_failed(node);
    }
    let missing = gathered.missing;
    match coverage(state, &missing) {
        Coverage::Complete => {}
        Coverage::Partial(_) => stats.partial(),
        Coverage::Unavailable(count) => {
            stats.unavailable();
            return Err(HttpError::api(
                ErrorCode::MiroirShardUnavailable,
                format!("{count} shard(s) of index `{uid}` have no replica answering."),
            ));
        }
    }
    let whole_answered = matches!(gathered.answers.as_slice(),
        [(node, shards, _)] if whole_node.as_ref() == Some(node) && shards.len() == all);
    if whole_answered {
        let (_, shards, response) = gathered.answers.pop().expect("the one answer");
        let whole = Some(response.body);
        return Ok(Scatter::new(Vec::new(), vec![shards], missing, settings, whole));
    }
    let (shards, bodies) =
        gathered.answers.into_iter().map(|(_, shards, response)| (shards, response.body)).unzip();
    Ok(Scatter::new(bodies, shards, missing, settings, None))
}

/// The scatter engine's way to the nodes: their pooled clients, with the caller's credentials.
pub(crate) struct ClientTransport<'a> {
    state: &'a AppState,
    auth: NodeAuth<'a>,
    /// Times and outcomes are recorded here for per-shard scatters.
    per_shard: Option<&'a crate::search_hooks::PerShard>,
}

impl<'a> ClientTransport<'a> {
    /// The nodes' clients, sending with `auth`.
    pub(crate) fn new(state: &'a AppState, auth: NodeAuth<'a>) -> Self {
        ClientTransport { state, auth, per_shard: None }
    }
}

impl NodeTransport for ClientTransport<'_> {
    fn send(
        &self,
        node: &NodeId,
        request: NodeRequest,
    ) -> impl std::future::Future<Output = Result<NodeResponse, NodeError>> + Send {
        let client = self.state.client(node);
        let auth = self.auth;
        let per_shard = self.per_shard;
        let node = node.clone();
        async move {
            let started = std::time::Instant::now();
            let outcome = match client {
                Ok(client) => client.send(request.method, &request.path, request.body, auth).await,
                Err(error) => Err(error),
            };
            if let Some(per_shard) = per_shard {
                per_shard.record(&node, started.elapsed(), &outcome);
            }
            outcome
        }
    }
}

/// Whether the plan's first round is one node that owns, and answers for, every shard.
fn holds_whole_index(plan: &ReadPlan, assignment: &Assignment) -> bool {
    let shards = assignment.shards() as usize;
    plan.covering.missing.is_empty()
        && plan.covering.nodes.len() == 1
        && plan.covering.nodes.iter().all(|(node, answering)| {
            answering.len() == shards && assignment.shards_of(node).len() == shards
        })
}

/// The node request, restricted to the shards the node answers for in this search: a node also
/// holding replicas another node answers for counts no document twice, and a node whose copy of
/// the index was recreated without Miroir's bookkeeping (emptied, then written to) refuses the
/// filter, so it is found stale instead of answering for documents it lost.
pub(crate) fn restricted(base: &Value, answering: &[ShardId]) -> Value {
    let only: Vec<Value> = answering.iter().map(|s| Value::from(shard_filter(*s))).collect();
    let mut body = base.clone();
    let combined = match body.get("filter").cloned() {
        None | Some(Value::Null) => Value::Array(vec![Value::Array(only)]),
        Some(Value::Array(mut items)) => {
            items.push(Value::Array(only));
            Value::Array(items)
        }
        Some(other) => Value::Array(vec![other, Value::Array(only)]),
    };
    body["filter"] = combined;
    body
}

/// The index settings the merge needs, read from one node and cached per settings version.
pub(crate) async fn merge_settings(
    state: &AppState,
    uid: &str,
    version: u64,
    primary_key: &str,
) -> HttpResult<MergeSettings> {
    if let Some((v, cached)) = MERGE_SETTINGS.lock().expect("cache lock").get(uid) {
        if *v == version && cached.primary_key == primary_key {
            return Ok(cached.clone());
        }
    }
    let nodes: Vec<NodeId> = state.topology().nodes().cloned().collect();
    let path = format!("/indexes/{uid}/settings");
    // A node whose copy of the index lacks the bookkeeping setting was created without Miroir
    // (emptied, then written to): its settings are not the index's.
    let without_bookkeeping = |response: &NodeResponse| {
        let filterable = response.json()["filterableAttributes"].clone();
        let names_shard = |a: &Value| {
            a == SHARD_FIELD
                || a["attributePatterns"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|x| x == SHARD_FIELD))
        };
        !filterable.as_array().is_some_and(|list| list.iter().any(names_shard))
    };
    let request = (Method::GET, path.as_str(), None);
    let response = crate::fanout::first_answer_for(
        state,
        uid,
        NodeAuth::NodeKey,
        nodes,
        request,
        without_bookkeeping,
    )
    .await?;
    if !response.is_success() {
        return Err(ForwardedError::new(response.status, response.body.to_vec()).into());
    }
    let s = response.json();
    // The nodes hold more facet values than the client sees (`settings::faceting`).
    let client_max_values = match index_for_read(state, uid).await {
        Ok(meta) => crate::settings::faceting::client_value(&meta),
        Err(_) => None,
    };
    let settings = MergeSettings {
        max_total_hits: s["pagination"]["maxTotalHits"].as_u64().unwrap_or(1000) as usize,
        max_values_per_facet: client_max_values
            .or_else(|| s["faceting"]["maxValuesPerFacet"].as_u64())
            .unwrap_or(100) as usize,
        sort_facet_values_by: s["faceting"]["sortFacetValuesBy"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("alpha").to_owned()))
                    .collect()
            })
            .unwrap_or_else(|| vec![("*".to_owned(), "alpha".to_owned())]),
        primary_key: primary_key.to_owned(),
        distinct_attribute: s["distinctAttribute"].as_str().map(str::to_owned),
    };
    MERGE_SETTINGS.lock().expect("cache lock").insert(uid.to_owned(), (version, settings.clone()));
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn get_parameters_become_a_body() {
        let body = get_params_as_body(Some(
            "q=router&limit=8&showRankingScore=true&sort=_geoPoint(1.5,%202):asc,price:desc&facets=a,b",
        ));
        assert_eq!(
            body,
            json!({"q": "router", "limit": 8, "showRankingScore": true,
                   "sort": ["_geoPoint(1.5, 2):asc", "price:desc"], "facets": ["a", "b"]})
        );
    }

    #[test]
    fn performance_details_and_vectors_parse_as_one_node_parses_them() {
        let body = get_params_as_body(Some("showPerformanceDetails=true&vector=0.5,%201,-2.25"));
        assert_eq!(body, json!({"showPerformanceDetails": true, "vector": [0.5, 1, -2.25]}));
        let body = get_params_as_body(Some("vector=%5B1,2%5D"));
        assert_eq!(body, json!({"vector": [1, 2]}));
        let body = get_params_as_body(Some("vector=a,b"));
        assert_eq!(body, json!({"vector": "a,b"}), "left as text for the node to refuse");
    }

    #[test]
    fn nodes_are_restricted_to_the_shards_they_answer_for() {
        let base = json!({"q": "x", "filter": "brand = Acme"});
        let all = [ShardId::new(0), ShardId::new(1)];
        assert_eq!(
            restricted(&base, &all)["filter"],
            json!(["brand = Acme", ["_miroir_shard.s0 EXISTS", "_miroir_shard.s1 EXISTS"]]),
            "a node answering for all it holds too"
        );
        let some = restricted(&base, &[ShardId::new(1)]);
        assert_eq!(some["filter"], json!(["brand = Acme", ["_miroir_shard.s1 EXISTS"]]));
        let arr = restricted(&json!({"filter": ["a = 1", ["b = 2", "b = 3"]]}), &[ShardId::new(2)]);
        assert_eq!(
            arr["filter"],
            json!(["a = 1", ["b = 2", "b = 3"], ["_miroir_shard.s2 EXISTS"]])
        );
        let none = restricted(&json!({"q": ""}), &[ShardId::new(0), ShardId::new(2)]);
        assert_eq!(none["filter"], json!([["_miroir_shard.s0 EXISTS", "_miroir_shard.s2 EXISTS"]]));
    }
}
