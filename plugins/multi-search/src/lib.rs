//! Miroir's multi-search plugin: `POST /multi-search` exactly as Meilisearch answers it, each
//! query run through the gateway's own scatter-gather (the `search` import).
//!
//! - Without `federation`: the queries are answered in order, `{"results": [...]}`, each result
//!   the index's search response with its `indexUid`. The first query that fails fails the
//!   request with its own error, its message prefixed with ``Inside `.queries[i]`: `` as
//!   Meilisearch does.
//!   The queries run at once (the `search-batch` import).
//! - With `federation: {limit, offset}`: the plugin validates the request and hands it to the
//!   host's `federated-search`, which asks each node of one replica group a single federated
//!   request restricted to the shards it answers for and merges the nodes' answers: hits ordered
//!   by ranking score times the query's `federationOptions.weight` (default 1), each carrying
//!   `_federation: {indexUid, queriesPosition, weightedRankingScore}`, each document once, and
//!   `estimatedTotalHits` counting a document matched by several queries once.
//!
//! Configuration: the `multi_search` section (`max_queries_per_batch`, `query_timeout`,
//! `total_timeout`). A batch past either answers `miroir_timeout` (504).

mod federation;

use miroir_plugin_sdk::serde_json::{json, Map, Value};
use miroir_plugin_sdk::{
    clock, federated_search, search_batch, Manifest, Method, Plugin, Request, Response,
};

struct MultiSearch {
    max_queries: usize,
    query_timeout_ms: u64,
    total_timeout_ms: u64,
}

/// An error of one query or of the whole request, in Meilisearch's shape.
pub(crate) struct QueryError {
    status: u16,
    code: String,
    message: String,
}

impl QueryError {
    pub(crate) fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        QueryError { status, code: code.to_owned(), message: message.into() }
    }

    /// The same error, located at query `position`. Meilisearch answers a query's error with
    /// 400 whatever its code (recorded: `index_not_found` inside a multi-search is a 400), but
    /// keeps authentication statuses; Miroir's `miroir_timeout` keeps its 504.
    pub(crate) fn at(self, position: usize) -> Self {
        let status = if matches!(self.status, 401 | 403 | 504) { self.status } else { 400 };
        QueryError {
            status,
            message: format!("Inside `.queries[{position}]`: {}", self.message),
            ..self
        }
    }

    fn into_response(self) -> Response {
        Response::error(self.status, &self.code, self.message)
    }
}

/// Parses a humantime duration of the config (`"30s"`, `"500ms"`, `"2m"`) into milliseconds.
fn duration_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let factor = match unit.trim() {
        "ms" => 1,
        "s" | "" => 1000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// The duration `key` of the configuration in milliseconds (a number of milliseconds or a
/// humantime string), `default` when absent.
fn timeout_of(config: &Value, key: &str, default: u64) -> Result<u64, String> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(ms)) => {
            ms.as_u64().ok_or_else(|| format!("{key} {ms} is not a duration"))
        }
        Some(Value::String(text)) => {
            duration_ms(text).ok_or_else(|| format!("{key} `{text}` is not a duration"))
        }
        Some(other) => Err(format!("{key} {other} is not a duration")),
    }
}

/// One query of the batch, validated.
pub(crate) struct Query {
    pub position: usize,
    pub index: String,
    pub body: Map<String, Value>,
}

fn parse_queries(body: &Value, federated: bool, max: usize) -> Result<Vec<Query>, QueryError> {
    let queries = body.get("queries").and_then(Value::as_array).ok_or_else(|| {
        QueryError::new(400, "bad_request", "Missing field `queries`: expected an array of queries")
    })?;
    if queries.len() > max {
        return Err(QueryError::new(
            400,
            "bad_request",
            format!(
                "{} queries were sent; this server accepts at most {max} per request",
                queries.len()
            ),
        ));
    }
    let mut parsed = Vec::with_capacity(queries.len());
    for (position, query) in queries.iter().enumerate() {
        let mut query = query.as_object().cloned().ok_or_else(|| {
            QueryError::new(400, "bad_request", "Invalid value type: expected an object")
                .at(position)
        })?;
        let index = match query.remove("indexUid") {
            Some(Value::String(index)) => index,
            Some(_) => {
                return Err(QueryError::new(
                    400,
                    "invalid_index_uid",
                    "`indexUid` must be a string",
                )
                .at(position))
            }
            None => {
                return Err(QueryError::new(400, "missing_index_uid", "Missing field `indexUid`")
                    .at(position))
            }
        };
        let options = query.remove("federationOptions");
        // The weight is the host's to apply; here it is only validated.
        match (&options, federated) {
            (Some(Value::Null) | None, _) => 1.0,
            (Some(_), false) => {
                return Err(QueryError::new(
                    400,
                    "invalid_multi_search_federation_options",
                    format!(
                        "Using `federationOptions` is not allowed in a non-federated search.\n  - Hint: remove `federationOptions` from query #{position} or add `federation` to the request."
                    ),
                )
                .at(position))
            }
            (Some(options), true) => match options.get("weight") {
                None | Some(Value::Null) => 1.0,
                Some(weight) => match weight.as_f64() {
                    Some(w) if w >= 0.0 => w,
                    _ => {
                        return Err(QueryError::new(
                            400,
                            "invalid_multi_search_weight",
                            format!("Invalid value at `.federationOptions.weight`: the value of `weight` is invalid, expected a positive float (>= 0.0), found {weight}"),
                        )
                        .at(position))
                    }
                },
            },
        };
        if federated {
            if let Some(field) = ["limit", "offset", "page", "hitsPerPage"]
                .into_iter()
                .find(|f| query.contains_key(*f))
            {
                return Err(QueryError::new(
                    400,
                    "invalid_multi_search_query_pagination",
                    format!(
                        "Using pagination options is not allowed in federated queries.\n  - Hint: remove `{field}` from query #{position} or remove `federation` from the request"
                    ),
                )
                .at(position));
            }
        }
        parsed.push(Query { position, index, body: query });
    }
    Ok(parsed)
}

