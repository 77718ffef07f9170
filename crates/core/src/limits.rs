//! Rate limits on password guessing, per client IP and per login identifier, read through the
//! injected [`Clock`](crate::clock::Clock). Limits are kept in memory, per node: with N nodes an
//! attacker gets at most N times the configured rate, which the operator can size for.
//!
//! The per-identifier limit is keyed on the identifier as typed (normalised), never on
//! whether an account exists, so it behaves identically for unknown accounts.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;
use crate::error::CoreError;

/// Rate limit settings. 0 turns a limit off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Password attempts (log-ins, confirmations) per client IP per minute.
    pub login_per_ip_per_minute: u32,
    /// Password attempts per login identifier (or account) per minute.
    pub login_per_identifier_per_minute: u32,
    /// Second-factor codes tried per account per minute (every surface together). A TOTP
    /// code is one of a million, three of which are right at any moment: at five a minute,
    /// guessing one takes months.
    pub second_factor_per_account_per_minute: u32,
    /// Questions that tell whether an identifier is taken — sign-ups, and changes of a user's
    /// own username, e-mail or phone — per client address and per account per minute.
    pub identifier_checks_per_minute: u32,
    /// IPv6 clients are counted per network of this prefix length for every per-address limit
    /// (one subscriber usually holds a whole /64 and can rotate through it); 128 counts each
    /// address alone. IPv4 addresses count one by one.
    pub ipv6_prefix: u8,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            login_per_ip_per_minute: 60,
            login_per_identifier_per_minute: 10,
            second_factor_per_account_per_minute: 5,
            identifier_checks_per_minute: 10,
            ipv6_prefix: 64,
        }
    }
}

impl RateLimitConfig {
    /// Checks the settings for values that cannot work.
    pub fn check(&self) -> Result<(), String> {
        if !(16..=128).contains(&self.ipv6_prefix) {
            return Err("rate_limits.ipv6_prefix must be between 16 and 128".into());
        }
        Ok(())
    }
}

/// The key a client address is counted under in `tenant`: an IPv4 address itself, an IPv6
/// address's network of `ipv6_prefix` bits (an IPv4-mapped IPv6 address counts as the IPv4
/// one).
pub fn address_key(tenant: crate::ids::TenantId, ip: std::net::IpAddr, ipv6_prefix: u8) -> String {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => format!("{}:{v4}", tenant.0),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("{}:{v4}", tenant.0),
            None => {
                let bits = u128::from(v6);
                let len = u32::from(ipv6_prefix.min(128));
                let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
                format!("{}:{}/{len}", tenant.0, std::net::Ipv6Addr::from(bits & mask))
            }
        },
    }
}

#[derive(Clone, Debug)]
struct ClockAdapter(SharedClock);

impl GovernorClock for ClockAdapter {
    type Instant = Duration;
    fn now(&self) -> Duration {
        Duration::from_micros(u64::try_from(self.0.now().unix_micros()).unwrap_or(0))
    }
}

type Keyed = RateLimiter<String, DefaultKeyedStateStore<String>, ClockAdapter, NoOpMiddleware<Duration>>;

/// The password-attempt limiters.
pub struct Limiter {
    per_ip: Option<Keyed>,
    per_identifier: Option<Keyed>,
    second_factor: Option<Keyed>,
    identifier_checks: Option<Keyed>,
    clock: ClockAdapter,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("per_ip", &self.per_ip.is_some())
            .field("per_identifier", &self.per_identifier.is_some())
            .finish()
    }
}

impl Limiter {
    /// Limiters with the given settings.
    pub fn new(cfg: &RateLimitConfig, clock: SharedClock) -> Self {
        let clock = ClockAdapter(clock);
        let make = |n: u32| {
            NonZeroU32::new(n)
                .map(|n| RateLimiter::new(Quota::per_minute(n), DefaultKeyedStateStore::default(), clock.clone()))
        };
        let per_ip = make(cfg.login_per_ip_per_minute);
        let per_identifier = make(cfg.login_per_identifier_per_minute);
        let second_factor = make(cfg.second_factor_per_account_per_minute);
        let identifier_checks = make(cfg.identifier_checks_per_minute);
        Self { per_ip, per_identifier, second_factor, identifier_checks, clock }
    }

