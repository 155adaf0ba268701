//! Fault injection shared by both simulated servers.
//!
//! Faults are decided per request from a seeded RNG, so a failing test can be rerun with
//! the same sequence of faults. They can be changed while the servers run.

use std::sync::Mutex;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// What can go wrong, and how often (rates are probabilities in `0.0..=1.0`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Added to every response.
    #[serde(default)]
    pub latency_ms: u64,
    /// Probability that a request fails with a server error (HTTP 500/503, JSON-RPC -32603).
    #[serde(default)]
    pub error_rate: f64,
    /// Probability that a request never gets an answer (the client must time out).
    #[serde(default)]
    pub timeout_rate: f64,
    /// Probability that the connection is dropped mid-response (watch streams, WebSockets).
    #[serde(default)]
    pub drop_rate: f64,
}

/// What to do with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Serve it normally (after the configured latency).
    Serve,
    /// Answer with a server error.
    Error,
    /// Never answer.
    Hang,
    /// Drop the connection.
    Drop,
}

/// Decides faults for a server; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct FaultInjector {
    state: Mutex<(Faults, ChaCha8Rng)>,
}

impl FaultInjector {
    /// An injector with no faults.
    pub fn new(seed: u64) -> Self {
        FaultInjector {
            state: Mutex::new((Faults::default(), ChaCha8Rng::seed_from_u64(seed))),
        }
    }

    /// Replaces the fault configuration.
    pub fn set(&self, faults: Faults) {
        self.lock().0 = faults;
    }

    /// The current configuration.
    pub fn get(&self) -> Faults {
        self.lock().0.clone()
    }

    /// The latency to add to every response.
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.lock().0.latency_ms)
    }

    /// Draws the fate of one request.
    pub fn decide(&self) -> FaultAction {
        let mut guard = self.lock();
        let (faults, rng) = &mut *guard;
        if faults.error_rate <= 0.0 && faults.timeout_rate <= 0.0 && faults.drop_rate <= 0.0 {
            return FaultAction::Serve;
        }
        let roll: f64 = rng.random();
        if roll < faults.error_rate {
            FaultAction::Error
        } else if roll < faults.error_rate + faults.timeout_rate {
            FaultAction::Hang
        } else if roll < faults.error_rate + faults.timeout_rate + faults.drop_rate {
            FaultAction::Drop
        } else {
            FaultAction::Serve
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Faults, ChaCha8Rng)> {
        // A panic while holding this lock cannot leave the data inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_faults_always_serves() {
        let f = FaultInjector::new(1);
        assert!((0..1000).all(|_| f.decide() == FaultAction::Serve));
    }

    #[test]
    fn rates_are_roughly_honoured_and_reproducible() {
        let run = || {
            let f = FaultInjector::new(7);
            f.set(Faults {
                error_rate: 0.2,
                drop_rate: 0.1,
                ..Faults::default()
            });
            (0..10_000).map(|_| f.decide()).collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run(), "same seed, same faults");
        let errors = a.iter().filter(|x| **x == FaultAction::Error).count();
        let drops = a.iter().filter(|x| **x == FaultAction::Drop).count();
        assert!((1700..2300).contains(&errors), "errors {errors}");
        assert!((800..1200).contains(&drops), "drops {drops}");
        assert!(!a.contains(&FaultAction::Hang));
    }
}
