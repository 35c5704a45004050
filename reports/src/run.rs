//! One run's report: reads the run dir, computes what the pages need, and writes every
//! report file of DESIGN.md §5 (atomically), index.html last.

use std::fs;
use std::path::Path;

use crate::atomic::write_atomic;
use crate::faults::{fault_intervals, FaultSource};
use crate::history::{self, History};
use crate::plots::{self, PlotInput, PlotKind};
use crate::results::{RunResults, Verdict};
use crate::run_page::{self, RunPage};
use crate::timeline::{self, Highlight};
use crate::{exports, stats, ReportError};

/// The report files a run dir gets from this crate (history.csv only when missing).
pub const REPORT_FILES: [&str; 10] = [
    "index.html",
    "timeline.html",
    "latency-raw.png",
    "latency-raw.svg",
    "latency-quantiles.png",
    "latency-quantiles.svg",
    "rate.png",
    "rate.svg",
    "latency.csv",
    "junit.xml",
];

/// What a campaign page or store index needs to know about a run after its report is written.
#[derive(Clone, Debug)]
pub struct RunSummary {
    pub verdict: Verdict,
    pub ops_count: usize,
    pub faults_count: usize,
    pub end_time_ns: u64,
}

/// Loads results.json (tolerantly); `None` when the file does not exist.
pub fn load_results(run_dir: &Path) -> Result<Option<RunResults>, ReportError> {
    let path = run_dir.join("results.json");
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(RunResults::parse(&text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            Ok(Some(RunResults::empty_because("results.json is not UTF-8")))
        }
        Err(e) => Err(ReportError::io(&path, e)),
    }
}

/// Reads history.jsonl; `None` when it does not exist. Invalid UTF-8 is replaced, not fatal.
pub fn load_history_text(run_dir: &Path) -> Result<Option<String>, ReportError> {
    let path = run_dir.join("history.jsonl");
    match fs::read(&path) {
        Ok(bytes) => {
            Ok(Some(String::from_utf8(bytes).unwrap_or_else(|e| {
                String::from_utf8_lossy(e.as_bytes()).into_owned()
            })))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ReportError::io(&path, e)),
    }
}

/// Writes only the machine-readable exports of a run dir, latency.csv and junit.xml: what
/// CI consumes, cheap enough for runs that skip the HTML and plots (`--no-report`).
pub fn write_run_exports(run_dir: &Path) -> Result<(), ReportError> {
    let Some(results) = load_results(run_dir)? else {
        return Err(ReportError::NotARunDir(run_dir.to_path_buf()));
    };
    let history: History = load_history_text(run_dir)?
        .as_deref()
        .map(history::parse_jsonl)
        .unwrap_or_default();
    let latency = exports::latency_csv(&history)
        .map_err(|e| ReportError::Plot(format!("latency.csv: {e}")))?;
    write_atomic(&run_dir.join("latency.csv"), &latency)?;
    let title = run_title(&results, run_dir);
    let junit = exports::junit_xml(&results, &title, history.ops.len());
    write_atomic(&run_dir.join("junit.xml"), junit.as_bytes())
}

/// Writes the report of one run dir; `notes` are shown at the top of index.html.
pub fn write_run_report_with_notes(
    run_dir: &Path,
    notes: &[String],
) -> Result<RunSummary, ReportError> {
    write_run_report_from(run_dir, notes, None)
}

