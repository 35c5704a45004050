//! The wall-clock deadline of one check, honoured by every phase (reading the file, parsing,
//! partitioning, searching, explaining): each looks at the clock every few thousand units of
//! work, so `--time-limit` holds to well under a second whatever the input's size.

use std::fmt;
use std::time::Instant;

/// When the work must stop; `None`, never.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deadline(pub Option<Instant>);

impl Deadline {
    /// No deadline.
    pub const NONE: Deadline = Deadline(None);

    /// Whether the deadline has passed.
    pub fn passed(&self) -> bool {
        self.0.is_some_and(|deadline| Instant::now() >= deadline)
    }

    /// `Err(TimeUp(phase))` once the deadline has passed.
    pub fn check(&self, phase: Phase) -> Result<(), TimeUp> {
        if self.passed() {
            Err(TimeUp(phase))
        } else {
            Ok(())
        }
    }
}

/// Work units (records, lines, ops) between two looks at the clock: a look costs tens of
/// nanoseconds, a unit of parsing about a hundred, so this is far below a millisecond of work.
pub const CHECK_EVERY: usize = 1024;

/// The phases of a check, as reports name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Reading,
    Parsing,
    Partitioning,
    Searching,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Reading => "reading",
            Phase::Parsing => "parsing",
            Phase::Partitioning => "partitioning",
            Phase::Searching => "searching",
        }
    }
}

/// The deadline passed during this phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeUp(pub Phase);

impl fmt::Display for TimeUp {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "the time limit ran out while {}", self.0.name())
    }
}
