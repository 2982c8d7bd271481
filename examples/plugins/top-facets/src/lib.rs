//! An example Miroir plugin: `GET /_miroir/x/top-facets?index=movies&facet=genre` answers the most
//! frequent values of a facet, through the gateway's own search (so over every shard).
//!
//! Configuration (`plugins.custom[].config`): `size`, how many values to return (default 5), and
//! `facets`, the facets used when the request names none (default: every filterable attribute the
//! search returns a distribution for).

use miroir_plugin_sdk::serde_json::{json, Value};
use miroir_plugin_sdk::{log, metrics, search, Manifest, Method, Plugin, Request, Response};

struct TopFacets {
    size: usize,
    facets: Vec<String>,
}

impl Plugin for TopFacets {
    fn init(config: Value) -> Result<Self, String> {
        let size = config.get("size").and_then(Value::as_u64).unwrap_or(5) as usize;
        let facets = match config.get("facets") {
            None => vec!["*".to_owned()],
            Some(list) => list
                .as_array()
                .and_then(|items| items.iter().map(|v| v.as_str().map(str::to_owned)).collect())
                .ok_or("config.facets must be a list of attribute names")?,
        };
        Ok(TopFacets { size, facets })
    }

    fn manifest(&self) -> Manifest {
        Manifest::new("top-facets", env!("CARGO_PKG_VERSION"))
            .route(Method::Get, "/_miroir/x/top-facets")
    }

    fn handle(&mut self, request: Request) -> Response {
        let Some(index) = request.query_param("index") else {
            return Response::error(400, "missing_index_uid", "add ?index=<index uid>");
        };
        let facets = match request.query_param("facet") {
            Some(facet) => vec![facet],
            None => self.facets.clone(),
        };
        let query = json!({ "q": request.query_param("q").unwrap_or_default(), "limit": 0, "facets": facets });
        let answer = match search(&index, &query) {
            Ok(answer) => answer,
            Err(e) => {
                log::debug(&format!("search on {index} failed: {e}"));
                // The gateway's own error (e.g. 404 index_not_found), passed on unchanged.
                return e.to_response();
            }
        };
        metrics::counter_add("requests", 1, &[("index", &index)]);
        let mut top = serde_json::Map::new();
        if let Some(distribution) = answer["facetDistribution"].as_object() {
            for (facet, counts) in distribution {
                let mut values: Vec<(&String, u64)> = counts
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k, v.as_u64().unwrap_or(0))).collect())
                    .unwrap_or_default();
                // Most frequent first; ties in alphabetical order so the answer is stable.
                values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
                let values: Vec<Value> = values
                    .into_iter()
                    .take(self.size)
                    .map(|(value, count)| json!({ "value": value, "count": count }))
                    .collect();
                top.insert(facet.clone(), Value::Array(values));
            }
        }
        Response::json(
            200,
            &json!({ "index": index, "estimatedTotalHits": answer["estimatedTotalHits"], "topFacets": top }),
        )
    }
}

miroir_plugin_sdk::export!(TopFacets);