/// As `write_run_report_with_notes`; `checked_text`, when given, is the history the checker
/// read (re-checks): every file, history.csv included, is made from it, not read again.
pub fn write_run_report_from(
    run_dir: &Path,
    notes: &[String],
    checked_text: Option<String>,
) -> Result<RunSummary, ReportError> {
    let results = load_results(run_dir)?;
    let rewrite_csv = checked_text.is_some();
    let history_text = match checked_text {
        Some(text) => Some(text),
        None => load_history_text(run_dir)?,
    };
    if results.is_none() && history_text.is_none() {
        return Err(ReportError::NotARunDir(run_dir.to_path_buf()));
    }
    let mut notes = notes.to_vec();
    let results = results.unwrap_or_else(|| {
        notes.push(
            "results.json is missing: verdict, options and reproduce command unknown.".to_string(),
        );
        RunResults::empty_because("results.json is missing")
    });
    let history_present = history_text.is_some();
    let history: History = history_text
        .as_deref()
        .map(history::parse_jsonl)
        .unwrap_or_default();

    if let Some(text) = &history_text {
        if rewrite_csv || !run_dir.join("history.csv").exists() {
            let csv = exports::history_csv(text)
                .map_err(|e| ReportError::Plot(format!("history.csv: {e}")))?;
            write_atomic(&run_dir.join("history.csv"), &csv)?;
        }
    }
    let latency = exports::latency_csv(&history)
        .map_err(|e| ReportError::Plot(format!("latency.csv: {e}")))?;
    write_atomic(&run_dir.join("latency.csv"), &latency)?;

    let (faults, source) = fault_intervals(results.faults.as_ref(), &history.nemesis);
    let end_ns = faults
        .iter()
        .map(|f| f.stop_ns.unwrap_or(f.start_ns))
        .max()
        .unwrap_or(0)
        .max(history.end_time_ns);
    let bucket_ns = stats::bucket_ns(end_ns);
    let input = PlotInput {
        history: &history,
        faults: &faults,
        bucket_ns,
        violation_ns: results
            .counterexample()
            .and_then(|c| crate::counterexample::stuck_span_ns(c, &history))
            .map(|(invoked_ns, _)| invoked_ns),
    };
    let mut plots_png = Vec::new();
    for kind in PlotKind::ALL {
        let files = plots::render(kind, &input).map_err(ReportError::Plot)?;
        write_atomic(&run_dir.join(format!("{}.png", kind.stem())), &files.png)?;
        write_atomic(
            &run_dir.join(format!("{}.svg", kind.stem())),
            files.svg.as_bytes(),
        )?;
        plots_png.push((kind, files.png));
    }

    let title = run_title(&results, run_dir);
    let highlight = results.counterexample().map(|c| {
        let mut highlight = Highlight::from_counterexample(c);
        highlight.drawn_ns = crate::counterexample::drawn_span_ns(c, &history);
        highlight
    });
    let timeline = timeline::timeline_html(&title, &history, &faults, highlight.as_ref());
    write_atomic(&run_dir.join("timeline.html"), timeline.as_bytes())?;

    let junit = exports::junit_xml(&results, &title, history.ops.len());
    write_atomic(&run_dir.join("junit.xml"), junit.as_bytes())?;

    let files = listed_files(run_dir);
    let page = RunPage {
        title,
        results: &results,
        history: &history,
        history_present,
        faults: &faults,
        faults_from_nemesis: source == FaultSource::NemesisRecords,
        plots_png,
        bucket_ns,
        notes,
        files,
        up_links: up_links(run_dir),
        replay: results
            .reproduce
            .as_deref()
            .map(|cmd| replay_command(cmd, run_dir)),
    };
    write_atomic(
        &run_dir.join("index.html"),
        run_page::render(&page).as_bytes(),
    )?;
    Ok(RunSummary {
        verdict: results.shown_verdict(),
        ops_count: history.ops.len(),
        faults_count: faults.len(),
        end_time_ns: end_ns,
    })
}

/// Links from a run page up to its campaign (the nearest ancestor within three levels holding
/// campaign.json) and to the store (the campaign's parent, else the run's grandparent, as
/// `<store>/<test>/<run id>` lays runs out).
pub fn up_links(run_dir: &Path) -> Vec<(String, String)> {
    let mut links = Vec::new();
    let mut up = String::new();
    let mut store_up = "../../index.html".to_string();
    for ancestor in run_dir.ancestors().skip(1).take(3) {
        up.push_str("../");
        if ancestor.join("campaign.json").is_file() {
            links.push(("campaign".to_string(), format!("{up}index.html")));
            store_up = format!("{up}../index.html");
            break;
        }
    }
    links.push(("store".to_string(), store_up));
    links
}

