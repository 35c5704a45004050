//! Whether the faults bit, as results.json's `fault_effects` records it: per fault window the
//! availability and the share of in-doubt ops on the run page, and on the campaign page which
//! fault kinds and swarm timing patterns the runs exercised and which kinds never changed
//! what the clients saw.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::escape::{html, truncate};
use crate::history::value_text;
use crate::plots::{css_color, fault_color};

/// Most windows listed on a run page; the rest are counted.
const WINDOWS_SHOWN_MAX: usize = 200;

fn pct(value: Option<f64>) -> String {
    value
        .map(|v| format!("{:.1}%", v * 100.0))
        .unwrap_or_else(|| "–".into())
}

/// The run page's "Did the faults bite?" section; empty when results.json has no
/// `fault_effects` (older runs, real clusters).
pub fn run_html(raw: &Value) -> String {
    let Some(effects) = raw.get("fault_effects").filter(|e| e.is_object()) else {
        return String::new();
    };
    let windows = effects
        .get("windows")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = String::from("<section id=\"fault-effects\"><h2>Did the faults bite?</h2>\n");
    let never: Vec<String> = effects
        .get("never_bit")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(value_text).collect())
        .unwrap_or_default();
    if !never.is_empty() {
        out.push_str(&format!(
            "<p class=\"warn\" id=\"never-bit\">Never bit (no fail or in-doubt answer, no slow answer in any of their windows): {}.</p>\n",
            html(&never.join(", "))
        ));
    }
    if windows.is_empty() {
        out.push_str("<p>No fault windows.</p>\n</section>\n");
        return out;
    }
    out.push_str(
        "<p class=\"caption\">Per fault window, the ops invoked in it: availability is ok / ops, in-doubt is info / ops. \
         A window <i>bit</i> when it had fail or info answers, or an answer slower than twice the slowest outside every window.</p>\n\
         <table><tr><th>kind</th><th>targets</th><th>start–stop (s)</th><th>ops</th><th>availability</th><th>in-doubt</th><th>max latency</th><th>bit</th></tr>\n",
    );
    let num = |w: &Value, name: &str| w.get(name).and_then(Value::as_f64);
    for w in windows.iter().take(WINDOWS_SHOWN_MAX) {
        let kind = w.get("kind").map(value_text).unwrap_or_default();
        let targets = w
            .get("targets")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(value_text).collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        let s = |name| {
            num(w, name)
                .map(|ms| format!("{:.3}", ms / 1e3))
                .unwrap_or_else(|| "?".into())
        };
        let bit = w.get("bit").and_then(Value::as_bool);
        out.push_str(&format!(
            "<tr><td><span class=\"swatch\" style=\"background:{}\"></span>{}</td><td class=\"long\" title=\"{}\">{}</td><td class=\"num\">{}–{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{} ms</td><td>{}</td></tr>\n",
            css_color(fault_color(&kind)),
            html(&kind),
            html(&targets),
            html(&truncate(&targets, 120)),
            s("start_ms"),
            s("stop_ms"),
            num(w, "ops").map(|v| v.to_string()).unwrap_or_default(),
            pct(num(w, "availability")),
            pct(num(w, "info_share")),
            num(w, "max_latency_ms").map(|v| v.to_string()).unwrap_or_default(),
            match bit {
                Some(true) => "<span class=\"ok\">yes</span>",
                Some(false) => "<span class=\"warn\">no</span>",
                None => "?",
            }
        ));
    }
    if windows.len() > WINDOWS_SHOWN_MAX {
        out.push_str(&format!(
            "<tr><td colspan=\"8\">… {} more windows in results.json</td></tr>\n",
            windows.len() - WINDOWS_SHOWN_MAX
        ));
    }
    if let Some(b) = effects.get("baseline").filter(|b| b.is_object()) {
        out.push_str(&format!(
            "<tr><th colspan=\"3\">outside every window</th><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{} ms</td><td></td></tr>\n",
            num(b, "ops").map(|v| v.to_string()).unwrap_or_default(),
            pct(num(b, "availability")),
            pct(num(b, "info_share")),
            num(b, "max_latency_ms").map(|v| v.to_string()).unwrap_or_default(),
        ));
    }
    out.push_str("</table>\n</section>\n");
    out
}

/// What a campaign's runs exercised, summed over their results.json.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exercised {
    /// Fault kind -> (runs using it, windows, windows that bit).
    pub kinds: BTreeMap<String, (u64, u64, u64)>,
    /// Swarm timing pattern (a fired trigger, a profile switch) -> runs using it.
    pub patterns: BTreeMap<String, u64>,
    /// Runs whose results.json had `fault_effects`.
    pub runs_with_effects: u64,
}

