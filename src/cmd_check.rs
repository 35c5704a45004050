//! `minos check FILE...`: decides whether stored histories (ours or other tools') are
//! linearizable. One verdict line per file; an explanation for each invalid one; exit code
//! = the worst verdict (254 if any file is malformed).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use minos_checker::deadline::{Deadline, TimeUp};
use minos_checker::history::{self, Format, History, Independent, ReadError};
use minos_checker::{CheckOptions, CheckReport, Verdict};

use crate::exit;

const MODEL_HELP: &str =
    "Model (sequential specification). Without it the model is picked from the ops' f: \
add -> counter, txn -> multi-register, get/put/append -> kv, acquire/release -> mutex, \
enqueue/dequeue -> fifo-queue, cas -> cas-register, read/write -> register. Models: register, \
cas-register, counter, kv, multi-register, mutex, set, unordered-queue, fifo-queue";

#[derive(Args)]
#[command(
    after_help = "Exit codes: 0 valid, 1 invalid, 2 unknown (a budget ran out), 254 bad arguments or malformed input.\n\
Semantics: fail ops did not happen; info ops (or invokes without completion) may take effect at any time \
after their invoke, or never. Histories whose ops carry keys are checked per key unless --no-partition. In EDN histories an ok read of nil means \
the value was not observed (Knossos); in etcd logs and jsonl null is a value (absent).\n\
Several files: one verdict line each; the exit code is the worst (254 if any file is malformed).\n\
--init defaults: where the format defines the start, that (Porcupine etcd logs: absent, null, model \
cas-register); else counter/register/cas-register 0 (an absent key of our store reads 0; pass --init null for \
keys that start absent), kv \"\", mutex false, set/queues []. For keyed histories a JSON object gives each key \
its own initial value (not for multi-register, whose state is the object)."
)]
pub struct CheckArgs {
    /// History files: history.jsonl, Jepsen/Knossos EDN, Porcupine etcd or kv logs.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[arg(long, help = MODEL_HELP)]
    model: Option<String>,
    /// Initial state as JSON (null = absent).
    #[arg(long)]
    init: Option<String>,
    /// auto, jsonl, edn, etcd-log, porcupine-kv.
    #[arg(long, default_value = "auto")]
    format: String,
    /// Check the whole history as one object (the state is the whole map).
    #[arg(long)]
    no_partition: bool,
    /// Jepsen/Knossos EDN: read every value as jepsen.independent's [key value] pair and check
    /// each key on its own (an error if some value is not such a pair). Without this flag an EDN
    /// history is split when every client value is [key value] and some invoke is [key nil].
    #[arg(long, conflicts_with = "no_independent")]
    independent: bool,
    /// Never split EDN [key value] values by key.
    #[arg(long)]
    no_independent: bool,
    /// Seconds (or 500ms, 10s, 2m) per file before the verdict is unknown.
    #[arg(long, default_value = "60")]
    time_limit: String,
    /// Megabytes of search memory per file before the verdict is unknown.
    #[arg(long, default_value_t = 1024)]
    memory_limit: u64,
    /// Searches of independent keys run at once [default: number of cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Print the report as JSON (one file: the report; several: an array of {file, report|error}).
    #[arg(long)]
    json: bool,
    /// Also write a self-contained HTML view of the history to this file (one history file
    /// only): per-process lanes of ops, the linearization found (numbered, with the model state
    /// after each op on hover), the failing ops in red, "jump to first error", a key selector.
    /// Written for valid, invalid and unknown verdicts; not for malformed input.
    #[arg(long, value_name = "OUT.html")]
    html: Option<PathBuf>,
}

pub fn main(args: CheckArgs) -> i32 {
    match run(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("minos check: {message}");
            exit::BAD_INPUT
        }
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(number) = text.strip_suffix("ms") {
        (number, 0.001)
    } else if let Some(number) = text.strip_suffix('s') {
        (number, 1.0)
    } else if let Some(number) = text.strip_suffix('m') {
        (number, 60.0)
    } else if let Some(number) = text.strip_suffix('h') {
        (number, 3600.0)
    } else {
        (text, 1.0)
    };
    let seconds: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("--time-limit {text:?} is not a duration"))?;
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(format!("--time-limit {text:?} must be positive"));
    }
    Ok(Duration::from_secs_f64(seconds * scale))
}

/// Picks a model from the ops' f when `--model` is absent.
fn infer_model(history: &History) -> Option<&'static str> {
    if history.ops.is_empty() {
        // No client op: linearizable under every model.
        return Some("register");
    }
    let has = |names: &[&str]| history.ops.iter().any(|op| names.contains(&op.f.as_str()));
    if has(&["add"]) {
        Some("counter")
    } else if has(&["txn"]) {
        Some("multi-register")
    } else if has(&["get", "put", "append"]) {
        Some("kv")
    } else if has(&["acquire", "release"]) {
        Some("mutex")
    } else if has(&["enqueue", "dequeue"]) {
        Some("fifo-queue")
    } else if has(&["cas"]) {
        Some("cas-register")
    } else if has(&["read", "write"]) {
        Some("register")
    } else {
        None
    }
}

