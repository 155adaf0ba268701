//! Where `observed_at` comes from: the wall clock at receipt, behind a trait so tests can
//! control it.

use ktd_model::Timestamp;

/// A source of "now" for `observed_at` and for rate-limiting repeated failures.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The wall clock ([`Timestamp::now`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

impl<F: Fn() -> Timestamp + Send + Sync + 'static> Clock for F {
    fn now(&self) -> Timestamp {
        self()
    }
}