impl Exercised {
    /// Adds one run's results.json.
    pub fn add_run(&mut self, results: &Value) {
        if let Some(by_kind) = results
            .pointer("/fault_effects/by_kind")
            .and_then(Value::as_object)
        {
            self.runs_with_effects += 1;
            for (kind, effect) in by_kind {
                let field = |name| effect.get(name).and_then(Value::as_u64).unwrap_or(0);
                let entry = self.kinds.entry(kind.clone()).or_default();
                entry.0 += 1;
                entry.1 += field("windows");
                entry.2 += field("windows_bit");
            }
        }
        let mut patterns = BTreeSet::new();
        for fired in results
            .pointer("/swarm/fired")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(trigger) = fired.get("trigger").and_then(Value::as_str) {
                patterns.insert(format!("fired {trigger}"));
            }
        }
        for switch in ["quick_restarts", "crash_cycles", "leader_chains"] {
            if results.pointer(&format!("/swarm/profile/{switch}")) == Some(&Value::Bool(true)) {
                patterns.insert(switch.replace('_', "-"));
            }
        }
        if results
            .pointer("/swarm/profile/client/op_timeout_ms")
            .is_some_and(|v| !v.is_null())
        {
            patterns.insert("short client timeouts".to_string());
        }
        if results
            .pointer("/swarm/profile/client/bursts")
            .is_some_and(|v| !v.is_null())
        {
            patterns.insert("client bursts".to_string());
        }
        for pattern in patterns {
            *self.patterns.entry(pattern).or_default() += 1;
        }
    }

    /// Kinds with windows none of which bit.
    pub fn never_bit(&self) -> Vec<&str> {
        self.kinds
            .iter()
            .filter(|(_, (_, windows, bit))| *windows > 0 && *bit == 0)
            .map(|(kind, _)| kind.as_str())
            .collect()
    }

    /// The campaign page's section; empty when no run recorded fault effects.
    pub fn campaign_html(&self) -> String {
        if self.runs_with_effects == 0 && self.patterns.is_empty() {
            return String::new();
        }
        let mut out = String::from("<section id=\"exercised\"><h2>Faults exercised</h2>\n");
        let never = self.never_bit();
        if !never.is_empty() {
            out.push_str(&format!(
                "<p class=\"warn\" id=\"never-bit\">These fault kinds never changed what the clients saw in any run: {}.</p>\n",
                html(&never.join(", "))
            ));
        }
        out.push_str("<div class=\"cols\"><table><tr><th>fault kind</th><th>runs</th><th>windows</th><th>windows that bit</th></tr>\n");
        for (kind, (runs, windows, bit)) in &self.kinds {
            let class = if *windows > 0 && *bit == 0 {
                " class=\"warn\""
            } else {
                ""
            };
            out.push_str(&format!(
                "<tr><td><span class=\"swatch\" style=\"background:{}\"></span>{}</td><td class=\"num\">{runs}</td><td class=\"num\">{windows}</td><td class=\"num\"{class}>{bit}</td></tr>\n",
                css_color(fault_color(kind)),
                html(kind)
            ));
        }
        out.push_str("</table>\n");
        if !self.patterns.is_empty() {
            out.push_str("<table><tr><th>timing pattern</th><th>runs</th></tr>\n");
            for (pattern, runs) in &self.patterns {
                out.push_str(&format!(
                    "<tr><td>{}</td><td class=\"num\">{runs}</td></tr>\n",
                    html(pattern)
                ));
            }
            out.push_str("</table>\n");
        }
        out.push_str("</div>\n</section>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(bit: bool) -> Value {
        json!({"fault_effects": {
            "baseline": {"ops": 10, "availability": 1.0, "info_share": 0.0, "max_latency_ms": 20},
            "windows": [
                {"kind": "delay", "start_ms": 4265, "stop_ms": 7345, "targets": ["n1"], "ops": 269,
                 "availability": 1.0, "info_share": 0.0, "max_latency_ms": 330, "bit": false},
                {"kind": "kill", "start_ms": 8000, "stop_ms": 9000, "targets": ["n2"], "ops": 50,
                 "availability": 0.8, "info_share": 0.1, "max_latency_ms": 900, "bit": bit}],
            "by_kind": {"delay": {"windows": 1, "windows_bit": 0}, "kill": {"windows": 1, "windows_bit": bit as u64}},
            "never_bit": ["delay"]},
          "swarm": {"profile": {"quick_restarts": true, "crash_cycles": false}, "fired": [{"trigger": "after-vote"}]}})
    }

    #[test]
    fn run_table_has_every_window_and_flags_never_bit() {
        let page = run_html(&run(true));
        assert!(page.contains("id=\"never-bit\""), "{page}");
        assert!(page.contains("4.265–7.345"), "{page}");
        assert!(page.contains("10.0%"), "{page}");
        assert_eq!(page.matches("<span class=\"ok\">yes</span>").count(), 1);
        assert_eq!(page.matches("<span class=\"warn\">no</span>").count(), 1);
        assert!(run_html(&json!({})).is_empty());
    }

    #[test]
    fn campaign_sums_kinds_and_patterns() {
        let mut e = Exercised::default();
        e.add_run(&run(true));
        e.add_run(&run(false));
        assert_eq!(e.kinds["kill"], (2, 2, 1));
        assert_eq!(e.kinds["delay"], (2, 2, 0));
        assert_eq!(e.patterns["fired after-vote"], 2);
        assert_eq!(e.patterns["quick-restarts"], 2);
        assert!(!e.patterns.contains_key("crash-cycles"));
        assert_eq!(e.never_bit(), vec!["delay"]);
        let page = e.campaign_html();
        assert!(page.contains("never changed what the clients saw in any run: delay"));
        assert!(page.contains("fired after-vote"));
    }
}
