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

/// A small well-formedness check (no XML crate in the tree): tags balance, attributes are
/// quoted, and text holds no raw `<`; returns the names of the elements in document order.
fn xml_elements(text: &str) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    let mut seen = Vec::new();
    let mut rest = text.trim_start();
    rest = rest
        .strip_prefix("<?xml")
        .map_or(rest, |r| &r[r.find("?>").unwrap() + 2..]);
    while let Some(open) = rest.find('<') {
        assert!(!rest[..open].contains('>'), "stray > in text");
        let close = rest[open..].find('>').expect("unclosed tag") + open;
        let tag = &rest[open + 1..close];
        assert!(!tag.contains('<'), "raw < inside a tag: {tag}");
        assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes: {tag}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "mismatched </{name}>"
            );
        } else {
            let name = tag
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches('/')
                .to_string();
            seen.push(name.clone());
            if !tag.ends_with('/') {
                stack.push(name);
            }
        }
        rest = &rest[close + 1..];
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    seen
}

#[test]
fn campaign_page_says_what_ran_and_junit_has_a_case_per_seed() {
    use minos_reports::fixtures::write_run_dir;
    let dir = common::fresh_dir("pages-campaign");
    std::fs::write(
        dir.join("campaign.json"),
        serde_json::to_vec(&json!({
            "name": "nightly", "test_name": "counter-x",
            "options": "minos run --nodes 5 --nemesis all --bug stale-vote-counted",
            "schedule": null
        }))
        .unwrap(),
    )
    .unwrap();
    for seed in 1..=5u64 {
        let run = dir.join(format!("sim-seed{seed}"));
        write_run_dir(
            &run,
            &FixtureOptions {
                seed,
                invalid: seed == 3,
                ops_count: 200,
                duration_s: 30,
                ..Default::default()
            },
        )
        .unwrap();
        patch_results(&run, json!({"fault_effects": effects()}));
        if seed <= 2 {
            let same = seed == 1;
            std::fs::write(
                run.join("determinism.json"),
                format!("{{\"first_sha256\":\"a\",\"second_sha256\":\"b\",\"same\":{same}}}"),
            )
            .unwrap();
        }
        write_run_report(&run).unwrap();
    }
    minos_reports::write_campaign_report(&dir).unwrap();
    let page = read(&dir, "index.html");
    assert!(
        page.contains(
            "minos campaign --seeds 1..6 --nodes 5 --nemesis all --bug stale-vote-counted"
        ),
        "command line"
    );
    assert!(page.contains("<th>planted bug</th><td>stale-vote-counted</td>"));
    assert!(page.contains("generated from each seed"));
    assert!(page.contains("1 of 2 seed(s) run twice gave different histories: seeds 2"));
    assert!(page.contains("<code class=\"shrink\">minos shrink "));
    assert!(page.contains("sim-seed3</code>"));
    assert!(page.contains("<code class=\"reproduce\">minos run --seed 3"));
    assert!(
        page.contains("href=\"../index.html\""),
        "a link up to the store"
    );
    // Faults exercised over the campaign's runs.
    assert!(page.contains("id=\"exercised\""));
    assert!(page.contains("never changed what the clients saw in any run: clock"));

    let junit = read(&dir, "junit.xml");
    let elements = xml_elements(&junit);
    assert_eq!(elements.iter().filter(|e| *e == "testcase").count(), 5);
    assert_eq!(elements.iter().filter(|e| *e == "failure").count(), 1);
    for seed in 1..=5 {
        assert!(
            junit.contains(&format!("name=\"seed {seed}\"")),
            "seed {seed}"
        );
    }
    assert!(junit.contains("tests=\"5\" failures=\"1\""));
}

#[test]
fn violation_is_tied_to_faults_plots_and_timeline_window() {
    let dir = fixture(
        "pages-violation",
        FixtureOptions {
            invalid: true,
            ..Default::default()
        },
    );
    write_run_report(&dir).unwrap();
    let index = read(&dir, "index.html");
    let why = index.find("id=\"why-invalid\"").unwrap();
    let note = index
        .find("id=\"faults-at-violation\"")
        .expect("faults at the violation");
    assert!(note > why);
    let text = &index[note..note + index[note..].find("</section>").unwrap()];
    assert!(
        text.contains("since ") || text.contains("No fault was in force"),
        "{text}"
    );
    for stem in ["latency-raw", "latency-quantiles"] {
        assert!(
            read(&dir, &format!("{stem}.svg")).contains("violation"),
            "{stem}"
        );
    }
    // The timeline opens on a window that holds every op the page's diagram draws.
    let results: Value = serde_json::from_str(&read(&dir, "results.json")).unwrap();
    let history = minos_reports::history::parse_jsonl(&read(&dir, "history.jsonl"));
    let c = &results["checker"]["counterexample"];
    let (lo, hi) = minos_reports::counterexample::drawn_span_ns(c, &history).unwrap();
    let timeline = read(&dir, "timeline.html");
    let at = timeline.find("\"window\":[").expect("a window") + 10;
    let window: Vec<u64> = timeline[at..at + timeline[at..].find(']').unwrap()]
        .split(',')
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(
        window[0] <= lo / 1000 && window[1] >= hi / 1000,
        "{window:?} vs {lo}..{hi}"
    );
    assert!(
        hi - lo > 20_000_000,
        "the drawn window is wider than the single op"
    );
}

