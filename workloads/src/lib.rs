//! Workloads own everything that drives the store: operation generators, the nemesis that
//! injects faults, the turmoil simulation driver that records a history, and campaigns.
