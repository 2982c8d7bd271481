//! Merge time for 16 shard answers of 100 hits each (target: at most 100 µs), against the time
//! to merely clone the same answers, measured in the same run; and, from the answers' bytes as
//! a scatter receives them, the merge of the parsed answers written as JSON against the merge
//! that reads them without building their documents (`merge_search_raw`).
//!
//! Run: `cargo bench -p miroir-cluster --bench merge`

use std::hint::black_box;
use std::time::{Duration, Instant};

use miroir_cluster::merge::{merge_search, merge_search_raw, MergeSettings};
use serde_json::{json, Value};

/// The gateway's allocator: merge costs are mostly allocations.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn answers() -> Vec<Value> {
    (0..16)
        .map(|node| {
            let hits: Vec<Value> = (0..100)
                .map(|i| {
                    let score = 1.0 - (i * 16 + node) as f64 / 4000.0;
                    json!({
                        "id": format!("p{node:02}{i:04}"),
                        "title": "Acme wireless headphones X100",
                        "price": 10.0 + i as f64,
                        "_rankingScore": score,
                        "_rankingScoreDetails": {
                            "words": {"order": 0, "matchingWords": 2, "maxMatchingWords": 2, "score": 1.0},
                            "typo": {"order": 1, "typoCount": 0, "maxTypoCount": 2, "score": 1.0},
                            "proximity": {"order": 2, "score": score},
                            "attributeRank": {"order": 3, "score": 1.0},
                            "wordPosition": {"order": 4, "score": 0.9},
                            "exactness": {"order": 5, "matchType": "noExactMatch", "matchingWords": 2, "maxMatchingWords": 2, "score": 0.5}
                        }
                    })
                })
                .collect();
            json!({"hits": hits, "estimatedTotalHits": 400, "processingTimeMs": 2,
                   "facetDistribution": {"brand": {"Acme": 40, "Globex": 60}}})
        })
        .collect()
}

fn time(rounds: u32, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..rounds {
        f();
    }
    start.elapsed() / rounds
}

fn main() {
    let answers = answers();
    let client = json!({"q": "wireless headphones", "limit": 100, "facets": ["brand"]});
    let settings = MergeSettings {
        max_total_hits: 1000,
        max_values_per_facet: 100,
        sort_facet_values_by: vec![("*".into(), "alpha".into())],
        primary_key: "id".into(),
        distinct_attribute: None,
    };
    let rounds = 300;
    for _ in 0..20 {
        black_box(merge_search(&client, &answers, &settings));
    }
    let merge = time(rounds, || {
        black_box(merge_search(black_box(&client), black_box(&answers), &settings));
    });
    let clone = time(rounds, || {
        black_box(black_box(&answers).clone());
    });
    println!(
        "merge of 16 answers x 100 hits: {:>8.1} µs per merge (target <= 100 µs)",
        merge.as_secs_f64() * 1e6
    );
    println!("clone of the same answers:      {:>8.1} µs (baseline)", clone.as_secs_f64() * 1e6);
    println!("ratio merge / clone:            {:>8.2}", merge.as_secs_f64() / clone.as_secs_f64());

    let bodies: Vec<Vec<u8>> =
        answers.iter().map(|a| serde_json::to_vec(a).expect("json")).collect();
    let slices: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
    let raw = time(rounds, || {
        black_box(merge_search_raw(black_box(&client), black_box(&slices), &settings));
    });
    let parsed = time(rounds, || {
        let answers: Vec<Value> =
            slices.iter().map(|b| serde_json::from_slice(b).expect("json")).collect();
        let merged = merge_search(black_box(&client), &answers, &settings);
        black_box(serde_json::to_vec(&merged).expect("json"));
    });
    let scan = time(rounds, || {
        for body in &slices {
            black_box(serde_json::from_slice::<serde::de::IgnoredAny>(body).expect("json"));
        }
    });
    println!("from bytes, reading only:        {:>8.1} µs", scan.as_secs_f64() * 1e6);
    println!(
        "from bytes, parsed then merged:  {:>8.1} µs per merge and write",
        parsed.as_secs_f64() * 1e6
    );
    println!(
        "from bytes, merge_search_raw:    {:>8.1} µs ({:.2} of the parsed merge)",
        raw.as_secs_f64() * 1e6,
        raw.as_secs_f64() / parsed.as_secs_f64()
    );
}
