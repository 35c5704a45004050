//! The counterexample drawn for a person: the ops of the failing key around the failure as
//! bars on per-process lanes (inline SVG), numbered in the order the checker linearized them,
//! the op that cannot be placed in red, then the same as text: the longest linearizable prefix,
//! the model state after it, and why each candidate is illegal.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::escape::{cut_html, html, truncate};
use crate::history::{value_text, History, Op, Outcome};
use crate::results::Fault;

/// Most ops drawn around the failure; the nearest to the stuck op are kept.
const DRAWN_OPS_MAX: usize = 36;
/// Most ops of the linearized prefix drawn: its last ones, just before the failure.
const PREFIX_DRAWN_MAX: usize = 12;
const SVG_WIDTH: f64 = 1100.0;
const LANE_LABEL_W: f64 = 80.0;
const LANE_H: f64 = 30.0;
/// Narrowest event column: room for a two-digit order number.
const MIN_STEP: f64 = 30.0;

/// The counterexample section of index.html.
pub fn section_html(counterexample: &Value, history: &History, faults: &[Fault]) -> String {
    let mut out = String::new();
    let key = counterexample
        .get("key")
        .filter(|k| !k.is_null())
        .map(value_text);
    out.push_str("<section id=\"counterexample\"><h2>Counterexample</h2>\n");
    out.push_str(&format!(
        "<p class=\"lead\">{} No order of these operations is consistent with the model: the checker \
         linearized the ops numbered <b>1…n</b> (in that order) and then found no op that can legally come next. \
         The op drawn in <b class=\"bad\">red</b> cannot be placed. <a href=\"timeline.html#counterexample\">See it on the full timeline →</a></p>\n",
        match &key {
            Some(k) => format!("Key <code>{}</code>.", cut_html(k, 80)),
            None => String::new(),
        }
    ));
    // The same paragraph heads the "Why invalid" box, which holds the element id.
    out.push_str(
        &faults_at_violation_html(counterexample, history, faults).replacen(
            "id=\"faults-at-violation\"",
            "class=\"cex-faults\"",
            1,
        ),
    );
    out.push_str(&details_html(counterexample, history));
    out.push_str("</section>\n");
    out
}

/// The counterexample without the run's context: the diagram, the longest linearizable
/// prefix, the state after it, why no op can come next, and the checker's text. Also the body
/// of `minos check --html`'s error section.
pub fn details_html(counterexample: &Value, history: &History) -> String {
    let mut out = String::new();
    let key = counterexample
        .get("key")
        .filter(|k| !k.is_null())
        .map(value_text);
    let prefix: Vec<&Value> = counterexample
        .get("linearized_prefix")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let stuck: Vec<&Value> = counterexample
        .get("stuck")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    out.push_str(&diagram_svg(
        counterexample,
        key.as_deref(),
        &prefix,
        &stuck,
        history,
    ));

    out.push_str("<div class=\"cols\"><div>\n<h3>Longest linearizable prefix</h3>\n");
    if prefix.is_empty() {
        out.push_str("<p>(empty: not even the first op can be placed)</p>\n");
    } else {
        out.push_str("<table><tr><th>#</th><th>index</th><th>process</th><th>f</th><th>value</th><th>result</th><th>type</th></tr>\n");
        for (i, op) in prefix.iter().enumerate() {
            out.push_str(&format!("<tr><td>{}</td>{}</tr>\n", i + 1, op_cells(op)));
        }
        out.push_str("</table>\n");
    }
    let state = counterexample
        .get("state")
        .map(value_text)
        .unwrap_or_else(|| "(not recorded)".to_string());
    out.push_str(&format!(
        "<p>Model state after the prefix: <code class=\"state\">{}</code></p>\n</div><div>\n",
        cut_html(&state, 2000)
    ));
    out.push_str("<h3>Why no op can come next</h3>\n");
    if stuck.is_empty() {
        out.push_str("<p>(the checker recorded no candidates)</p>\n");
    } else {
        out.push_str("<table><tr><th>index</th><th>process</th><th>f</th><th>value</th><th>result</th><th>type</th><th>why illegal</th></tr>\n");
        for candidate in &stuck {
            let op = candidate.get("op").unwrap_or(&Value::Null);
            let reason = candidate.get("reason").map(value_text).unwrap_or_default();
            out.push_str(&format!(
                "<tr class=\"stuck\">{}<td class=\"reason\">{}</td></tr>\n",
                op_cells(op),
                cut_html(&reason, 2000)
            ));
        }
        out.push_str("</table>\n");
    }
    out.push_str("</div></div>\n");
    if let Some(text) = counterexample
        .get("text")
        .map(value_text)
        .filter(|t| !t.is_empty())
    {
        out.push_str(&format!(
            "<h3>As text</h3>\n<pre class=\"cex\">{}</pre>\n",
            html(&truncate(&text, 20_000))
        ));
    }
    out
}

