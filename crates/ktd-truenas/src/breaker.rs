//! Exponential backoff with jitter, and a circuit breaker that stops calling a failing
//! TrueNAS for a while.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{CircuitBreakerConfig, RetryConfig};
use crate::error::ClientError;

/// The backoff before attempt `attempt + 1` (attempt counts from 1): exponential with
/// "full jitter" (uniform in `0..=min(max, initial·2^(attempt-1))`), at least 1 ms.
pub(crate) fn backoff(cfg: &RetryConfig, attempt: u32) -> Duration {
    let exp = cfg
        .initial_backoff
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let cap = exp.min(cfg.max_backoff);
    let ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(rand::random_range(1..=ms))
}

/// Where the breaker stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed {
        /// Consecutive failures so far.
        failures: u32,
    },
    /// Calls fail fast until the cool-down ends.
    Open {
        /// Time left.
        retry_in: Duration,
    },
    /// The cool-down is over: the next call is a probe.
    HalfOpen,
}

#[derive(Debug, Default)]
struct Inner {
    failures: u32,
    open_until: Option<Instant>,
    probing: bool,
    last: String,
}

/// Opens after `failure_threshold` consecutive failed attempts (retryable errors: the
/// server is unreachable, hanging or failing), lets one probe through after `cool_down`,
/// closes on any answer. Non-retryable errors are answers: they close it.
#[derive(Debug)]
pub(crate) struct Breaker {
    cfg: CircuitBreakerConfig,
    inner: Mutex<Inner>,
}

impl Breaker {
    pub(crate) fn new(cfg: CircuitBreakerConfig) -> Self {
        Breaker {
            cfg,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// May a call go out now?
    pub(crate) fn admit(&self) -> Result<(), ClientError> {
        let mut s = self.lock();
        let Some(until) = s.open_until else {
            return Ok(());
        };
        let now = Instant::now();
        if now < until || s.probing {
            return Err(ClientError::CircuitOpen {
                failures: s.failures,
                last: s.last.clone(),
                retry_in: until.saturating_duration_since(now),
            });
        }
        s.probing = true;
        Ok(())
    }

    /// Records the outcome of an admitted call.
    pub(crate) fn record(&self, outcome: Result<(), &ClientError>) {
        let mut s = self.lock();
        s.probing = false;
        match outcome {
            Err(e) if e.retryable() => {
                s.failures = s.failures.saturating_add(1);
                s.last = e.to_string();
                if s.failures >= self.cfg.failure_threshold.max(1) {
                    if s.open_until.is_none() || s.failures == self.cfg.failure_threshold.max(1) {
                        tracing::warn!(
                            failures = s.failures,
                            cool_down_ms = self.cfg.cool_down.as_millis() as u64,
                            "TrueNAS circuit breaker open"
                        );
                    }
                    s.open_until = Some(Instant::now() + self.cfg.cool_down);
                }
            }
            _ => {
                if s.open_until.is_some() {
                    tracing::info!("TrueNAS circuit breaker closed");
                }
                *s = Inner::default();
            }
        }
    }

    /// The current state.
    pub(crate) fn state(&self) -> BreakerState {
        let s = self.lock();
        match s.open_until {
            None => BreakerState::Closed {
                failures: s.failures,
            },
            Some(t) => {
                let now = Instant::now();
                if now < t {
                    BreakerState::Open { retry_in: t - now }
                } else {
                    BreakerState::HalfOpen
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail() -> ClientError {
        ClientError::Server {
            method: "m".into(),
            detail: "500".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_threshold_and_probes_after_cool_down() {
        let b = Breaker::new(CircuitBreakerConfig {
            failure_threshold: 2,
            cool_down: Duration::from_secs(10),
        });
        for _ in 0..2 {
            b.admit().unwrap();
            b.record(Err(&fail()));
        }
        assert!(matches!(b.admit(), Err(ClientError::CircuitOpen { .. })));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.admit().unwrap();
        // Only one probe at a time.
        assert!(b.admit().is_err());
        b.record(Err(&fail()));
        assert!(matches!(b.state(), BreakerState::Open { .. }));
        tokio::time::advance(Duration::from_secs(11)).await;
        b.admit().unwrap();
        b.record(Ok(()));
        assert_eq!(b.state(), BreakerState::Closed { failures: 0 });
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let cfg = RetryConfig {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
        };
        for attempt in 1..10 {
            let d = backoff(&cfg, attempt);
            assert!(d >= Duration::from_millis(1) && d <= Duration::from_millis(300));
        }
    }
}
