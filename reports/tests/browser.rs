//! Renders a run's pages in headless Chromium (Debian's `chromium`) and checks that they draw:
//! the index page shows the verdict colour and the plots, and the timeline's script runs. When
//! no Chromium is installed the test prints a loud SKIPPED and passes (CI without a browser).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{fixture, read};
use minos_reports::fixtures::FixtureOptions;
use minos_reports::write_run_report;

fn find_chromium() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("MINOS_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Runs chromium headless with `extra` arguments on `url`; returns stdout. Bounded: a browser
/// that does not finish in 90 s is killed and the test fails.
fn chromium(binary: &Path, profile: &Path, extra: &[&str], url: &str) -> String {
    let mut child = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    // Read stdout while waiting: a DOM dump larger than the pipe buffer (64 KiB) would
    // otherwise block the browser until the deadline.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut bytes);
        bytes
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    String::from_utf8_lossy(&reader.join().expect("stdout reader")).into_owned()
}

fn count_pixels(png_path: &Path, matches: impl Fn(&[u8]) -> bool) -> usize {
    let decoder = png::Decoder::new(std::fs::File::open(png_path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks(channels)
        .filter(|px| matches(px))
        .count()
}

#[test]
fn pages_render_in_headless_chromium() {
    let Some(binary) = find_chromium() else {
        eprintln!("\n**************** SKIPPED: chromium not found (apt-get install chromium, or set MINOS_CHROMIUM) ****************\n");
        return;
    };
    let dir = fixture(
        "browser",
        FixtureOptions {
            invalid: true,
            seed: 11,
            ..Default::default()
        },
    );
    write_run_report(&dir).unwrap();
    let profile = common::fresh_dir("browser-profile");

    // The index page: screenshot, then look for the verdict badge and the plots' colours.
    let shot = dir.join("screenshot-index.png");
    let url = format!("file://{}", dir.join("index.html").display());
    chromium(
        &binary,
        &profile,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,6000",
        ],
        &url,
    );
    assert!(shot.is_file(), "no screenshot written");
    let red = count_pixels(&shot, |px| px[0] == 0xc6 && px[1] == 0x28 && px[2] == 0x28);
    assert!(red > 500, "verdict badge not rendered ({red} red pixels)");
    // The kill shading (fault colour at 16% on white) appears only inside the plots.
    let kill_shade = count_pixels(&shot, |px| {
        px[0] > 240 && (215..=228).contains(&px[1]) && (215..=228).contains(&px[2])
    });
    assert!(
        kill_shade > 2000,
        "plots with fault shading not rendered ({kill_shade} pixels)"
    );

    // The timeline: its script sets the range label once it has drawn.
    let dom = chromium(
        &binary,
        &profile,
        &["--dump-dom", "--virtual-time-budget=5000"],
        &format!("file://{}", dir.join("timeline.html").display()),
    );
    assert!(
        dom.contains("showing 0.00 ms"),
        "timeline script did not run: {}",
        &dom[..dom.len().min(400)]
    );
    assert!(dom.contains("one lane per process number"));
    let _ = read(&dir, "timeline.html");
}