fn op_cells(op: &Value) -> String {
    let field = |name: &str| op.get(name).map(value_text).unwrap_or_default();
    format!(
        "<td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td>",
        html(&field("index")),
        html(&field("process")),
        html(&field("f")),
        cut_html(&field("invoke_value"), 200),
        cut_html(&field("result"), 200),
        html(&field("type"))
    )
}

/// The ops the diagram draws, the role of each history index, and the first prefix number
/// drawn: the stuck ops, the end of the linearized prefix (the start of a long prefix says
/// nothing about the failure), and other ops of the window nearest to the failure.
fn select_drawn<'h>(
    c: &Value,
    key: Option<&str>,
    prefix: &[&Value],
    stuck: &[&Value],
    history: &'h History,
) -> (Vec<&'h Op>, BTreeMap<u64, Role>, usize) {
    let index_of = |v: &Value| v.get("index").and_then(Value::as_u64);
    let mut role: BTreeMap<u64, Role> = BTreeMap::new();
    for (i, op) in prefix.iter().enumerate() {
        if let Some(ix) = index_of(op) {
            role.insert(ix, Role::Prefix(i + 1));
        }
    }
    for candidate in stuck {
        if let Some(ix) = candidate.get("op").and_then(index_of) {
            role.insert(ix, Role::Stuck);
        }
    }
    let role_of = |op: &Op| {
        role.get(&op.invoke_index)
            .or_else(|| op.complete_index.and_then(|c| role.get(&c)))
            .copied()
            .unwrap_or(Role::Other)
    };
    let window = c.get("window").and_then(|w| {
        Some((
            w.get("first_index")?.as_u64()?,
            w.get("last_index")?.as_u64()?,
        ))
    });
    let in_window = |op: &Op| match window {
        Some((first, last)) => {
            let c = op.complete_index.unwrap_or(u64::MAX);
            (first..=last).contains(&op.invoke_index) || (first..=last).contains(&c)
        }
        None => false,
    };
    let stuck_time = history
        .ops
        .iter()
        .find(|op| role_of(op) == Role::Stuck)
        .map(|op| op.invoke_time_ns);
    let prefix_shown_from = prefix.len().saturating_sub(PREFIX_DRAWN_MAX) + 1;
    let centre = stuck_time.unwrap_or(0);
    let mut chosen: Vec<&Op> = history
        .ops
        .iter()
        .filter(|op| key.is_none() || op.key.as_deref() == key)
        .filter(|op| match role_of(op) {
            Role::Stuck => true,
            Role::Prefix(n) => n >= prefix_shown_from,
            Role::Other => in_window(op),
        })
        .collect();
    if chosen.len() > DRAWN_OPS_MAX {
        chosen.sort_by_key(|op| {
            (
                role_of(op) == Role::Other,
                op.invoke_time_ns.abs_diff(centre),
            )
        });
        chosen.truncate(DRAWN_OPS_MAX);
        chosen.sort_by_key(|op| op.invoke_index);
    }
    (chosen, role, prefix_shown_from)
}

/// Role of an op: looked up by its invoke or completion index.
fn role_in(role: &BTreeMap<u64, Role>, op: &Op) -> Role {
    role.get(&op.invoke_index)
        .or_else(|| op.complete_index.and_then(|c| role.get(&c)))
        .copied()
        .unwrap_or(Role::Other)
}

/// The time span (invoke of the first to completion of the last) of the ops the diagram
/// draws, so that the timeline can open on exactly that window.
pub fn drawn_span_ns(c: &Value, history: &History) -> Option<(u64, u64)> {
    let (key, prefix, stuck) = parts(c);
    let (chosen, _, _) = select_drawn(c, key.as_deref(), &prefix, &stuck, history);
    let lo = chosen.iter().map(|op| op.invoke_time_ns).min()?;
    let hi = chosen
        .iter()
        .map(|op| op.complete_time_ns.unwrap_or(history.end_time_ns))
        .max()?;
    Some((lo, hi.max(lo)))
}

