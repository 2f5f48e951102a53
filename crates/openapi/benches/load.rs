//! Load + convert X's full OpenAPI document, as every server (and every
//! `xmcp stdio`) start does: parse the JSON, convert every operation,
//! compile every input schema's validator.
//!
//! `cargo bench -p xmcp-openapi` (reads `../shared/x-api/openapi.json`
//! beside the repository, or `XMCP_X_OPENAPI_FIXTURE`).

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::time::{Duration, Instant};

fn main() {
    let path = std::env::var("XMCP_X_OPENAPI_FIXTURE").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/x-api/openapi.json"
        )
        .into()
    });
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let options = xmcp_openapi::Options::default();
    let iterations = 50;
    let mut parse = Vec::with_capacity(iterations);
    let mut total = Vec::with_capacity(iterations);
    let mut tools = 0;
    // One untimed run warms the allocator and the page cache.
    xmcp_openapi::load(&bytes, &options).unwrap();
    for _ in 0..iterations {
        let start = Instant::now();
        let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        parse.push(start.elapsed());
        let catalog = xmcp_openapi::convert(&doc, &options).unwrap();
        total.push(start.elapsed());
        tools = catalog.tools.len();
    }
    let stats = |v: &mut Vec<Duration>| {
        v.sort();
        let mean = v.iter().sum::<Duration>() / v.len() as u32;
        (v[0], v[v.len() / 2], mean, v[v.len() * 9 / 10])
    };
    let (pmin, pmed, pmean, _) = stats(&mut parse);
    let (min, med, mean, p90) = stats(&mut total);
    println!(
        "X OpenAPI document: {} bytes -> {tools} tools, {iterations} runs",
        bytes.len()
    );
    println!("  JSON parse     min {pmin:>9.2?}  p50 {pmed:>9.2?}  mean {pmean:>9.2?}");
    println!(
        "  load+convert   min {min:>9.2?}  p50 {med:>9.2?}  mean {mean:>9.2?}  p90 {p90:>9.2?}"
    );
}