/// The command a person should run to replay a run: a campaign run's recorded command writes
/// into the campaign (`--out <campaign> --no-report`), where a replay would change the
/// campaign's counts; the replay goes to the campaign's parent (the store) with its report.
/// A command run from inside its run dir (`cd DIR && ...`, scripted schedules) gets the `cd`
/// of where the run dir is now. Other commands are returned as recorded.
pub fn replay_command(reproduce: &str, run_dir: &Path) -> String {
    if let Some(rest) = after_cd(reproduce) {
        // Replayed from inside the run dir (a scripted schedule, named relative to it): the
        // `cd` goes to where the run dir is now, which may not be where it ran.
        let dir = std::path::absolute(run_dir).unwrap_or_else(|_| run_dir.to_path_buf());
        return format!("cd {} && {rest}", quote(&dir.display().to_string()));
    }
    let Some(campaign) = run_dir
        .ancestors()
        .skip(1)
        .take(3)
        .find(|a| a.join("campaign.json").is_file())
    else {
        return reproduce.to_string();
    };
    let Some(name) = campaign
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
    else {
        return reproduce.to_string();
    };
    let words: Vec<&str> = reproduce.split(' ').collect();
    let Some(at) = words.iter().position(|w| *w == "--out") else {
        return reproduce.to_string();
    };
    let Some(out) = words.get(at + 1) else {
        return reproduce.to_string();
    };
    let out_path = Path::new(out.trim_matches('\''));
    if out_path.file_name().map(|n| n.to_string_lossy()) != Some(name.as_str().into()) {
        return reproduce.to_string();
    }
    let parent = out_path
        .parent()
        .map(|p| p.display().to_string())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| ".".to_string());
    let mut replaced: Vec<String> = Vec::with_capacity(words.len());
    for (i, word) in words.iter().enumerate() {
        if *word == "--no-report" {
            continue;
        }
        if i == at + 1 {
            replaced.push(quote(&parent));
        } else {
            replaced.push(word.to_string());
        }
    }
    replaced.join(" ")
}

/// Quotes a word for a POSIX shell when it needs it.
fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The command after `cd DIR && ` of a command run from inside its run dir.
fn after_cd(command: &str) -> Option<&str> {
    let rest = command.strip_prefix("cd ")?;
    let after_dir = if let Some(quoted) = rest.strip_prefix('\'') {
        // A single-quoted dir ends at the quote before ` && `; `'\''` continues it.
        let end = quoted.find("' && ")?;
        &quoted[end + 1..]
    } else {
        &rest[rest.find(" && ")?..]
    };
    after_dir.strip_prefix(" && ")
}

/// "counter / 20261122T153000-seed42", falling back to the directory name.
pub fn run_title(results: &RunResults, run_dir: &Path) -> String {
    let dir_name = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    match (&results.test_name, &results.run_id) {
        (Some(t), Some(id)) => format!("{t} / {id}"),
        (None, Some(id)) => id.clone(),
        (Some(t), None) => format!("{t} / {dir_name}"),
        (None, None) => dir_name,
    }
}

/// The raw and report files present, for the page's file list: every visible file of the run
/// dir (history, results, schedule, reports...) and the node logs.
fn listed_files(run_dir: &Path) -> Vec<String> {
    let visible_files = |dir: &Path| -> Vec<String> {
        let Ok(entries) = fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        names
    };
    let mut files: Vec<String> = visible_files(run_dir);
    // index.html is written after this list is made, and is the page itself.
    files.retain(|f| f != "index.html");
    files.extend(
        visible_files(&run_dir.join("nodes"))
            .into_iter()
            .map(|n| format!("nodes/{n}")),
    );
    files
}
