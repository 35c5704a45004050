//! Exports for spreadsheets, notebooks and CI: `history.csv` (when the run dir lacks one, e.g.
//! an older or foreign run), `latency.csv` (one row per op), and `junit.xml`.
//!
//! JUnit is written by hand: the one well-kept crate (quick-junit) pulls in quick-xml, chrono,
//! uuid and indexmap for a file that is one test suite with one test case; the writer below
//! escapes everything through [`crate::escape::xml`].

use serde_json::Value;

use crate::history::{value_text, History};
use crate::results::{RunResults, Verdict};

/// history.csv rebuilt from the history text: one row per record, columns as workloads writes
/// them (index,time_ns,process,type,f,key,value) with `value` as JSON.
pub fn history_csv(history_text: &str) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(["index", "time_ns", "process", "type", "f", "key", "value"])?;
    for (_, line) in minos_checker::history::text::lines(history_text) {
        let Ok(record) = serde_json::from_str::<Value>(line.trim()) else {
            continue;
        };
        let field = |name: &str| record.get(name).map(value_text).unwrap_or_default();
        let value = record
            .get("value")
            .map(Value::to_string)
            .unwrap_or_else(|| "null".to_string());
        writer.write_record([
            field("index"),
            field("time"),
            field("process"),
            field("type"),
            field("f"),
            field("key"),
            value,
        ])?;
    }
    writer
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))
}

/// latency.csv: one row per client op with its invocation and completion.
pub fn latency_csv(history: &History) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record([
        "invoke_index",
        "complete_index",
        "process",
        "f",
        "key",
        "outcome",
        "invoke_time_ns",
        "complete_time_ns",
        "latency_ns",
        "latency_ms",
        "invoke_value",
        "result",
    ])?;
    for op in &history.ops {
        let opt = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
        writer.write_record([
            op.invoke_index.to_string(),
            opt(op.complete_index),
            op.process.to_string(),
            op.f.clone(),
            op.key.clone().unwrap_or_default(),
            op.outcome.name().to_string(),
            op.invoke_time_ns.to_string(),
            opt(op.complete_time_ns),
            opt(op.latency_ns()),
            op.latency_ns()
                .map(|l| format!("{:.3}", l as f64 / 1e6))
                .unwrap_or_default(),
            op.invoke_value.to_string(),
            if op.complete_index.is_some() {
                op.result.to_string()
            } else {
                String::new()
            },
        ])?;
    }
    writer
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))
}

/// junit.xml: one test suite with one test case for the run. An invalid run is a `<failure>`,
/// an unknown one an `<error>` (the verdict could not be reached), each with the verdict and the
/// reproduce command; a valid run passes.
pub fn junit_xml(results: &RunResults, name: &str, ops_count: usize) -> String {
    use crate::escape::xml;
    let case = junit_testcase(results, name, ops_count);
    let suite = xml(results.test_name.as_deref().unwrap_or("minos"));
    let (failures, errors, time_s) = (case.failures, case.errors, case.time_s);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"minos\" tests=\"1\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time_s:.3}\">\n  <testsuite name=\"{suite}\" tests=\"1\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time_s:.3}\">\n{}  </testsuite>\n</testsuites>\n",
        case.xml
    )
}

/// One `<testcase>` of a run, as junit.xml of the run and of its campaign hold it.
pub struct JunitCase {
    pub xml: String,
    pub failures: u32,
    pub errors: u32,
    pub time_s: f64,
}

/// The run's test case: a failure when invalid, an error when unknown.
pub fn junit_testcase(results: &RunResults, name: &str, ops_count: usize) -> JunitCase {
    use crate::escape::xml;
    let verdict = results.shown_verdict();
    let time_s = results
        .timings
        .as_ref()
        .and_then(|t| t.get("wall_ms"))
        .and_then(Value::as_f64)
        .map(|ms| ms / 1000.0)
        .unwrap_or(0.0);
    let reproduce = results
        .reproduce
        .clone()
        .unwrap_or_else(|| "(no reproduce command recorded)".to_string());
    let causes = if results.causes.is_empty() {
        String::new()
    } else {
        format!(" ({})", results.causes.join(", "))
    };
    let message = format!(
        "verdict: {}{causes}; reproduce: {reproduce}",
        verdict.name()
    );
    let mut body = String::new();
    let (failures, errors) = match verdict {
        Verdict::Valid => (0, 0),
        Verdict::Invalid => {
            let detail = results
                .counterexample()
                .and_then(|c| c.get("text"))
                .map(value_text)
                .unwrap_or_default();
            body = format!(
                "      <failure message=\"{}\" type=\"invalid\">{}\n{}</failure>\n",
                xml(&message),
                xml(&message),
                xml(&detail)
            );
            (1, 0)
        }
        Verdict::Unknown => {
            let reason = results
                .checker
                .as_ref()
                .and_then(|c| c.get("unknown_reason"))
                .filter(|r| !r.is_null())
                .map(value_text)
                .unwrap_or_else(|| "no verdict recorded".to_string());
            body = format!(
                "      <error message=\"{}\" type=\"unknown\">{}\nreason: {}</error>\n",
                xml(&message),
                xml(&message),
                xml(&reason)
            );
            (0, 1)
        }
    };
    let properties = format!(
        "      <properties>\n        <property name=\"seed\" value=\"{}\"/>\n        <property name=\"ops_count\" value=\"{}\"/>\n        <property name=\"reproduce\" value=\"{}\"/>\n      </properties>\n",
        xml(results.seed.as_deref().unwrap_or("")),
        ops_count,
        xml(&reproduce)
    );
    let suite = xml(results.test_name.as_deref().unwrap_or("minos"));
    JunitCase {
        xml: format!(
            "    <testcase classname=\"minos.{suite}\" name=\"{}\" time=\"{time_s:.3}\">\n{properties}{body}    </testcase>\n",
            xml(name)
        ),
        failures,
        errors,
        time_s,
    }
}

/// A campaign's junit.xml: one suite, one test case per run (seed), for CI dashboards.
pub fn campaign_junit_xml(campaign_name: &str, cases: &[JunitCase]) -> String {
    use crate::escape::xml;
    let failures: u32 = cases.iter().map(|c| c.failures).sum();
    let errors: u32 = cases.iter().map(|c| c.errors).sum();
    let time_s: f64 = cases.iter().map(|c| c.time_s).sum();
    let tests = cases.len();
    let name = xml(campaign_name);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"minos\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time_s:.3}\">\n  <testsuite name=\"{name}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time_s:.3}\">\n"
    );
    for case in cases {
        out.push_str(&case.xml);
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_escapes_and_reports_failure() {
        let r = RunResults::parse(
            r#"{"verdict":"invalid","seed":1,"reproduce":"minos run --seed 1 --x '<a>&'","causes":["linearizability"]}"#,
        );
        let x = junit_xml(&r, "run \"1\"", 10);
        assert!(x.contains("failures=\"1\""));
        assert!(x.contains("&lt;a&gt;&amp;"));
        assert!(x.contains("name=\"run &quot;1&quot;\""));
        assert!(!x.contains("<a>"));
    }

    #[test]
    fn history_csv_quotes_values() {
        let csv = history_csv("{\"index\":0,\"time\":1,\"process\":2,\"type\":\"ok\",\"f\":\"read\",\"value\":\"a,\\\"b\"}\n").unwrap();
        let text = String::from_utf8(csv).unwrap();
        assert!(
            text.contains("0,1,2,ok,read,,\"\"\"a,\\\"\"b\"\"\""),
            "{text}"
        );
    }
}