/// The failing (stuck) ops' time span: from the first invocation to the last completion.
pub fn stuck_span_ns(c: &Value, history: &History) -> Option<(u64, u64)> {
    let (_, _, stuck) = parts(c);
    let indexes: Vec<u64> = stuck
        .iter()
        .filter_map(|s| s.get("op")?.get("index")?.as_u64())
        .collect();
    let ops: Vec<&Op> = history
        .ops
        .iter()
        .filter(|op| {
            indexes.contains(&op.invoke_index)
                || op.complete_index.is_some_and(|c| indexes.contains(&c))
        })
        .collect();
    let lo = ops.iter().map(|op| op.invoke_time_ns).min()?;
    let hi = ops
        .iter()
        .map(|op| op.complete_time_ns.unwrap_or(history.end_time_ns))
        .max()?;
    Some((lo, hi.max(lo)))
}

fn parts(c: &Value) -> (Option<String>, Vec<&Value>, Vec<&Value>) {
    let key = c.get("key").filter(|k| !k.is_null()).map(value_text);
    let list = |name: &str| -> Vec<&Value> {
        c.get(name)
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    };
    (key, list("linearized_prefix"), list("stuck"))
}

/// Which faults were in force while the failing ops ran, and since when: a paragraph for the
/// "Why invalid" box and the counterexample section.
pub fn faults_at_violation_html(c: &Value, history: &History, faults: &[Fault]) -> String {
    let Some((lo, hi)) = stuck_span_ns(c, history) else {
        return String::new();
    };
    let end_ns = history.end_time_ns.max(hi);
    let active: Vec<&Fault> = faults
        .iter()
        .filter(|f| f.start_ns <= hi && f.stop_or(end_ns) >= lo)
        .collect();
    let s = |ns: u64| format!("{:.3} s", ns as f64 / 1e9);
    let mut out = format!(
        "<p id=\"faults-at-violation\">The failing op ran from {} to {}. ",
        s(lo),
        s(hi)
    );
    if active.is_empty() {
        out.push_str("<b>No fault was in force</b> then");
        if let Some(last) = faults
            .iter()
            .filter(|f| f.stop_or(end_ns) < lo)
            .max_by_key(|f| f.stop_or(end_ns))
        {
            out.push_str(&format!(
                " (the last one, {} {}, healed at {}, {} before)",
                html(&last.kind),
                html(&truncate(&last.targets_label(), 120)),
                s(last.stop_or(end_ns)),
                s(lo - last.stop_or(end_ns))
            ));
        }
        out.push_str(".</p>\n");
        return out;
    }
    out.push_str("Faults in force then:</p>\n<ul>\n");
    for f in active {
        let since = if f.start_ns <= lo {
            format!(
                "since {} ({} before the op)",
                s(f.start_ns),
                s(lo - f.start_ns)
            )
        } else {
            format!("from {} (while the op was running)", s(f.start_ns))
        };
        let until = match f.stop_ns {
            Some(stop) => format!("healed at {}", s(stop)),
            None => "never healed".to_string(),
        };
        out.push_str(&format!(
            "<li><b>{}</b> {}: {since}, {until}</li>\n",
            html(&f.kind),
            html(&truncate(&f.targets_label(), 200))
        ));
    }
    out.push_str("</ul>\n");
    out
}

/// How an op on the diagram is drawn.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    Prefix(usize),
    Stuck,
    Other,
}

