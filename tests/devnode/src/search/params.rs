//! `GET /indexes/{uid}/search` query-string parameters: lists are comma-separated (commas inside
//! `_geoPoint(...)` kept), numbers and booleans are text, errors name the parameter.

use serde_json::{Map, Value};

use crate::error::ApiError;

use super::query::{check_threshold, code_for, parse_strategy, SearchQuery};

/// The query-string parameters `GET /indexes/{uid}/search` accepts.
const GET_PARAMS: [&str; 28] = [
    "q",
    "vector",
    "offset",
    "limit",
    "page",
    "hitsPerPage",
    "attributesToRetrieve",
    "retrieveVectors",
    "attributesToCrop",
    "cropLength",
    "attributesToHighlight",
    "filter",
    "sort",
    "distinct",
    "showMatchesPosition",
    "showRankingScore",
    "showRankingScoreDetails",
    "showPerformanceDetails",
    "facets",
    "highlightPreTag",
    "highlightPostTag",
    "cropMarker",
    "matchingStrategy",
    "attributesToSearchOn",
    "hybridEmbedder",
    "hybridSemanticRatio",
    "rankingScoreThreshold",
    "locales",
];

fn param_error(name: &str, value: &str, what: &str) -> ApiError {
    ApiError::new(
        &code_for(name),
        format!("Invalid value in parameter `{name}`: could not parse `{value}` as {what}"),
    )
}

fn param_usize(name: &str, value: &str) -> Result<usize, ApiError> {
    value.parse().map_err(|_| param_error(name, value, "a positive integer"))
}

fn param_bool(name: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::new(
            &code_for(name),
            format!(
                "Invalid value in parameter `{name}`: could not parse `{value}` as a boolean, expected either `true` or `false`"
            ),
        )),
    }
}

/// Split a comma-separated list, keeping commas inside parentheses (`_geoPoint(1, 2):asc`).
pub(super) fn split_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if c == ',' && depth == 0 {
            out.push(current.trim().to_string());
            current.clear();
        } else {
            current.push(c);
        }
    }
    if !current.trim().is_empty() || !out.is_empty() {
        out.push(current.trim().to_string());
    }
    out.retain(|s| !s.is_empty());
    out
}

/// Parse `GET /indexes/{uid}/search` query-string pairs (already URL-decoded): lists are
/// comma-separated, numbers and booleans are text.
pub fn parse_search_params(params: &[(String, String)]) -> Result<SearchQuery, ApiError> {
    let mut query = SearchQuery::default();
    let mut hybrid = Map::new();
    for (name, value) in params {
        let n = name.as_str();
        let v = value.as_str();
        match n {
            "q" => query.q = Some(value.clone()),
            "offset" => query.offset = Some(param_usize(n, v)?),
            "limit" => query.limit = Some(param_usize(n, v)?),
            "page" => query.page = Some(param_usize(n, v)?),
            "hitsPerPage" => query.hits_per_page = Some(param_usize(n, v)?),
            "attributesToRetrieve" => query.attributes_to_retrieve = Some(split_list(v)),
            "attributesToCrop" => query.attributes_to_crop = Some(split_list(v)),
            "cropLength" => query.crop_length = param_usize(n, v)?,
            "cropMarker" => query.crop_marker = value.clone(),
            "attributesToHighlight" => query.attributes_to_highlight = Some(split_list(v)),
            "highlightPreTag" => query.highlight_pre_tag = value.clone(),
            "highlightPostTag" => query.highlight_post_tag = value.clone(),
            "showMatchesPosition" => query.show_matches_position = param_bool(n, v)?,
            "filter" => query.filter = Some(Value::String(value.clone())),
            "sort" => query.sort = Some(split_list(v)),
            "distinct" => query.distinct = Some(value.clone()),
            "facets" => query.facets = Some(split_list(v)),
            "matchingStrategy" => query.matching_strategy = parse_strategy(n, v, false)?,
            "attributesToSearchOn" => query.attributes_to_search_on = Some(split_list(v)),
            "rankingScoreThreshold" => {
                let t: f64 = v.parse().map_err(|_| param_error(n, v, "a float"))?;
                query.ranking_score_threshold = Some(check_threshold(t)?);
            }
            "locales" => query.locales = Some(split_list(v)),
            "vector" => {
                let parsed: Result<Vec<f64>, _> =
                    split_list(v.trim_matches(|c| c == '[' || c == ']'))
                        .iter()
                        .map(|x| x.parse::<f64>())
                        .collect();
                query.vector = Some(parsed.map_err(|_| param_error(n, v, "a vector"))?);
            }
            "retrieveVectors" => query.retrieve_vectors = param_bool(n, v)?,
            "showRankingScore" => query.show_ranking_score = param_bool(n, v)?,
            "showRankingScoreDetails" => query.show_ranking_score_details = param_bool(n, v)?,
            "showPerformanceDetails" => query.show_performance_details = param_bool(n, v)?,
            "hybridEmbedder" => {
                hybrid.insert("embedder".into(), Value::String(value.clone()));
            }
            "hybridSemanticRatio" => {
                let ratio: f64 = v.parse().map_err(|_| param_error(n, v, "a float"))?;
                hybrid.insert("semanticRatio".into(), Value::from(ratio));
            }
            other => {
                let expected =
                    GET_PARAMS.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ");
                return Err(ApiError::new(
                    "bad_request",
                    format!("Unknown parameter `{other}`: expected one of {expected}"),
                ));
            }
        }
    }
    if !hybrid.is_empty() {
        query.hybrid = Some(Value::Object(hybrid));
    }
    Ok(query)
}
