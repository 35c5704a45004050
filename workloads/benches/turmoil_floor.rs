//! Benchmark: the cost floor of turmoil itself: 6 hosts that only sleep 10 ms in a loop,
//! stepped for 60 s of simulated time at a 1 ms step.
use std::time::{Duration, Instant};

fn main() {
    for step_ms in [1u64, 2, 5] {
        let mut sim = turmoil::Builder::new()
            .tick_duration(Duration::from_millis(step_ms))
            .simulation_duration(Duration::from_secs(3600))
            .build();
        for host in 0..6 {
            sim.host(format!("h{host}"), || async {
                loop {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            });
        }
        let start = Instant::now();
        while sim.elapsed() < Duration::from_secs(60) {
            sim.step().unwrap();
        }
        println!(
            "step {step_ms} ms: 60 s simulated in {:.3} s wall",
            start.elapsed().as_secs_f64()
        );
    }
}
