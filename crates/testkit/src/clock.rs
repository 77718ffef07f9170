//! A clock for tests of expiry and rate limits: it moves only when the test moves it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use portcullis_core::clock::{Clock, SystemClock, Timestamp};

/// A clock that only moves when told to. Clones share one reading.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A manual clock reading `start`.
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(start.unix_micros())))
    }

    /// A manual clock reading the current system time.
    pub fn starting_now() -> Self {
        Self::new(SystemClock.now())
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        self.0.fetch_add(micros, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_micros(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Timestamp::from_unix_micros(0));
        assert_eq!(c.now().unix_micros(), 0);
        c.advance(Duration::from_secs(2));
        assert_eq!(c.now().unix_seconds(), 2);
        assert_eq!(c.now().since(Timestamp::from_unix_micros(0)), Duration::from_secs(2));
    }
}
