//! Open-model arrivals: a global Poisson schedule shared by all workers (an arrival waits
//! for the first free worker), so latency is measured from each transaction's *intended*
//! start and queueing delay is never hidden (no coordinated omission).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::Distribution;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Schedule {
    start: Instant,
    rate: f64,
    state: Mutex<(f64, ChaCha8Rng)>,
}

impl Schedule {
    /// `rate` arrivals per second from `start`, exponential gaps drawn from `seed`.
    pub fn new(start: Instant, rate: f64, seed: u64) -> Self {
        Self {
            start,
            rate,
            state: Mutex::new((0.0, ChaCha8Rng::seed_from_u64(seed))),
        }
    }

    /// The next arrival's intended start.
    pub fn next(&self) -> Instant {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let gap: f64 = rand_distr::Exp::new(self.rate)
            .expect("rate > 0")
            .sample(&mut st.1);
        st.0 += gap;
        self.start + Duration::from_secs_f64(st.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_average_the_rate() {
        let start = Instant::now();
        let s = Schedule::new(start, 1000.0, 7);
        let mut last = start;
        for _ in 0..10_000 {
            last = s.next();
        }
        let secs = last.duration_since(start).as_secs_f64();
        assert!(
            (secs - 10.0).abs() < 0.5,
            "10,000 arrivals at 1000/s take ~10 s, got {secs}"
        );
    }
}
