//! Every history of the shared corpus gets the verdict that the upstream suites assert.

#[path = "support/corpus.rs"]
mod corpus;

use minos_checker::check;

#[test]
fn corpus_verdicts_match_expected() {
    let Some(cases) = corpus::cases() else {
        eprintln!(
            "\n*** SKIPPED: corpus not found at {} (set MINOS_CORPUS) ***\n",
            corpus::corpus_dir().display()
        );
        return;
    };
    assert!(
        cases.len() >= 230,
        "expected.tsv lists {} cases",
        cases.len()
    );
    let mut mismatches = Vec::new();
    for case in &cases {
        let history = corpus::read(case);
        let report =
            check(&history, &case.options).unwrap_or_else(|error| panic!("{}: {error}", case.file));
        let verdict = report.verdict.as_str();
        if verdict != case.expected {
            mismatches.push(format!(
                "{}: expected {}, got {verdict}",
                case.file, case.expected
            ));
        }
        if verdict == "invalid" {
            let counterexample = report
                .counterexample
                .as_ref()
                .expect("invalid reports carry a counterexample");
            assert!(
                !counterexample.stuck.is_empty() || counterexample.blocked.is_some(),
                "{}",
                case.file
            );
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} mismatched:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
    eprintln!(
        "corpus: {}/{} verdicts as expected",
        cases.len(),
        cases.len()
    );
}

/// Several runs of one invalid history give the same explanation, threads or not.
#[test]
fn explanations_are_deterministic() {
    let Some(cases) = corpus::cases() else {
        eprintln!(
            "\n*** SKIPPED: corpus not found at {} ***\n",
            corpus::corpus_dir().display()
        );
        return;
    };
    let case = cases
        .iter()
        .find(|case| case.file.ends_with("kv/c10-bad.txt"))
        .expect("c10-bad listed");
    let history = corpus::read(case);
    let mut texts = Vec::new();
    for threads in [1, 2, 2, 4] {
        let mut options = case.options.clone();
        options.threads = threads;
        let report = check(&history, &options).expect("checks");
        texts.push(report.explanation_text());
    }
    assert!(
        texts.windows(2).all(|pair| pair[0] == pair[1]),
        "{texts:#?}"
    );
}
