//! Throttling credential guesses per client address: each failed sign-in or wrong token
//! adds [`EVERY_MS`] of debt to its address; an address more than [`BURST`] failures in debt
//! is answered 429 with `Retry-After` until the debt falls back (a generic cell rate
//! algorithm: [`BURST`] failures at once, then one every [`EVERY_MS`]). In memory, per
//! orchestrator node: `n` nodes behind a balancer allow `n` times as many.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::net::TcpListener;

/// How many failures an address may make at once.
pub const BURST: i64 = 20;
/// How often an address may fail once its burst is spent, in milliseconds.
pub const EVERY_MS: i64 = 3_000;
/// How many addresses are remembered at most; past that the one nearest to being
/// forgiven is forgotten first.
const MAX_ADDRESSES: usize = 65_536;

/// The address a request came from (axum's `ConnectInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, TcpListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

/// How long a throttled address must wait, in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait(pub u64);

/// Failed credentials per address.
#[derive(Default)]
pub struct Throttle {
    /// When each address's debt is paid off (ms since the epoch): a theoretical arrival time.
    paid_at: Mutex<HashMap<Key, i64>>,
}

/// What an address is counted under: an IPv6 client controls its whole /64, so the /64
/// counts as one; a request whose address is unknown counts under `None`.
type Key = Option<IpAddr>;

fn key(addr: Option<IpAddr>) -> Key {
    match addr? {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => Some(IpAddr::V4(v4)),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                Some(IpAddr::V6(octets.into()))
            }
        },
        v4 => Some(v4),
    }
}

impl Throttle {
    /// Whether `addr` may try a credential at `now` (ms); how long to wait if not.
    pub fn check(&self, addr: Option<IpAddr>, now: i64) -> Result<(), Wait> {
        let paid = self.lock().get(&key(addr)).copied().unwrap_or(now);
        let over = paid - now - BURST * EVERY_MS;
        if over > 0 {
            return Err(Wait((over as u64).div_ceil(1000)));
        }
        Ok(())
    }

    /// Counts a failed credential from `addr` at `now`.
    pub fn failed(&self, addr: Option<IpAddr>, now: i64) {
        let mut map = self.lock();
        if map.len() >= MAX_ADDRESSES {
            map.retain(|_, paid| *paid > now);
            if map.len() >= MAX_ADDRESSES
                && let Some(nearest) = map.iter().min_by_key(|(_, p)| **p).map(|(k, _)| *k)
            {
                map.remove(&nearest);
            }
        }
        let paid = map.entry(key(addr)).or_insert(now);
        *paid = (*paid).max(now) + EVERY_MS;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, i64>> {
        self.paid_at.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn an_address_fails_a_burst_then_waits_and_others_are_not_held_up() {
        let t = Throttle::default();
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        for _ in 0..BURST {
            assert_eq!(t.check(a, 0), Ok(()));
            t.failed(a, 0);
        }
        assert_eq!(t.check(a, 0), Ok(()), "a burst of failures is allowed");
        t.failed(a, 0);
        assert_eq!(t.check(a, 0), Err(Wait(3)));
        assert_eq!(t.check(a, 2_500), Err(Wait(1)));
        assert_eq!(t.check(b, 0), Ok(()));
        assert_eq!(t.check(a, 3_000), Ok(()), "one more try every 3 s");
        t.failed(a, 3_000);
        assert_eq!(t.check(a, 3_000), Err(Wait(3)));
        assert_eq!(
            t.check(a, 3_000 + BURST * EVERY_MS),
            Ok(()),
            "forgiven in time"
        );
    }

    #[test]
    fn an_ipv6_client_counts_as_its_whole_64_and_a_mapped_ipv4_as_itself() {
        let t = Throttle::default();
        for i in 0..=BURST {
            t.failed(ip(&format!("2001:db8:1:2::{i:x}")), 0);
        }
        assert!(t.check(ip("2001:db8:1:2:ffff::1"), 0).is_err());
        assert!(t.check(ip("2001:db8:1:3::1"), 0).is_ok());
        for _ in 0..=BURST {
            t.failed(ip("::ffff:192.0.2.9"), 0);
        }
        assert!(t.check(ip("192.0.2.9"), 0).is_err());
    }

    #[test]
    fn memory_stays_bounded_under_many_addresses() {
        let t = Throttle::default();
        for i in 0..(MAX_ADDRESSES as u32 + 1000) {
            t.failed(Some(IpAddr::V4(i.into())), 0);
        }
        assert!(t.lock().len() <= MAX_ADDRESSES);
    }
}
