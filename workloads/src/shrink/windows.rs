//! Fault windows: the units shrinking removes and shortens. A window is a `start-<fault>`
//! event with the first later `stop-<fault>` of the same fault; an event with no partner is a
//! unit alone. Units name events by their position in the schedule they were read from.

use crate::schedule::{Phase, Schedule};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    pub start: usize,
    pub stop: Option<usize>,
}

impl Unit {
    fn positions(&self) -> impl Iterator<Item = usize> {
        std::iter::once(self.start).chain(self.stop)
    }

    /// Simulated ms the fault is on (to the time limit when it never stops).
    pub fn duration_ms(&self, schedule: &Schedule, time_limit_ms: u64) -> u64 {
        let start_ms = schedule.events[self.start].at_ms;
        let is_start = schedule.events[self.start]
            .parse_action()
            .is_ok_and(|(phase, _)| phase == Phase::Start);
        if !is_start {
            return 0;
        }
        let stop_ms = self
            .stop
            .map_or(time_limit_ms, |stop| schedule.events[stop].at_ms)
            .min(time_limit_ms);
        stop_ms.saturating_sub(start_ms)
    }

    /// "kill at 20.000 s for 2.875 s".
    pub fn label(&self, schedule: &Schedule) -> String {
        let start = &schedule.events[self.start];
        let name = start.action.trim_start_matches("start-");
        match self.stop {
            Some(stop) => format!(
                "{name} at {:.3} s for {:.3} s",
                start.at_ms as f64 / 1e3,
                (schedule.events[stop].at_ms - start.at_ms) as f64 / 1e3
            ),
            None => format!("{} at {:.3} s", start.action, start.at_ms as f64 / 1e3),
        }
    }
}

/// The units of `schedule`, in order of their first event.
pub fn units(schedule: &Schedule) -> Vec<Unit> {
    let mut paired = vec![false; schedule.events.len()];
    let mut units = Vec::new();
    for (position, event) in schedule.events.iter().enumerate() {
        if paired[position] {
            continue;
        }
        paired[position] = true;
        let stop = match event.parse_action() {
            Ok((Phase::Start, kind)) => {
                let found = (position + 1..schedule.events.len()).find(|&later| {
                    !paired[later]
                        && schedule.events[later]
                            .parse_action()
                            .is_ok_and(|(phase, other)| phase == Phase::Stop && other == kind)
                });
                if let Some(later) = found {
                    paired[later] = true;
                }
                found
            }
            _ => None,
        };
        units.push(Unit {
            start: position,
            stop,
        });
    }
    units
}

/// The schedule holding only the events of `kept` (positions in `schedule`), in order.
pub fn schedule_of(schedule: &Schedule, kept: &[Unit]) -> Schedule {
    let mut positions: Vec<usize> = kept.iter().flat_map(Unit::positions).collect();
    positions.sort_unstable();
    Schedule {
        events: positions
            .into_iter()
            .map(|position| schedule.events[position].clone())
            .collect(),
        profile: schedule.profile.clone(),
    }
}

/// `schedule` with the window `unit` half as long (its stop moved earlier), or None when the
/// window is already short (under 100 ms) or has no stop.
pub fn halved(unit: &Unit, schedule: &Schedule, time_limit_ms: u64) -> Option<Schedule> {
    let stop = unit.stop?;
    let duration_ms = unit.duration_ms(schedule, time_limit_ms);
    if duration_ms < 100 {
        return None;
    }
    let mut shorter = schedule.clone();
    shorter.events[stop].at_ms = schedule.events[unit.start].at_ms + duration_ms / 2;
    // Stable: events at one time keep their order.
    shorter.events.sort_by_key(|event| event.at_ms);
    Some(shorter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::FaultKind;
    use crate::schedule::FaultEvent;
    use serde_json::Value;

    fn event(at_ms: u64, phase: Phase, kind: FaultKind) -> FaultEvent {
        FaultEvent::new(at_ms, phase, kind, vec![], Value::Null)
    }

    #[test]
    fn starts_pair_with_the_next_stop_of_their_fault() {
        let schedule = Schedule {
            profile: None,
            events: vec![
                event(10, Phase::Start, FaultKind::Kill),
                event(20, Phase::Start, FaultKind::Loss),
                event(30, Phase::Stop, FaultKind::Kill),
                event(40, Phase::Stop, FaultKind::Pause),
                event(50, Phase::Start, FaultKind::Kill),
            ],
        };
        let found = units(&schedule);
        assert_eq!(
            found,
            vec![
                Unit {
                    start: 0,
                    stop: Some(2)
                },
                Unit {
                    start: 1,
                    stop: None
                },
                Unit {
                    start: 3,
                    stop: None
                },
                Unit {
                    start: 4,
                    stop: None
                },
            ]
        );
        let kept = schedule_of(&schedule, &[found[0].clone(), found[3].clone()]);
        let times: Vec<u64> = kept.events.iter().map(|e| e.at_ms).collect();
        assert_eq!(times, vec![10, 30, 50]);
        assert_eq!(found[1].duration_ms(&schedule, 100), 80);
        assert_eq!(found[2].duration_ms(&schedule, 100), 0);
        let shorter = halved(&found[0], &schedule, 100);
        assert!(shorter.is_none(), "a 20 ms window is short enough");
        let long = Schedule {
            profile: None,
            events: vec![
                event(1000, Phase::Start, FaultKind::Kill),
                event(1500, Phase::Start, FaultKind::Loss),
                event(3000, Phase::Stop, FaultKind::Kill),
            ],
        };
        let shorter = halved(&units(&long)[0], &long, 10_000).unwrap();
        let times: Vec<u64> = shorter.events.iter().map(|e| e.at_ms).collect();
        assert_eq!(times, vec![1000, 1500, 2000]);
    }
}
