//! A run dir gets every report file of DESIGN.md §5, for valid and invalid runs, with plots
//! that decode at the stated size and pages that show verdict, reproduce command and faults.

mod common;

use common::{fixture, read};
use minos_reports::fixtures::FixtureOptions;
use minos_reports::plots::{PLOT_HEIGHT, PLOT_WIDTH};
use minos_reports::{write_run_report, REPORT_FILES};

fn png_size(path: &std::path::Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    // A plot that drew nothing would be one flat colour.
    let first = &buf[..3];
    assert!(
        buf.chunks(3).any(|px| px != first),
        "{} is blank",
        path.display()
    );
    (info.width, info.height)
}

fn check_all_files(dir: &std::path::Path) {
    for file in REPORT_FILES.iter().chain(["history.csv"].iter()) {
        let meta = std::fs::metadata(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(meta.len() > 0, "{file} is empty");
    }
    for stem in ["latency-raw", "latency-quantiles", "rate"] {
        assert_eq!(
            png_size(&dir.join(format!("{stem}.png"))),
            (PLOT_WIDTH, PLOT_HEIGHT)
        );
        let svg = read(dir, &format!("{stem}.svg"));
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{stem}.svg"
        );
        assert!(
            svg.contains("partition"),
            "{stem}.svg lacks the fault labels"
        );
    }
    // No temp file left behind.
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp-"), "leftover {name}");
    }
}

#[test]
fn valid_run_gets_every_file() {
    let dir = fixture("valid", FixtureOptions::default());
    write_run_report(&dir).unwrap();
    check_all_files(&dir);
    let index = read(&dir, "index.html");
    assert!(index.contains("id=\"verdict\" style=\"background:#2e7d32\">valid<"));
    assert!(index.contains("minos run --seed 42 --nodes 5 --clients 5 --time-limit 60s"));
    assert!(index.contains("id=\"copy\""));
    // Fault intervals with their targets: the fixture's first partition splits n1,n2 from the rest.
    assert!(
        index.contains("n1,n2 | n3,n4,n5") || index.contains("n1,n2,n3 | n4,n5"),
        "no partition groups"
    );
    assert!(index.contains("kill"));
    assert!(index.contains("one leader per term"));
    assert!(!index.contains("id=\"counterexample\""));
    assert!(index.contains("data:image/png;base64,"));
    for raw in [
        "history.jsonl",
        "history.csv",
        "results.json",
        "latency.csv",
        "junit.xml",
        "timeline.html",
        "rate.svg",
        "nodes/n1.log",
    ] {
        assert!(
            index.contains(&format!("href=\"./{raw}\"")),
            "no link to {raw}"
        );
    }
    let junit = read(&dir, "junit.xml");
    assert!(junit.contains("failures=\"0\" errors=\"0\""));
    let latency = read(&dir, "latency.csv");
    let ops_count = minos_reports::history::parse_jsonl(&read(&dir, "history.jsonl"))
        .ops
        .len();
    assert!(
        ops_count > 900,
        "the fixture has about 1000 ops, got {ops_count}"
    );
    assert_eq!(
        latency.lines().count(),
        ops_count + 1,
        "header + one row per op"
    );
}

#[test]
fn invalid_run_shows_the_counterexample() {
    let dir = fixture(
        "invalid",
        FixtureOptions {
            invalid: true,
            seed: 7,
            ..Default::default()
        },
    );
    write_run_report(&dir).unwrap();
    check_all_files(&dir);
    let index = read(&dir, "index.html");
    assert!(index.contains(">invalid<"));
    assert!(index.contains("#c62828"));
    assert!(index.contains("--bug stale-read"));
    assert!(index.contains("id=\"counterexample\""));
    assert!(index.contains("Longest linearizable prefix"));
    assert!(
        index.contains("but the counter is"),
        "the reason must be on the page"
    );
    assert!(
        index.contains("<svg class=\"cexsvg\""),
        "the counterexample must be drawn"
    );
    assert!(index.contains("Model state after the prefix"));
    let timeline = read(&dir, "timeline.html");
    assert!(timeline.contains("show counterexample"));
    let junit = read(&dir, "junit.xml");
    assert!(junit.contains(
        "<failure message=\"verdict: invalid (linearizability); reproduce: minos run --seed 7"
    ));
}

