//! Routing a 10,000-document batch (find the documents, check reserved fields, primary key,
//! hash, `_miroir_shard`, split by node) against a plain serde_json parse and serialize of the same bytes.
//!
//! Run with `cargo bench -p miroir-http --bench route_batch`; prints both throughputs and the
//! ratio (routing / plain; the target is at least 0.5).

use std::hint::black_box;
use std::time::{Duration, Instant};

use miroir_cluster::{Assignment, Topology};
use miroir_http::documents::batch::{check_reserved, route, Payload};
use miroir_http::documents::parse::Format;
use miroir_types::{GroupId, NodeId};
use serde_json::{json, Value};

fn payload() -> bytes::Bytes {
    let documents: Vec<Value> = (0..10_000)
        .map(|i| {
            let brand = ["Acme", "Globex", "Initech", "Umbrella"][i % 4];
            json!({
                "id": format!("p{i:07}"),
                "title": format!("Product number {i} with a reasonably long title"),
                "brand": brand,
                "category": "camera",
                "description": "A black refurbished camera by Soylent. home quiet accessory charging runner analog sound office gift reliable bluetooth processor.",
                "tags": ["refurbished", "sale"],
                "price": 1260.32 + i as f64,
                "rating": 3.2,
                "reviews": 18707 + i,
                "year": 2019,
                "in_stock": i % 2 == 0,
                "_geo": {"lat": 28.6604, "lng": -134.9611},
            })
        })
        .collect();
    serde_json::to_vec(&documents).expect("payload serializes").into()
}

fn time_it(runs: u32, mut f: impl FnMut()) -> Duration {
    f(); // warm up
    let start = Instant::now();
    for _ in 0..runs {
        f();
    }
    start.elapsed() / runs
}

fn main() {
    let bytes = payload();
    let runs = 20;
    let plain = time_it(runs, || {
        let documents: Vec<serde_json::Map<String, Value>> =
            serde_json::from_slice(&bytes).expect("parse");
        black_box(serde_json::to_vec(&documents).expect("serialize"));
    });
    let mb = bytes.len() as f64 / 1e6;
    println!("payload: 10000 documents, {mb:.1} MB");
    println!("plain parse+serialize: {:?} ({:.0} MB/s)", plain, mb / plain.as_secs_f64());
    for (groups, per_group, rf) in [(1, 3, 1), (2, 3, 2)] {
        let nodes = (0..groups).flat_map(|g| {
            (0..per_group).map(move |i| {
                (
                    NodeId::new(format!("g{g}n{i}")).expect("id"),
                    GroupId::new(format!("g{g}")).expect("group"),
                )
            })
        });
        let topology = Topology::new(nodes, rf).expect("topology");
        let assignment = Assignment::new(&topology, 64);
        let routed = time_it(runs, || {
            let payload = Payload::read(bytes.clone(), Format::Json, b',').expect("parse");
            check_reserved(&payload).expect("no reserved field");
            black_box(route(&payload, "id", &assignment).expect("route"));
        });
        println!(
            "route batch, {groups} group(s) x {per_group} nodes, RF {rf}: {:?} ({:.0} MB/s), \
             ratio (plain time / routing time): {:.2}",
            routed,
            mb / routed.as_secs_f64(),
            plain.as_secs_f64() / routed.as_secs_f64()
        );
    }
}
