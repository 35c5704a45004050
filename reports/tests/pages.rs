//! What a person reading the pages after a nightly campaign needs: why a run is invalid at
//! the top, whether the faults bit, and the campaign's exercised faults.

mod common;

use common::{fixture, read};
use minos_reports::fixtures::FixtureOptions;
use minos_reports::write_run_report;
use serde_json::{json, Value};

/// Merges `extra` into the fixture's results.json.
pub fn patch_results(dir: &std::path::Path, extra: Value) {
    let path = dir.join("results.json");
    let mut results: Value = serde_json::from_str(&read(dir, "results.json")).unwrap();
    for (k, v) in extra.as_object().unwrap() {
        results[k] = v.clone();
    }
    std::fs::write(path, serde_json::to_vec_pretty(&results).unwrap()).unwrap();
}

fn effects() -> Value {
    json!({
        "baseline": {"ops": 700, "ok": 700, "fail": 0, "info": 0, "availability": 1.0, "info_share": 0.0, "max_latency_ms": 200},
        "windows": [
            {"kind": "partition", "start_ms": 10000, "stop_ms": 15000, "targets": ["n1", "n2"], "ops": 300, "ok": 240,
             "fail": 0, "info": 60, "availability": 0.8, "info_share": 0.2, "max_latency_ms": 5000, "bit": true},
            {"kind": "clock", "start_ms": 20000, "stop_ms": 25000, "targets": ["n3"], "ops": 200, "ok": 200,
             "fail": 0, "info": 0, "availability": 1.0, "info_share": 0.0, "max_latency_ms": 150, "bit": false}],
        "by_kind": {"clock": {"windows": 1, "windows_bit": 0}, "partition": {"windows": 1, "windows_bit": 1}},
        "never_bit": ["clock"]
    })
}

#[test]
fn invalid_run_says_why_at_the_top_and_whether_faults_bit() {
    let dir = fixture(
        "pages-why",
        FixtureOptions {
            invalid: true,
            ..Default::default()
        },
    );
    patch_results(
        &dir,
        json!({
            "causes": ["linearizability", "invariant: one leader per term", "node n3 panicked: index out of range at node/src/log.rs:88"],
            "invariants": [{"name": "one leader per term", "ok": false, "detail": "n3 and n2 were both leader in term 20"}],
            "fault_effects": effects(),
        }),
    );
    write_run_report(&dir).unwrap();
    let index = read(&dir, "index.html");
    let why = index.find("id=\"why-invalid\"").expect("why-invalid box");
    let faults = index.find("<h2>Faults and availability</h2>").unwrap();
    let cex = index.find("id=\"counterexample\"").unwrap();
    assert!(why < faults && why < cex, "the reason comes first");
    let box_html = &index[why..index[why..].find("</section>").unwrap() + why];
    assert!(
        box_html.contains("n3 and n2 were both leader in term 20"),
        "{box_html}"
    );
    assert!(box_html.contains("node n3 panicked: index out of range at node/src/log.rs:88"));
    assert!(box_html.contains("href=\"#counterexample\""));
    let bite = index.find("id=\"fault-effects\"").expect("fault effects");
    let section = &index[bite..];
    assert!(section.contains("10.000–15.000"));
    assert!(section.contains("20.0%"), "in-doubt share");
    assert!(section.contains("id=\"never-bit\""));
    assert!(section[..section.find("</section>").unwrap()].contains("clock"));
}
