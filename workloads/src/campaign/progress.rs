//! A single-line progress display on stderr for campaigns: bar, counts by verdict, distinct
//! failure signatures, elapsed time and ETA. On a terminal the line redraws in place (at most
//! ten times a second); otherwise (CI logs) a full line is printed every `log_interval`, so
//! logs stay short. Hand-written rather than indicatif: one line of output does not justify
//! its dependency tree on a 2-core build machine.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Progress;

pub struct ProgressLine {
    label: String,
    terminal: bool,
    log_interval: Duration,
    last_drawn: Mutex<Option<Instant>>,
}

impl ProgressLine {
    /// A progress line labelled `label`; draws in place when stderr is a terminal.
    pub fn new(label: &str) -> ProgressLine {
        ProgressLine {
            label: label.to_string(),
            terminal: std::io::stderr().is_terminal(),
            log_interval: Duration::from_secs(15),
            last_drawn: Mutex::new(None),
        }
    }

    /// Shows `progress` unless it was shown too recently (the final state is always shown).
    pub fn update(&self, progress: &Progress) {
        let now = Instant::now();
        let finished = progress.done_count >= progress.total_count;
        let mut last = self.last_drawn.lock().expect("drawing never panics");
        let min_gap = if self.terminal {
            Duration::from_millis(100)
        } else {
            self.log_interval
        };
        if !finished && last.is_some_and(|at| now.duration_since(at) < min_gap) {
            return;
        }
        *last = Some(now);
        let line = render(&self.label, progress);
        let mut stderr = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(stderr, "\r{line}\x1b[K");
        } else {
            let _ = writeln!(stderr, "{line}");
        }
        let _ = stderr.flush();
    }

    /// Ends the in-place line so later output starts on a fresh line.
    pub fn finish(&self) {
        if self.terminal {
            let _ = writeln!(std::io::stderr());
        }
    }

    /// Prints a message above the progress line.
    pub fn message(&self, text: &str) {
        let mut stderr = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(stderr, "\r\x1b[K");
        }
        let _ = writeln!(stderr, "{text}");
        // The line is redrawn at the next update.
        *self.last_drawn.lock().expect("drawing never panics") = None;
    }
}

/// One line: `label [#####.....] 41/100 41% | 39 valid, 2 invalid, 0 unknown, 0 errors | 1
/// failure kind | 12s, ETA 17s`.
pub fn render(label: &str, progress: &Progress) -> String {
    const WIDTH: u64 = 20;
    let total = progress.total_count.max(1);
    let filled = (progress.done_count * WIDTH / total).min(WIDTH) as usize;
    let bar = format!(
        "{}{}",
        "#".repeat(filled),
        ".".repeat(WIDTH as usize - filled)
    );
    let percent = progress.done_count * 100 / total;
    let eta = match progress.eta {
        Some(eta) if progress.done_count < progress.total_count => {
            format!(", ETA {}", format_duration(eta))
        }
        _ => String::new(),
    };
    format!(
        "{label} [{bar}] {}/{} {percent}% | {} valid, {} invalid, {} unknown, {} errors | {} failure kind{} | {}{eta}",
        progress.done_count,
        progress.total_count,
        progress.valid_count,
        progress.invalid_count,
        progress.unknown_count,
        progress.error_count,
        progress.signatures_count,
        if progress.signatures_count == 1 { "" } else { "s" },
        format_duration(progress.elapsed),
    )
}

/// `42s`, `3m05s`, `2h03m`.
pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds < 60 {
        format!("{seconds}s")
    } else if seconds < 3600 {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{}h{:02}m", seconds / 3600, seconds / 60 % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_bar_and_eta() {
        let progress = Progress {
            total_count: 100,
            done_count: 41,
            valid_count: 39,
            invalid_count: 2,
            signatures_count: 1,
            elapsed: Duration::from_secs(12),
            eta: Some(Duration::from_secs(185)),
            ..Progress::default()
        };
        let line = render("campaign", &progress);
        assert!(
            line.starts_with("campaign [########............] 41/100 41%"),
            "{line}"
        );
        assert!(
            line.contains(
                "39 valid, 2 invalid, 0 unknown, 0 errors | 1 failure kind | 12s, ETA 3m05s"
            ),
            "{line}"
        );
        assert_eq!(format_duration(Duration::from_secs(7380)), "2h03m");
    }
}
