//! The search request: every parameter Meilisearch 1.50 accepts, parsed from a `POST` JSON body
//! with Meilisearch's error codes and messages (deserr's wording).

use serde_json::{Map, Value};

use crate::error::ApiError;

/// How query words are dropped when not every document contains all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatchingStrategy {
    /// Drop words from the end of the query until documents match (the default).
    #[default]
    Last,
    /// Every query word must match.
    All,
    /// Drop the most frequent words first.
    Frequency,
}

/// One search request, as `POST /indexes/{uid}/search` or `GET` describe it. Absent parameters
/// are `None` (or their Meilisearch default), so that the answer can tell "not given" apart.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub q: Option<String>,
    pub offset: Option<usize>,
    pub limit: Option<usize>,
    pub page: Option<usize>,
    pub hits_per_page: Option<usize>,
    pub attributes_to_retrieve: Option<Vec<String>>,
    /// Attributes to crop, each possibly with its own length (`description:20`).
    pub attributes_to_crop: Option<Vec<String>>,
    pub crop_length: usize,
    pub crop_marker: String,
    pub attributes_to_highlight: Option<Vec<String>>,
    pub highlight_pre_tag: String,
    pub highlight_post_tag: String,
    pub show_matches_position: bool,
    /// A filter string or array, parsed by [`crate::filter`].
    pub filter: Option<Value>,
    pub sort: Option<Vec<String>>,
    pub distinct: Option<String>,
    pub facets: Option<Vec<String>>,
    pub matching_strategy: MatchingStrategy,
    pub attributes_to_search_on: Option<Vec<String>>,
    pub ranking_score_threshold: Option<f64>,
    pub locales: Option<Vec<String>>,
    pub hybrid: Option<Value>,
    pub vector: Option<Vec<f64>>,
    pub retrieve_vectors: bool,
    pub media: Option<Value>,
    pub personalize: Option<Value>,
    pub use_network: Option<bool>,
    pub show_ranking_score: bool,
    pub show_ranking_score_details: bool,
    pub show_performance_details: bool,
}

impl Default for SearchQuery {
    fn default() -> Self {
        Self {
            q: None,
            offset: None,
            limit: None,
            page: None,
            hits_per_page: None,
            attributes_to_retrieve: None,
            attributes_to_crop: None,
            crop_length: DEFAULT_CROP_LENGTH,
            crop_marker: "…".into(),
            attributes_to_highlight: None,
            highlight_pre_tag: "<em>".into(),
            highlight_post_tag: "</em>".into(),
            show_matches_position: false,
            filter: None,
            sort: None,
            distinct: None,
            facets: None,
            matching_strategy: MatchingStrategy::Last,
            attributes_to_search_on: None,
            ranking_score_threshold: None,
            locales: None,
            hybrid: None,
            vector: None,
            retrieve_vectors: false,
            media: None,
            personalize: None,
            use_network: None,
            show_ranking_score: false,
            show_ranking_score_details: false,
            show_performance_details: false,
        }
    }
}

/// Meilisearch's default `cropLength`.
pub const DEFAULT_CROP_LENGTH: usize = 10;

/// The body fields Meilisearch accepts, in the order its error message lists them.
const BODY_FIELDS: [&str; 30] = [
    "q",
    "offset",
    "limit",
    "page",
    "hitsPerPage",
    "attributesToRetrieve",
    "attributesToCrop",
    "cropLength",
    "cropMarker",
    "attributesToHighlight",
    "highlightPreTag",
    "highlightPostTag",
    "showMatchesPosition",
    "filter",
    "sort",
    "distinct",
    "facets",
    "matchingStrategy",
    "attributesToSearchOn",
    "rankingScoreThreshold",
    "locales",
    "hybrid",
    "vector",
    "retrieveVectors",
    "media",
    "personalize",
    "useNetwork",
    "showRankingScore",
    "showRankingScoreDetails",
    "showPerformanceDetails",
];

/// The error code Meilisearch gives a bad value of `field`.
pub(super) fn code_for(field: &str) -> String {
    let mut snake = String::new();
    for c in field.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    match field {
        "useNetwork" | "personalize" => "bad_request".into(),
        _ => format!("invalid_search_{snake}"),
    }
}

/// How deserr describes a JSON value it did not expect.
fn describe(value: &Value) -> String {
    let text = value.to_string();
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => format!("a boolean: `{text}`"),
        Value::Number(n) if n.is_u64() => format!("a positive integer: `{text}`"),
        Value::Number(n) if n.is_i64() => format!("a negative integer: `{text}`"),
        Value::Number(_) => format!("a number: `{text}`"),
        Value::String(_) => format!("a string: `{text}`"),
        Value::Array(_) => format!("an array: `{text}`"),
        Value::Object(_) => format!("an object: `{text}`"),
    }
}

fn type_error(field: &str, path: &str, expected: &str, found: &Value) -> ApiError {
    ApiError::new(
        &code_for(field),
        format!(
            "Invalid value type at `.{path}`: expected {expected}, but found {}",
            describe(found)
        ),
    )
}

fn as_usize(field: &str, v: &Value) -> Result<usize, ApiError> {
    v.as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| type_error(field, field, "a positive integer", v))
}

fn as_bool(field: &str, v: &Value) -> Result<bool, ApiError> {
    v.as_bool().ok_or_else(|| type_error(field, field, "a boolean", v))
}

fn as_string(field: &str, v: &Value) -> Result<String, ApiError> {
    v.as_str().map(String::from).ok_or_else(|| type_error(field, field, "a string", v))
}

