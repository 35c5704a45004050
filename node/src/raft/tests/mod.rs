//! Message-level tests of the core over a deterministic in-test network.
