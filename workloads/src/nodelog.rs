//! Per-node logs with simulated timestamps: a tracing layer, scoped to one run (installed with
//! `tracing::subscriber::with_default`, so parallel runs on other threads keep their own), that
//! routes every event to the node whose turmoil host emitted it (turmoil enters a `node` span
//! with the host name around each host's tick). Buffered in memory, bounded, written at the end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// Logs beyond this many bytes (all nodes together) are dropped, with a note.
const MAX_LOG_BYTES: usize = 256 * 1024 * 1024;

/// The buffered logs of one run, by host name.
#[derive(Clone, Default)]
pub struct NodeLogs {
    inner: Arc<Mutex<LogBuffers>>,
}

#[derive(Default)]
struct LogBuffers {
    by_host: BTreeMap<String, String>,
    total_bytes: usize,
    truncated: bool,
}

impl NodeLogs {
    pub fn new() -> NodeLogs {
        NodeLogs::default()
    }

    /// Appends a line from the driver itself (e.g. a nemesis action) to a host's log.
    pub fn append(&self, host: &str, time_ns: u64, line: &str) {
        let mut buffers = self.inner.lock().expect("log buffer lock");
        let text = format!("{:>12.6} DRIVER {line}\n", time_ns as f64 / 1e9);
        buffers.push(host, &text);
    }

    /// Takes the logs out: host name -> text.
    pub fn take(&self) -> BTreeMap<String, String> {
        let mut buffers = self.inner.lock().expect("log buffer lock");
        std::mem::take(&mut buffers.by_host)
    }
}

impl LogBuffers {
    fn push(&mut self, host: &str, text: &str) {
        if self.total_bytes + text.len() > MAX_LOG_BYTES {
            if !self.truncated {
                self.truncated = true;
                for buffer in self.by_host.values_mut() {
                    buffer.push_str("... log truncated: the run's logs exceeded 256 MiB\n");
                }
            }
            return;
        }
        self.total_bytes += text.len();
        match self.by_host.get_mut(host) {
            Some(buffer) => buffer.push_str(text),
            None => {
                self.by_host.insert(host.to_string(), text.to_string());
            }
        }
    }
}

/// The host of a turmoil `node` span, as a position in the layer's host list (no allocation
/// per span: turmoil opens one per host per step).
struct HostIndex(usize);

struct NameVisitor<'a> {
    hosts: &'a [String],
    found: Option<usize>,
}

impl Visit for NameVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "name" {
            self.found = self.hosts.iter().position(|host| host == value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "name" {
            let text = format!("{value:?}");
            self.found = self
                .hosts
                .iter()
                .position(|host| host == text.trim_matches('"'));
        }
    }
}

/// Formats an event's fields as `message key=value ...`.
struct LineVisitor<'a>(&'a mut String);

impl Visit for LineVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value}");
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

/// The layer: every event at or above `level` inside one of `hosts` goes to that host's log.
pub struct NodeLogLayer {
    logs: NodeLogs,
    level: Level,
    hosts: Vec<String>,
}

impl NodeLogLayer {
    pub fn new(logs: NodeLogs, level: Level, hosts: Vec<String>) -> NodeLogLayer {
        NodeLogLayer { logs, level, hosts }
    }
}

impl<S> Layer<S> for NodeLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _context: Context<'_, S>) -> bool {
        // Spans must be enabled for the host routing; events only up to the level, and
        // never turmoil's own per-step tracing.
        metadata.is_span()
            || (*metadata.level() <= self.level && !metadata.target().starts_with("turmoil"))
    }

    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        if attributes.metadata().name() != "node" {
            return;
        }
        let mut visitor = NameVisitor {
            hosts: &self.hosts,
            found: None,
        };
        attributes.record(&mut visitor);
        if let (Some(index), Some(span)) = (visitor.found, context.span(id)) {
            span.extensions_mut().insert(HostIndex(index));
        }
    }

    fn on_event(&self, event: &Event<'_>, context: Context<'_, S>) {
        let Some(scope) = context.event_scope(event) else {
            return;
        };
        let mut host = None;
        for span in scope {
            if let Some(index) = span.extensions().get::<HostIndex>() {
                host = Some(index.0);
                break;
            }
        }
        let Some(host) = host.map(|index| self.hosts[index].as_str()) else {
            return;
        };
        let time_ns = turmoil::sim_elapsed()
            .map(|elapsed| elapsed.as_nanos() as u64)
            .unwrap_or(0);
        let metadata = event.metadata();
        let mut line = format!(
            "{:>12.6} {:<5} {}:",
            time_ns as f64 / 1e9,
            metadata.level(),
            metadata.target()
        );
        event.record(&mut LineVisitor(&mut line));
        line.push('\n');
        let mut buffers = self.logs.inner.lock().expect("log buffer lock");
        buffers.push(host, &line);
    }
}