impl MultiSearch {
    /// The time limit of the next host call: `query_timeout`, or what is left of `total_timeout`
    /// when that is less. `None` when the total is already spent.
    fn budget(&self, started_ms: u64) -> Budget {
        let left = self.total_timeout_ms.saturating_sub(clock::now_ms().saturating_sub(started_ms));
        if left <= self.query_timeout_ms {
            Budget { ms: left, total: true }
        } else {
            Budget { ms: self.query_timeout_ms, total: false }
        }
    }

    /// The `miroir_timeout` error for a call bounded by `budget`; `position` is the query that
    /// ran late, when known.
    fn timeout_error(&self, budget: Budget, position: Option<usize>) -> QueryError {
        if budget.total {
            return QueryError::new(
                504,
                "miroir_timeout",
                format!(
                    "The multi-search took longer than `multi_search.total_timeout` ({} ms).",
                    self.total_timeout_ms
                ),
            );
        }
        let message = format!(
            "The query took longer than `multi_search.query_timeout` ({} ms).",
            self.query_timeout_ms
        );
        let error = QueryError::new(504, "miroir_timeout", message);
        match position {
            Some(position) => error.at(position),
            None => error,
        }
    }

    fn run(&self, body: &Value) -> Result<Value, QueryError> {
        let started_ms = clock::now_ms();
        let federation = match body.get("federation") {
            None | Some(Value::Null) => None,
            Some(Value::Object(options)) => Some(federation::Options::parse(options)?),
            Some(_) => {
                return Err(QueryError::new(
                    400,
                    "invalid_multi_search_federation",
                    "`federation` must be an object or null",
                ))
            }
        };
        let queries = parse_queries(body, federation.is_some(), self.max_queries)?;
        let budget = self.budget(started_ms);
        if budget.ms == 0 {
            return Err(self.timeout_error(budget, None));
        }
        let timeout = Some(u32::try_from(budget.ms).unwrap_or(u32::MAX));
        match federation {
            None => {
                // Every query at once: the batch takes as long as its slowest query.
                let requests: Vec<(&str, Value)> = queries
                    .iter()
                    .map(|q| (q.index.as_str(), Value::Object(q.body.clone())))
                    .collect();
                let batch: Vec<(&str, &Value)> = requests.iter().map(|(i, r)| (*i, r)).collect();
                let answers = search_batch(&batch, timeout);
                let mut results = Vec::with_capacity(queries.len());
                for (query, answer) in queries.into_iter().zip(answers) {
                    let answer = answer.map_err(|e| {
                        if e.code == "miroir_timeout" {
                            self.timeout_error(budget, Some(query.position))
                        } else {
                            QueryError::new(e.status, &e.code, e.message).at(query.position)
                        }
                    })?;
                    let mut result = Map::new();
                    result.insert("indexUid".into(), Value::String(query.index));
                    if let Value::Object(fields) = answer {
                        result.extend(fields);
                    }
                    results.push(Value::Object(result));
                }
                Ok(json!({ "results": results }))
            }
            Some(options) => {
                let request = options.host_request(body);
                federated_search(&request, timeout).map_err(|e| {
                    if e.code == "miroir_timeout" {
                        self.timeout_error(budget, None)
                    } else {
                        // The host already located the failing query, as Meilisearch does.
                        QueryError::new(e.status, &e.code, e.message)
                    }
                })
            }
        }
    }
}

/// The time limit of one host call, and which configured limit it comes from.
#[derive(Clone, Copy)]
struct Budget {
    ms: u64,
    total: bool,
}

impl Plugin for MultiSearch {
    fn init(config: Value) -> Result<Self, String> {
        let max_queries =
            config.get("max_queries_per_batch").and_then(Value::as_u64).unwrap_or(100);
        let query_timeout_ms = timeout_of(&config, "query_timeout", 5_000)?;
        let total_timeout_ms = timeout_of(&config, "total_timeout", 30_000)?;
        Ok(MultiSearch { max_queries: max_queries as usize, query_timeout_ms, total_timeout_ms })
    }

    fn manifest(&self) -> Manifest {
        Manifest::new("multi-search", env!("CARGO_PKG_VERSION"))
            .route(Method::Post, "/multi-search")
    }

    fn handle(&mut self, request: Request) -> Response {
        let body: Value = match request.json() {
            Ok(body) => body,
            Err(e) => {
                return Response::error(
                    400,
                    "bad_request",
                    format!("The request body is not JSON: {e}"),
                )
            }
        };
        match self.run(&body) {
            Ok(answer) => Response::json(200, &answer),
            Err(e) => e.into_response(),
        }
    }
}

miroir_plugin_sdk::export!(MultiSearch);