fn as_strings(field: &str, v: &Value) -> Result<Vec<String>, ApiError> {
    let items = v.as_array().ok_or_else(|| type_error(field, field, "an array", v))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_str()
                .map(String::from)
                .ok_or_else(|| type_error(field, &format!("{field}[{i}]"), "a string", item))
        })
        .collect()
}

/// `None` for JSON `null`, else the parsed value.
fn opt<T>(
    v: &Value,
    parse: impl FnOnce(&Value) -> Result<T, ApiError>,
) -> Result<Option<T>, ApiError> {
    if v.is_null() {
        Ok(None)
    } else {
        parse(v).map(Some)
    }
}

pub(super) fn parse_strategy(
    field: &str,
    text: &str,
    path_form: bool,
) -> Result<MatchingStrategy, ApiError> {
    match text {
        "last" => Ok(MatchingStrategy::Last),
        "all" => Ok(MatchingStrategy::All),
        "frequency" => Ok(MatchingStrategy::Frequency),
        other => {
            let at = if path_form { format!("at `.{field}`") } else { format!("in `{field}`") };
            Err(ApiError::new(
                &code_for(field),
                format!("Unknown value `{other}` {at}: expected one of `last`, `all`, `frequency`"),
            ))
        }
    }
}

fn threshold_error() -> ApiError {
    ApiError::new(
        "invalid_search_ranking_score_threshold",
        "Invalid value at `.rankingScoreThreshold`: the value of `rankingScoreThreshold` is invalid, expected a float between `0.0` and `1.0`.",
    )
}

pub(super) fn check_threshold(t: f64) -> Result<f64, ApiError> {
    if (0.0..=1.0).contains(&t) {
        Ok(t)
    } else {
        Err(threshold_error())
    }
}

/// Parse a `POST /indexes/{uid}/search` JSON body. An unknown field is `bad_request`; a value of
/// the wrong type is `invalid_search_<param>`, with deserr's message.
pub fn parse_search_body(body: &Value) -> Result<SearchQuery, ApiError> {
    let obj: &Map<String, Value> = body.as_object().ok_or_else(|| {
        ApiError::new(
            "bad_request",
            format!("Invalid value type: expected an object, but found {}", describe(body)),
        )
    })?;
    let mut query = SearchQuery::default();
    for (key, v) in obj {
        let k = key.as_str();
        match k {
            "q" => query.q = opt(v, |v| as_string(k, v))?,
            "offset" => query.offset = Some(as_usize(k, v)?),
            "limit" => query.limit = Some(as_usize(k, v)?),
            "page" => query.page = opt(v, |v| as_usize(k, v))?,
            "hitsPerPage" => query.hits_per_page = opt(v, |v| as_usize(k, v))?,
            "attributesToRetrieve" => query.attributes_to_retrieve = opt(v, |v| as_strings(k, v))?,
            "attributesToCrop" => query.attributes_to_crop = opt(v, |v| as_strings(k, v))?,
            "cropLength" => query.crop_length = as_usize(k, v)?,
            "cropMarker" => query.crop_marker = as_string(k, v)?,
            "attributesToHighlight" => {
                query.attributes_to_highlight = opt(v, |v| as_strings(k, v))?
            }
            "highlightPreTag" => query.highlight_pre_tag = as_string(k, v)?,
            "highlightPostTag" => query.highlight_post_tag = as_string(k, v)?,
            "showMatchesPosition" => query.show_matches_position = as_bool(k, v)?,
            "filter" => {
                query.filter = match v {
                    Value::Null => None,
                    Value::String(_) | Value::Array(_) => Some(v.clone()),
                    other => return Err(type_error(k, k, "a string or an array", other)),
                }
            }
            "sort" => query.sort = opt(v, |v| as_strings(k, v))?,
            "distinct" => query.distinct = opt(v, |v| as_string(k, v))?,
            "facets" => query.facets = opt(v, |v| as_strings(k, v))?,
            "matchingStrategy" => {
                let text = as_string(k, v)?;
                query.matching_strategy = parse_strategy(k, &text, true)?;
            }
            "attributesToSearchOn" => query.attributes_to_search_on = opt(v, |v| as_strings(k, v))?,
            "rankingScoreThreshold" => {
                query.ranking_score_threshold = opt(v, |v| {
                    let t = v.as_f64().ok_or_else(|| type_error(k, k, "a number", v))?;
                    check_threshold(t)
                })?
            }
            "locales" => query.locales = opt(v, |v| as_strings(k, v))?,
            "hybrid" => query.hybrid = opt(v, |v| Ok(v.clone()))?,
            "vector" => {
                query.vector = opt(v, |v| {
                    let items = v.as_array().ok_or_else(|| type_error(k, k, "an array", v))?;
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, x)| {
                            x.as_f64()
                                .ok_or_else(|| type_error(k, &format!("{k}[{i}]"), "a number", x))
                        })
                        .collect()
                })?
            }
            "retrieveVectors" => query.retrieve_vectors = as_bool(k, v)?,
            "media" => query.media = opt(v, |v| Ok(v.clone()))?,
            "personalize" => query.personalize = opt(v, |v| Ok(v.clone()))?,
            "useNetwork" => query.use_network = opt(v, |v| as_bool(k, v))?,
            "showRankingScore" => query.show_ranking_score = as_bool(k, v)?,
            "showRankingScoreDetails" => query.show_ranking_score_details = as_bool(k, v)?,
            "showPerformanceDetails" => query.show_performance_details = as_bool(k, v)?,
            other => {
                let expected =
                    BODY_FIELDS.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ");
                return Err(ApiError::new(
                    "bad_request",
                    format!("Unknown field `{other}`: expected one of {expected}"),
                ));
            }
        }
    }
    Ok(query)
}
