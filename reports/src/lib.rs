//! Reports own what a person reads after a run: the self-contained HTML pages, the latency
//! and rate plots, the timeline, and the CSV and JUnit exports.