fn diagram_svg(
    c: &Value,
    key: Option<&str>,
    prefix: &[&Value],
    stuck: &[&Value],
    history: &History,
) -> String {
    if history.ops.is_empty() {
        return "<p class=\"missing\">The history is not available, so the counterexample is shown as text only.</p>\n".to_string();
    }
    let (chosen, role, prefix_shown_from) = select_drawn(c, key, prefix, stuck, history);
    let role_of = |op: &Op| role_in(&role, op);
    let omitted_prefix = prefix_shown_from - 1;
    if chosen.is_empty() {
        return "<p class=\"missing\">The ops named by the counterexample are not in the history file, so it is shown as text only.</p>\n".to_string();
    }
    let t_lo = chosen.iter().map(|op| op.invoke_time_ns).min().unwrap_or(0);
    let t_hi = chosen
        .iter()
        .map(|op| op.complete_time_ns.unwrap_or(history.end_time_ns))
        .max()
        .unwrap_or(t_lo + 1)
        .max(t_lo + 1);
    let mut processes: Vec<u64> = chosen.iter().map(|op| op.process).collect();
    processes.sort_unstable();
    processes.dedup();
    let lane_of: BTreeMap<u64, usize> =
        processes.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    // The x axis is the order of events (invocations and completions), not time: what decides
    // linearizability is which ops overlap, and a millisecond op next to a one-second timeout
    // would otherwise be invisible. Pending ops run to the right edge.
    let mut events: Vec<u64> = chosen
        .iter()
        .flat_map(|op| [Some(op.invoke_index), op.complete_index])
        .flatten()
        .collect();
    events.sort_unstable();
    events.dedup();
    let rank_of: BTreeMap<u64, usize> = events.iter().enumerate().map(|(i, e)| (*e, i)).collect();
    let step = ((SVG_WIDTH - LANE_LABEL_W - 10.0) / (events.len() + 1) as f64).max(MIN_STEP);
    let plot_w = step * (events.len() + 1) as f64;
    let svg_width = LANE_LABEL_W + plot_w + 10.0;
    let x = |index: Option<u64>| match index.and_then(|i| rank_of.get(&i)) {
        Some(rank) => LANE_LABEL_W + (*rank as f64 + 0.5) * step,
        None => LANE_LABEL_W + plot_w,
    };
    let height = 30.0 + processes.len() as f64 * LANE_H + 10.0;
    let mut svg = format!(
        "<svg class=\"cexsvg\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{svg_width}\" height=\"{height}\" viewBox=\"0 0 {svg_width} {height}\" font-family=\"sans-serif\" font-size=\"11\">\n"
    );
    let (from, to) = if history.times_are_indexes {
        (format!("#{}", t_lo / 1000), format!("#{}", t_hi / 1000))
    } else {
        (
            format!("{:.3} s", t_lo as f64 / 1e9),
            format!("{:.3} s", t_hi as f64 / 1e9),
        )
    };
    svg.push_str(&format!(
        "<text x=\"{LANE_LABEL_W}\" y=\"14\" fill=\"#555\">{from} → events in history order (not to time scale) → {to}</text>\n"
    ));
    for (i, p) in processes.iter().enumerate() {
        let y = 24.0 + i as f64 * LANE_H;
        if i % 2 == 1 {
            svg.push_str(&format!("<rect x=\"{LANE_LABEL_W}\" y=\"{y}\" width=\"{plot_w}\" height=\"{LANE_H}\" fill=\"#f5f5f5\"/>\n"));
        }
        svg.push_str(&format!(
            "<text x=\"4\" y=\"{}\">process {}</text>\n",
            y + 19.0,
            p
        ));
    }
    for op in &chosen {
        let r = role_of(op);
        let lane = lane_of[&op.process];
        let y = 24.0 + lane as f64 * LANE_H + 4.0;
        let a = x(Some(op.invoke_index)) - step * 0.3;
        // An op with an unknown outcome may take effect any time after its invocation, so its
        // bar runs to the right edge: that is how the checker may place it late.
        let end = match op.outcome {
            Outcome::Info | Outcome::Pending => None,
            _ => op.complete_index,
        };
        let b = (x(end) + step * 0.3).max(a + step * 0.6);
        let (fill, stroke, stroke_w) = match r {
            Role::Stuck => ("#ffcdd2", "#c62828", 3),
            Role::Prefix(_) => ("#c8e6c9", "#2e7d32", 1),
            Role::Other => ("#eeeeee", "#9e9e9e", 1),
        };
        let dash = if matches!(op.outcome, Outcome::Info | Outcome::Pending) {
            " stroke-dasharray=\"4 3\""
        } else {
            ""
        };
        let label = op_label(op, r);
        let title = format!(
            "#{} process {} {} {} → {} ({}), {:.3}–{} s",
            op.invoke_index,
            op.process,
            op.f,
            value_text(&op.invoke_value),
            value_text(&op.result),
            op.outcome.name(),
            op.invoke_time_ns as f64 / 1e9,
            op.complete_time_ns
                .map(|t| format!("{:.3}", t as f64 / 1e9))
                .unwrap_or_else(|| "never".into())
        );
        svg.push_str(&format!(
            "<g><title>{}</title><rect x=\"{a:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{}\" rx=\"3\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{stroke_w}\"{dash}/>",
            html(&truncate(&title, 400)),
            b - a,
            LANE_H - 8.0
        ));
        // Labels are clipped by width: a short bar gets only its number.
        let room_chars = ((b - a - 4.0) / 6.2) as usize;
        let number = match r {
            Role::Prefix(n) => format!("{n} "),
            Role::Stuck => "✗ ".to_string(),
            Role::Other => String::new(),
        };
        let short = format!("{number}{}", short_label(op));
        let text = [label, short, number.trim().to_string()]
            .into_iter()
            .find(|t| t.chars().count() <= room_chars)
            .unwrap_or_default();
        if !text.is_empty() {
            svg.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\"{}>{}</text>",
                a + 3.0,
                y + 15.0,
                if r == Role::Stuck {
                    " fill=\"#b71c1c\" font-weight=\"bold\""
                } else {
                    ""
                },
                html(&text)
            ));
        }
        svg.push_str("</g>\n");
    }
    svg.push_str("</svg>\n");
    let mut out = String::from("<div class=\"cexwrap\">\n");
    out.push_str(&svg);
    // The failing op spelled out under the picture, so nobody has to hunt for the red bar.
    for candidate in stuck {
        let op = candidate.get("op").unwrap_or(&Value::Null);
        let field = |name: &str| op.get(name).map(value_text).unwrap_or_default();
        out.push_str(&format!(
            "<p class=\"bad\">✗ op {} (process {}, {} {} → {}): {}</p>\n",
            html(&field("index")),
            html(&field("process")),
            html(&field("f")),
            html(&truncate(&field("invoke_value"), 60)),
            html(&truncate(&field("result"), 60)),
            html(&truncate(
                &candidate.get("reason").map(value_text).unwrap_or_default(),
                400
            ))
        ));
    }
    out.push_str(&format!(
        "<p class=\"caption\">{}{} ops of {} drawn (bars from invocation to completion, in event order; dashed = outcome unknown, so it may take effect until the end). \
         Green, numbered: the linearized prefix in the checker's order. Red: cannot be placed. Grey: other ops in the window. Hover a bar for details.</p>\n</div>\n",
        if omitted_prefix > 0 {
            format!("The first {omitted_prefix} ops of the linearized prefix are not drawn (see the table). ")
        } else {
            String::new()
        },
        chosen.len(),
        match key {
            Some(k) => format!("key <code>{}</code>", cut_html(k, 80)),
            None => "the history".to_string(),
        }
    ));
    out
}

