//! Time, injected. Expiry, idle timeouts and rate limits read a [`Clock`] so tests move time
//! instead of sleeping. Nothing else in the core reads the system clock.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

/// A point in time with microsecond precision, in UTC.
///
/// Stored by the SQLite store as microseconds since the Unix epoch and by the PostgreSQL store
/// as `timestamptz` (which has microsecond precision), so a value survives a round trip through
/// either store unchanged.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The instant `micros` microseconds after the Unix epoch.
    pub const fn from_unix_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Microseconds since the Unix epoch.
    pub const fn unix_micros(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch (rounded down).
    pub const fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// This instant as an [`OffsetDateTime`] in UTC.
    pub fn to_offset_date_time(self) -> OffsetDateTime {
        let nanos = i128::from(self.0) * 1_000;
        OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Converts from an [`OffsetDateTime`], dropping sub-microsecond precision.
    pub fn from_offset_date_time(t: OffsetDateTime) -> Self {
        let micros = t.unix_timestamp_nanos() / 1_000;
        Self(i64::try_from(micros).unwrap_or(i64::MAX))
    }

    /// This instant moved forward by `d` (saturating).
    pub fn plus(self, d: Duration) -> Self {
        let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(micros))
    }

    /// This instant moved back by `d` (saturating).
    pub fn minus(self, d: Duration) -> Self {
        let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(micros))
    }

    /// Time elapsed from `earlier` to `self`, or zero when `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        let micros = self.0.saturating_sub(earlier.0).max(0);
        Duration::from_micros(u64::try_from(micros).unwrap_or(0))
    }

    /// RFC 3339 text, as the APIs print timestamps.
    pub fn to_rfc3339(self) -> String {
        self.to_offset_date_time().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
    }
}

impl std::fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Timestamp({})", self.to_rfc3339())
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

/// The source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The one read of the wall clock (see clippy.toml).
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Timestamp {
        Timestamp::from_offset_date_time(OffsetDateTime::now_utc())
    }
}

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;

/// A clock for the core's own unit tests, which cannot use the test kit's.
#[cfg(test)]
#[derive(Debug, Clone)]
pub(crate) struct TestClock(Arc<std::sync::atomic::AtomicI64>);

#[cfg(test)]
impl TestClock {
    pub(crate) fn starting_now() -> Self {
        Self(Arc::new(std::sync::atomic::AtomicI64::new(SystemClock.now().unix_micros())))
    }

    pub(crate) fn advance(&self, d: Duration) {
        self.0.fetch_add(i64::try_from(d.as_micros()).unwrap_or(i64::MAX), std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_micros(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_round_trips_through_offset_date_time() {
        let t = Timestamp::from_unix_micros(1_700_000_000_123_456);
        assert_eq!(Timestamp::from_offset_date_time(t.to_offset_date_time()), t);
        assert_eq!(t.to_rfc3339(), "2023-11-14T22:13:20.123456Z");
    }
}