fn run(args: &CheckArgs) -> Result<i32, String> {
    let format = Format::from_name(&args.format).ok_or_else(|| {
        format!(
            "unknown --format {:?} (auto, jsonl, edn, etcd-log, porcupine-kv)",
            args.format
        )
    })?;
    let init = args
        .init
        .as_deref()
        .map(|text| {
            serde_json::from_str(text)
                .map_err(|error| format!("--init {text:?} is not JSON: {error}"))
        })
        .transpose()?;
    let time_limit = parse_duration(&args.time_limit)?;
    if args.memory_limit == 0 {
        return Err("--memory-limit must be at least 1 MB".to_string());
    }
    if let Some(out) = &args.html {
        check_html_path(out, args.files.len())?;
    }
    let mut worst = exit::VALID;
    let mut json_items = Vec::new();
    for (number, file) in args.files.iter().enumerate() {
        let last_file = number + 1 == args.files.len();
        let name = file.display().to_string();
        let independent = if args.independent {
            Independent::Yes
        } else if args.no_independent {
            Independent::No
        } else {
            Independent::Auto
        };
        // The limit covers reading and splitting the file too, not only the search.
        let file_started = std::time::Instant::now();
        let deadline = Deadline(Some(file_started + time_limit));
        let outcome = history::read_file_until(file, format, independent, &deadline)
            .map_err(|error| match error {
                // Out of time before the history was read whole: unknown, never a verdict.
                ReadError::TimeUp(TimeUp(phase)) => Ok(CheckReport::cut_before_checking(
                    args.model
                        .as_deref()
                        .or_else(|| format.default_model())
                        .unwrap_or("(not chosen)"),
                    phase,
                    file_started.elapsed().as_millis() as u64,
                )),
                ReadError::Input(error) => Err(error.to_string()),
            })
            .and_then(|history| {
                if history.ops.is_empty() {
                    // Trivially linearizable, but more likely a wrong or truncated file.
                    eprintln!("minos check: warning: {name} holds no client operations");
                }
                let model = match &args.model {
                    Some(model) => model.clone(),
                    None => history
                        .format
                        .and_then(Format::default_model)
                        .or_else(|| infer_model(&history))
                        .ok_or_else(|| {
                            Err(format!(
                                "{name}: cannot pick a model from the ops; pass --model"
                            ))
                        })?
                        .to_string(),
                };
                let options = CheckOptions {
                    model,
                    init: init.clone(),
                    partition: !args.no_partition,
                    time_limit: Some(time_limit.saturating_sub(file_started.elapsed())),
                    memory_limit_bytes: Some(args.memory_limit.saturating_mul(1024 * 1024)),
                    threads: args
                        .threads
                        .unwrap_or_else(|| CheckOptions::new("").threads)
                        .max(1),
                    linearization: args.html.is_some(),
                    ..CheckOptions::new("")
                };
                let checked = minos_checker::check(&history, &options)
                    .map(|mut report| {
                        let mut html_error = None;
                        if let Some(out) = &args.html {
                            html_error = write_html(out, &history, &report).err();
                            // The orders are for the page; the printed report stays as it was.
                            for partition in &mut report.partitions {
                                partition.linearization = None;
                            }
                        }
                        (report, history.independent, html_error)
                    })
                    .map_err(|error| match error {
                        // `file:line: ...`, like every other input error.
                        minos_checker::CheckError::Op { line, .. } if line > 0 => {
                            Err(format!("{name}:{error}"))
                        }
                        error => Err(format!("{name}: {error}")),
                    });
                if last_file {
                    // The process ends after this file: freeing a large history op by op
                    // cost about 5% of its check, for nothing.
                    std::mem::forget(history);
                }
                checked
            });
        let outcome = match outcome {
            Ok(checked) => Ok(checked),
            // Cut before the history was whole: no view to draw.
            Err(Ok(cut_report)) => Ok((cut_report, false, None)),
            Err(Err(message)) => Err(message),
        };
        match outcome {
            Ok((report, independent, html_error)) => {
                let code = match report.verdict {
                    Verdict::Valid => exit::VALID,
                    Verdict::Invalid => exit::INVALID,
                    Verdict::Unknown => exit::UNKNOWN,
                };
                worst = worse(worst, code);
                if let Some(message) = html_error {
                    eprintln!("minos check: {message}");
                    worst = worse(worst, exit::BAD_INPUT);
                }
                if args.json {
                    json_items.push(serde_json::json!({"file": name, "report": report}));
                } else {
                    print_report(&name, &report, independent);
                }
            }
            Err(message) => {
                worst = worse(worst, exit::BAD_INPUT);
                eprintln!("minos check: {message}");
                if args.json {
                    json_items.push(serde_json::json!({"file": name, "error": message}));
                }
            }
        }
    }
    if args.json {
        let value = if args.files.len() == 1 {
            json_items
                .pop()
                .map(|mut item| item.get_mut("report").map(std::mem::take).unwrap_or(item))
        } else {
            Some(serde_json::Value::Array(json_items))
        };
        if let Some(value) = value {
            out(&serde_json::to_string_pretty(&value).expect("JSON values serialize"));
        }
    }
    Ok(worst)
}