    /// Counts one password attempt from `ip` against `identifier`; refuses it with
    /// [`CoreError::RateLimited`] when either budget is spent.
    pub fn check(&self, ip: Option<&str>, identifier: &str) -> Result<(), CoreError> {
        if let (Some(l), Some(ip)) = (&self.per_ip, ip) {
            self.one(l, ip)?;
        }
        if let Some(l) = &self.per_identifier {
            self.one(l, identifier)?;
        }
        Ok(())
    }

    /// Counts one second-factor code tried for `account` from `ip` (which also spends the
    /// address's password budget: guessing codes is guessing credentials).
    pub fn check_second_factor(&self, ip: Option<&str>, account: &str) -> Result<(), CoreError> {
        if let (Some(l), Some(ip)) = (&self.per_ip, ip) {
            self.one(l, ip)?;
        }
        if let Some(l) = &self.second_factor {
            self.one(l, account)?;
        }
        Ok(())
    }

    fn one(&self, l: &Keyed, key: &str) -> Result<(), CoreError> {
        l.check_key(&key.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            CoreError::RateLimited { retry_after: wait.max(Duration::from_secs(1)) }
        })
    }

    /// Counts one question that tells whether an identifier is taken (a sign-up, a change of
    /// one's own identifiers), from `ip` and by `account`; refused when either has asked too
    /// often.
    pub fn check_identifier_question(&self, ip: Option<&str>, account: Option<&str>) -> Result<(), CoreError> {
        let Some(l) = &self.identifier_checks else { return Ok(()) };
        if let Some(ip) = ip {
            self.one(l, &format!("ip:{ip}"))?;
        }
        if let Some(account) = account {
            self.one(l, &format!("account:{account}"))?;
        }
        Ok(())
    }

    /// Drops state of keys that are back to full budget; call periodically.
    pub fn prune(&self) {
        for l in
            [&self.per_ip, &self.per_identifier, &self.second_factor, &self.identifier_checks].into_iter().flatten()
        {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod address_tests {
    use super::*;
    use crate::ids::TenantId;

    #[test]
    fn ipv6_clients_are_grouped_by_their_prefix() {
        let key = |ip: &str, len| address_key(TenantId(1), ip.parse().unwrap(), len);
        assert_eq!(key("2001:db8:1:2:aaaa::1", 64), key("2001:db8:1:2:bbbb::9", 64));
        assert_ne!(key("2001:db8:1:2::1", 64), key("2001:db8:1:3::1", 64));
        assert_ne!(key("2001:db8:1:2::1", 128), key("2001:db8:1:2::2", 128));
        assert_eq!(key("2001:db8:1:2::1", 48), key("2001:db8:1:ffff::1", 48));
        assert_eq!(key("192.0.2.1", 64), "1:192.0.2.1");
        assert_eq!(key("::ffff:192.0.2.1", 64), "1:192.0.2.1", "a mapped address is its IPv4");
        assert_ne!(key("192.0.2.1", 64), key("192.0.2.2", 64));
        assert_ne!(address_key(TenantId(2), "192.0.2.1".parse().unwrap(), 64), key("192.0.2.1", 64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TestClock as ManualClock;
    use std::sync::Arc;

    #[test]
    fn identifier_budget_refills_with_time() {
        let clock = ManualClock::starting_now();
        let l = Limiter::new(
            &RateLimitConfig { login_per_identifier_per_minute: 3, login_per_ip_per_minute: 0, ..Default::default() },
            Arc::new(clock.clone()),
        );
        for _ in 0..3 {
            l.check(None, "u:alice").unwrap();
        }
        let err = l.check(None, "u:alice").unwrap_err();
        assert!(matches!(err, CoreError::RateLimited { retry_after } if retry_after >= Duration::from_secs(1)));
        l.check(None, "u:bob").unwrap();
        clock.advance(Duration::from_secs(20));
        l.check(None, "u:alice").unwrap();
    }

    #[test]
    fn ip_budget_spans_identifiers() {
        let clock = ManualClock::starting_now();
        let l = Limiter::new(
            &RateLimitConfig { login_per_ip_per_minute: 2, login_per_identifier_per_minute: 0, ..Default::default() },
            Arc::new(clock),
        );
        l.check(Some("10.0.0.1"), "u:a").unwrap();
        l.check(Some("10.0.0.1"), "u:b").unwrap();
        assert!(l.check(Some("10.0.0.1"), "u:c").is_err());
        l.check(Some("10.0.0.2"), "u:c").unwrap();
    }
}
