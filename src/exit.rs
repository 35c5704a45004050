//! Process exit codes, DESIGN.md §2 (Jepsen's convention).

/// The history is linearizable / every run is valid.
pub const VALID: i32 = 0;
/// A violation was found.
pub const INVALID: i32 = 1;
/// A budget ran out before a verdict.
pub const UNKNOWN: i32 = 2;
/// Bad arguments, or unreadable or malformed input.
pub const BAD_INPUT: i32 = 254;
/// A bug in Minos itself.
pub const INTERNAL: i32 = 255;
/// Ctrl-C or SIGTERM ended a real-cluster run (after its cleanup), as a shell reports SIGINT.
pub const INTERRUPTED: i32 = 130;