#[test]
fn store_index_groups_campaigns_filters_failures_and_pages_link_up() {
    use minos_reports::fixtures::write_run_dir;
    let store = common::fresh_dir("pages-store");
    let small = |seed, invalid| FixtureOptions {
        seed,
        invalid,
        ops_count: 100,
        duration_s: 20,
        ..Default::default()
    };
    let campaign = store.join("campaign-nightly");
    std::fs::create_dir_all(&campaign).unwrap();
    std::fs::write(
        campaign.join("campaign.json"),
        "{\"options\": \"minos run\"}",
    )
    .unwrap();
    for seed in 1..=30u64 {
        let run = campaign.join("counter").join(format!("sim-seed{seed}"));
        write_run_dir(&run, &small(seed, seed == 7)).unwrap();
        write_run_report(&run).unwrap();
    }
    let loose = store.join("counter").join("20261122T100000-seed1");
    write_run_dir(&loose, &small(1, false)).unwrap();
    write_run_report(&loose).unwrap();
    minos_reports::write_campaign_report(&campaign).unwrap();
    minos_reports::write_store_index(&store).unwrap();

    let index = read(&store, "index.html");
    assert!(index.contains("id=\"failures-only\""));
    assert!(index.contains("getElementById('failures-only')"));
    let runs_table = &index[index.find("id=\"runs\"").unwrap()..];
    assert_eq!(
        runs_table.matches("<tr class=").count(),
        1,
        "campaign runs are grouped"
    );
    assert!(index
        .contains("<td class=\"num\">30</td><td class=\"num\">29</td><td class=\"num\">1</td>"));
    assert!(index.contains("<tr class=\"failing\">"));
    assert!(index.contains("2026-11-22 15:30:00 UTC"), "full timestamps");

    let in_campaign = read(&campaign.join("counter").join("sim-seed7"), "index.html");
    assert!(in_campaign.contains("<a href=\"../../index.html\">↑ campaign</a>"));
    assert!(in_campaign.contains("<a href=\"../../../index.html\">↑ store</a>"));
    assert!(read(&loose, "index.html").contains("<a href=\"../../index.html\">↑ store</a>"));
    assert!(read(&campaign, "index.html").contains("href=\"../index.html\""));
}

#[test]
fn a_long_key_is_cut_with_the_whole_behind_a_summary() {
    let dir = fixture("pages-long", FixtureOptions::default());
    let key = format!("k{}", "x".repeat(3000));
    patch_results(
        &dir,
        json!({"checker": {"verdict": "valid", "model": "counter",
               "partitions": [{"key": key, "verdict": "valid", "ops_count": 3}]}}),
    );
    write_run_report(&dir).unwrap();
    let index = read(&dir, "index.html");
    assert!(
        index.contains("overflow-wrap:anywhere"),
        "cells wrap long words"
    );
    let at = index
        .find("<details class=\"long\"><summary>kxxx")
        .expect("cut key");
    let summary_end = index[at..].find("</summary>").unwrap();
    assert!(summary_end < 200, "the visible part is short");
    assert!(
        index[at..].contains(&key),
        "the whole key is one click away"
    );
}

#[test]
fn a_campaign_runs_replay_goes_to_the_store_not_into_the_campaign() {
    let store = common::fresh_dir("pages-replay");
    let campaign = store.join("campaign-x");
    let run = campaign.join("counter").join("sim-seed4");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(campaign.join("campaign.json"), "{}").unwrap();
    let recorded = format!(
        "minos run --seed 4 --nodes 5 --out {} --no-report",
        campaign.display()
    );
    assert_eq!(
        minos_reports::run::replay_command(&recorded, &run),
        format!("minos run --seed 4 --nodes 5 --out {}", store.display())
    );
    // Outside a campaign the command is kept as recorded.
    let plain = store.join("counter").join("20261122T100000-seed1");
    std::fs::create_dir_all(&plain).unwrap();
    let command = "minos run --seed 1 --out store";
    assert_eq!(minos_reports::run::replay_command(command, &plain), command);
}
