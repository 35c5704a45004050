//! Measures how long the report of a large run takes: a 100k-op counter history with faults,
//! valid and invalid. Run with `cargo bench -p minos-reports --bench report_100k`.

use std::time::Instant;

use minos_reports::fixtures::{write_run_dir, FixtureOptions};

fn main() {
    let root = std::env::temp_dir().join("minos-reports-bench");
    for (name, invalid) in [("valid-100k", false), ("invalid-100k", true)] {
        let dir = root.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        let options = FixtureOptions {
            ops_count: 100_000,
            clients: 10,
            duration_s: 600,
            invalid,
            seed: 9,
            ..Default::default()
        };
        write_run_dir(&dir, &options).expect("fixture");
        let started = Instant::now();
        minos_reports::write_run_report(&dir).expect("report");
        let elapsed = started.elapsed();
        let size = |f: &str| std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0);
        println!(
            "{name}: write_run_report {:.2} s; index.html {} KB, timeline.html {} KB, latency-raw.svg {} KB, latency-raw.png {} KB ({})",
            elapsed.as_secs_f64(),
            size("index.html") / 1024,
            size("timeline.html") / 1024,
            size("latency-raw.svg") / 1024,
            size("latency-raw.png") / 1024,
            dir.display()
        );
    }
}