/// A few characters saying what an op did: "+5", "r=174", "w=3", "cas 1→2".
fn short_label(op: &Op) -> String {
    let v = |value: &Value| truncate(&value_text(value), 12);
    let unknown = matches!(op.outcome, Outcome::Info | Outcome::Pending);
    let s = match op.f.as_str() {
        "add" => format!("+{}", v(&op.invoke_value)),
        "read" if op.outcome == Outcome::Ok => format!("r={}", v(&op.result)),
        "read" => "r".to_string(),
        "write" => format!("w={}", v(&op.invoke_value)),
        "cas" => match op.invoke_value.as_array() {
            Some(pair) if pair.len() == 2 => format!("cas {}→{}", v(&pair[0]), v(&pair[1])),
            _ => "cas".to_string(),
        },
        other => truncate(other, 8),
    };
    match op.outcome {
        Outcome::Fail => format!("{s} fail"),
        _ if unknown => format!("{s}?"),
        _ => s,
    }
}

fn op_label(op: &Op, role: Role) -> String {
    let mut s = match role {
        Role::Prefix(n) => format!("{n}. "),
        Role::Stuck => "✗ ".to_string(),
        Role::Other => String::new(),
    };
    let value = truncate(&value_text(&op.invoke_value), 20);
    let result = truncate(&value_text(&op.result), 20);
    match (op.f.as_str(), op.outcome) {
        ("read", Outcome::Ok) => s.push_str(&format!("read → {result}")),
        (_, Outcome::Pending) => s.push_str(&format!("{} {value} …", op.f)),
        (_, Outcome::Ok) => s.push_str(&format!("{} {value} → {result}", op.f)),
        (_, outcome) => s.push_str(&format!("{} {value} ({})", op.f, outcome.name())),
    }
    truncate(&s, 60)
}