/// Refuses, before any checking, an `--html` path that cannot be written.
fn check_html_path(out: &std::path::Path, files: usize) -> Result<(), String> {
    if files != 1 {
        return Err(format!(
            "--html writes the view of one history, but {files} files were given"
        ));
    }
    if out.is_dir() {
        return Err(format!("--html {}: is a directory", out.display()));
    }
    let parent = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => std::path::Path::new("."),
    };
    if !parent.is_dir() {
        return Err(format!(
            "--html {}: directory {} does not exist",
            out.display(),
            parent.display()
        ));
    }
    Ok(())
}

/// Writes the view (a failure to write makes the exit code 254, after the verdict is printed).
fn write_html(
    out: &std::path::Path,
    history: &History,
    report: &CheckReport,
) -> Result<(), String> {
    minos_reports::check_view::write_check_view(out, history, report)
        .map(|()| eprintln!("minos check: wrote {}", out.display()))
        .map_err(|error| format!("cannot write --html {}: {error}", out.display()))
}

/// invalid > unknown > valid; malformed input beats everything.
fn worse(current: i32, next: i32) -> i32 {
    let rank = |code: i32| match code {
        exit::BAD_INPUT => 3,
        exit::INVALID => 2,
        exit::UNKNOWN => 1,
        _ => 0,
    };
    if rank(next) > rank(current) {
        next
    } else {
        current
    }
}

fn print_report(name: &str, report: &CheckReport, independent: bool) {
    let decided = report
        .partitions
        .iter()
        .filter(|partition| partition.verdict != Verdict::Unknown)
        .count();
    let states: u64 = report
        .partitions
        .iter()
        .map(|partition| partition.states_explored)
        .sum();
    let mut line = format!(
        "{}: {name} (model {}, {} ops, {} object{}{}, {states} states, {} ms)",
        report.verdict.as_str(),
        report.model,
        report.ops_count,
        report.partitions.len(),
        if report.partitions.len() == 1 {
            ""
        } else {
            "s"
        },
        if independent {
            " by [key value] (jepsen.independent)"
        } else {
            ""
        },
        report.elapsed_ms
    );
    if report.unknown_reason.is_some() {
        line.push_str(&format!(
            " - {}; {decided} of {} objects decided",
            report.unknown_reason_text(),
            report.partitions.len()
        ));
    }
    out(&line);
    if report.verdict != Verdict::Valid {
        out(&report.explanation_text());
    }
}

/// Prints a line; a closed stdout (e.g. `| head`) is not an error worth a panic.
fn out(text: &str) {
    let _ = writeln!(std::io::stdout(), "{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_seconds_and_units() {
        assert_eq!(parse_duration("60").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn exit_code_is_the_worst_verdict() {
        assert_eq!(worse(exit::VALID, exit::UNKNOWN), exit::UNKNOWN);
        assert_eq!(worse(exit::UNKNOWN, exit::INVALID), exit::INVALID);
        assert_eq!(worse(exit::INVALID, exit::UNKNOWN), exit::INVALID);
        assert_eq!(worse(exit::INVALID, exit::BAD_INPUT), exit::BAD_INPUT);
        assert_eq!(worse(exit::BAD_INPUT, exit::VALID), exit::BAD_INPUT);
    }

    #[test]
    fn model_is_inferred_from_the_ops() {
        let history = |fs: &[&str]| {
            let text: String = fs
                .iter()
                .enumerate()
                .map(|(index, f)| {
                    format!("{{\"index\":{index},\"time\":0,\"process\":{index},\"type\":\"invoke\",\"f\":\"{f}\",\"value\":null}}\n")
                })
                .collect();
            history::parse_jsonl(&text, "h").unwrap()
        };
        assert_eq!(
            infer_model(&history(&["read", "add", "cas"])),
            Some("counter")
        );
        assert_eq!(
            infer_model(&history(&["read", "cas"])),
            Some("cas-register")
        );
        assert_eq!(infer_model(&history(&["read", "write"])), Some("register"));
        assert_eq!(infer_model(&history(&["get", "append"])), Some("kv"));
        assert_eq!(infer_model(&history(&["frobnicate"])), None);
    }
}
