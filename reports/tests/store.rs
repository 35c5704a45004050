//! Campaign pages, the store index, and `rebuild` over a store of fixture runs.

mod common;

use common::{fixture, fresh_dir, read};
use minos_reports::fixtures::{write_run_dir, FixtureOptions};
use minos_reports::results::Verdict;
use minos_reports::{
    rebuild, write_campaign_report, write_run_report, write_store_index, RebuildOptions,
};

fn small(seed: u64, invalid: bool) -> FixtureOptions {
    FixtureOptions {
        seed,
        invalid,
        ops_count: 200,
        duration_s: 30,
        ..Default::default()
    }
}

#[test]
fn campaign_groups_failures_and_aggregates() {
    let dir = fresh_dir("campaign");
    for seed in 1..=6u64 {
        let run = dir.join(format!("seed-{seed}"));
        write_run_dir(&run, &small(seed, seed % 3 == 0)).unwrap();
        write_run_report(&run).unwrap();
    }
    let summary = write_campaign_report(&dir).unwrap();
    assert_eq!(summary.runs_count, 6);
    assert_eq!(summary.invalid_count, 2);
    assert_eq!(summary.verdict(), Verdict::Invalid);
    let page = read(&dir, "index.html");
    assert!(page.contains("<meta name=\"minos-page\" content=\"campaign\">"));
    // Both stale reads share one signature line, with both seeds linked.
    assert!(page.contains("invalid · linearizability · read: read returned N but the counter is N"));
    assert!(
        page.contains("href=\"./seed-3/index.html\"")
            && page.contains("href=\"./seed-6/index.html\"")
    );
    assert!(page.contains("Latency over all runs"));
    assert!(page.contains("partition") && page.contains("no fault"));
}

#[test]
fn rebuild_store_writes_runs_campaigns_and_index() {
    let store = fresh_dir("store");
    write_run_dir(
        &store.join("counter").join("20261122T100000-seed1"),
        &small(1, false),
    )
    .unwrap();
    write_run_dir(
        &store.join("counter").join("20261122T110000-seed2"),
        &small(2, true),
    )
    .unwrap();
    for seed in 10..13u64 {
        write_run_dir(
            &store.join("nightly").join(format!("seed-{seed}")),
            &small(seed, false),
        )
        .unwrap();
    }
    std::fs::write(store.join("nightly").join("campaign.json"), "{}").unwrap();
    // A `latest` symlink must not make a run appear twice.
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        "20261122T110000-seed2",
        store.join("counter").join("latest"),
    )
    .unwrap();

    let rebuilt = rebuild(&store, &RebuildOptions::default()).unwrap();
    assert_eq!(rebuilt.runs.len(), 5);
    assert_eq!(rebuilt.errors_count(), 0);
    assert_eq!(rebuilt.verdict(), Verdict::Invalid);
    assert_eq!(rebuilt.campaigns.len(), 1);
    assert!(rebuilt.store_index.is_some());
    for run in &rebuilt.runs {
        assert!(run.dir.join("index.html").is_file());
        assert!(
            read(&run.dir, "index.html").contains("not re-checked")
                || read(&run.dir, "index.html").contains("Re-checked")
        );
    }
    let index = read(&store, "index.html");
    assert!(index.contains("<meta name=\"minos-page\" content=\"store\">"));
    assert!(index.contains("./nightly/index.html"));
    assert!(index.contains("./counter/20261122T110000-seed2/index.html"));
    assert!(!index.contains("latest"));
    assert!(index.contains("5 runs"));

    // A test dir alone: its runs, and the store index above it is refreshed.
    let again = rebuild(&store.join("counter"), &RebuildOptions { recheck: false }).unwrap();
    assert_eq!(again.runs.len(), 2);
    assert!(again.store_index.is_some());
}

fn set_run_id(run: &std::path::Path, run_id: Option<&str>) {
    let path = run.join("results.json");
    let mut results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    match run_id {
        Some(id) => results["run_id"] = serde_json::json!(id),
        None => {
            results.as_object_mut().unwrap().remove("run_id");
        }
    }
    std::fs::write(&path, results.to_string()).unwrap();
}

#[test]
fn store_index_lists_newest_first() {
    let store = fresh_dir("store-order");
    // Names sort the other way round from age, so that only the timestamps can order them.
    let (a, b, c) = (
        store.join("t").join("c-oldest"),
        store.join("t").join("b-middle"),
        store.join("t").join("a-newest"),
    );
    write_run_dir(&a, &small(1, false)).unwrap();
    set_run_id(&a, Some("20261120T100000-seed1"));
    write_run_dir(&b, &small(2, false)).unwrap();
    set_run_id(&b, Some("20261121T100000-seed2"));
    // No timestamped run id: ordered by when its history was written (now, so newest).
    write_run_dir(&c, &small(3, false)).unwrap();
    set_run_id(&c, None);
    write_store_index(&store).unwrap();
    let index = read(&store, "index.html");
    let position = |name: &str| {
        index
            .find(name)
            .unwrap_or_else(|| panic!("{name} not listed"))
    };
    assert!(position("t/a-newest") < position("t/b-middle"));
    assert!(position("t/b-middle") < position("t/c-oldest"));
    assert!(index.contains("2026-11-21 10:00:00 UTC"));
}

#[test]
fn rebuild_of_an_empty_dir_is_an_error() {
    let dir = fresh_dir("nothing");
    assert!(rebuild(&dir, &RebuildOptions::default()).is_err());
    let run = fixture("single", small(5, false));
    let rebuilt = rebuild(&run, &RebuildOptions::default()).unwrap();
    assert_eq!(rebuilt.runs.len(), 1);
    assert!(rebuilt.store_index.is_none());
}