#[test]
fn history_csv_is_kept_when_present_and_written_when_missing() {
    let dir = fixture(
        "csv-present",
        FixtureOptions {
            with_history_csv: true,
            ..Default::default()
        },
    );
    let before = read(&dir, "history.csv");
    write_run_report(&dir).unwrap();
    assert_eq!(read(&dir, "history.csv"), before);

    let dir = fixture("csv-missing", FixtureOptions::default());
    write_run_report(&dir).unwrap();
    let csv = read(&dir, "history.csv");
    let history_lines = read(&dir, "history.jsonl").lines().count();
    assert_eq!(csv.lines().count(), history_lines + 1);
    assert!(
        csv.starts_with("index,time_ns,process,type,f,key,value\n"),
        "same header as the workloads crate writes"
    );
}

#[test]
fn missing_results_json_degrades_and_says_so() {
    let dir = fixture("no-results", FixtureOptions::default());
    std::fs::remove_file(dir.join("results.json")).unwrap();
    write_run_report(&dir).unwrap();
    let index = read(&dir, "index.html");
    assert!(index.contains(">unknown<"));
    assert!(index.contains("results.json is missing"));
    assert!(
        index.contains("derived from the history"),
        "faults come from nemesis records then"
    );
    assert!(index.contains("n1,n2 | n3,n4,n5") || index.contains("n1,n2,n3 | n4,n5"));
}

#[test]
fn empty_dir_is_not_a_run_dir() {
    let dir = common::fresh_dir("empty");
    let error = write_run_report(&dir).unwrap_err();
    assert!(error.to_string().contains("not a run directory"), "{error}");
}

#[test]
fn malformed_history_lines_are_reported_not_fatal() {
    let dir = fixture(
        "malformed",
        FixtureOptions {
            ops_count: 100,
            ..Default::default()
        },
    );
    let mut text = read(&dir, "history.jsonl");
    text.push_str("{not json\n{\"index\":99999,\"time\":1,\"process\":[1],\"type\":\"ok\"}\n");
    std::fs::write(dir.join("history.jsonl"), text).unwrap();
    write_run_report(&dir).unwrap();
    let index = read(&dir, "index.html");
    assert!(index.contains("2 malformed or inconsistent record(s)"));
}

#[test]
fn hostile_history_renders_inert() {
    let dir = fixture(
        "hostile",
        FixtureOptions {
            hostile: true,
            invalid: true,
            ops_count: 300,
            ..Default::default()
        },
    );
    write_run_report(&dir).unwrap();
    for page in ["index.html", "timeline.html"] {
        let text = read(&dir, page);
        // The only script elements are ours; the hostile strings appear escaped.
        assert!(!text.contains("<script>alert"), "{page}");
        assert!(!text.contains("<img src=x"), "{page}");
        assert!(!text.contains("</script> \\\""), "{page}");
        let scripts = text.matches("<script").count();
        assert!(scripts <= 2, "{page} has {scripts} script elements");
    }
    let index = read(&dir, "index.html");
    assert!(
        index.contains("&lt;script&gt;alert(&quot;k&quot;)&lt;/script&gt;")
            || index.contains("&lt;img src=x")
    );
    let timeline = read(&dir, "timeline.html");
    assert!(
        timeline.contains("\\u003cscript\\u003e"),
        "values are embedded with < escaped"
    );
    for svg in ["latency-raw.svg", "rate.svg"] {
        let text = read(&dir, svg);
        assert!(!text.contains("<script") && !text.contains("<img"), "{svg}");
    }
    let junit = read(&dir, "junit.xml");
    assert!(!junit.contains("<script"));
}

#[test]
fn empty_history_still_gets_a_full_report() {
    let dir = common::fresh_dir("empty-history");
    std::fs::write(dir.join("history.jsonl"), "").unwrap();
    std::fs::write(
        dir.join("results.json"),
        r#"{"verdict":"unknown","checker":{"verdict":"unknown","unknown_reason":"time limit"}}"#,
    )
    .unwrap();
    write_run_report(&dir).unwrap();
    for file in REPORT_FILES {
        assert!(dir.join(file).is_file(), "{file}");
    }
    assert_eq!(png_size(&dir.join("rate.png")), (PLOT_WIDTH, PLOT_HEIGHT));
    let index = read(&dir, "index.html");
    assert!(index.contains(">unknown<") && index.contains("time limit"));
    assert!(index.contains("No client operations in the history."));
    assert!(read(&dir, "junit.xml").contains("<error message=\"verdict: unknown"));
}
