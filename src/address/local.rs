//! The limits per address as one node counts them, in memory: all of them on a single
//! node, and in a cluster what still holds while Redis cannot be reached (SPEC §13).

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::key::AddressKey;
use super::rules::{ADMIN_FAILURES, ADMIN_WINDOW, CONNECTION_WINDOW, ConnectionRefused, Settings};

/// One address's connections and failed sign-ins.
#[derive(Default)]
struct Entry {
    open: u32,
    /// When each connection of the last [`CONNECTION_WINDOW`] was opened, oldest first.
    opened: VecDeque<Instant>,
    /// When the first failed sign-in of the current window was, and how many since.
    admin: Option<(Instant, u32)>,
}

impl Entry {
    fn forget_before(&mut self, now: Instant) {
        while self
            .opened
            .front()
            .is_some_and(|&at| now.duration_since(at) >= CONNECTION_WINDOW)
        {
            self.opened.pop_front();
        }
        if self
            .admin
            .is_some_and(|(first, _)| now.duration_since(first) >= ADMIN_WINDOW)
        {
            self.admin = None;
        }
    }

    fn is_idle(&self) -> bool {
        self.open == 0 && self.opened.is_empty() && self.admin.is_none()
    }
}

/// Every address this node has seen lately, and its clip and report buckets.
pub struct LocalLimits {
    settings: Settings,
    /// A std lock: each use is a few operations on one entry, never across an await.
    entries: Mutex<HashMap<AddressKey, Entry>>,
    clips: Option<DefaultKeyedRateLimiter<AddressKey>>,
    reports: Option<DefaultKeyedRateLimiter<AddressKey>>,
}

impl LocalLimits {
    pub fn new(settings: Settings) -> Self {
        let bucket = || {
            settings
                .bucket()
                .map(|(burst, refill)| RateLimiter::keyed(quota(burst, refill)))
        };
        Self {
            settings,
            entries: Mutex::default(),
            clips: bucket(),
            reports: bucket(),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<AddressKey, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a place for a new connection from `key`, or says why not; how many `key`
    /// has open here now.
    pub fn open(&self, key: &AddressKey) -> Result<u32, ConnectionRefused> {
        let Some(cap) = self.settings.max_connections else {
            return Ok(0);
        };
        let now = Instant::now();
        let mut entries = self.entries();
        let entry = entries.entry(key.clone()).or_default();
        entry.forget_before(now);
        if entry.open >= cap.get() || entry.opened.len() >= Settings::new_connections(cap) as usize
        {
            return Err(ConnectionRefused::TooManyConnections);
        }
        entry.open += 1;
        entry.opened.push_back(now);
        Ok(entry.open)
    }

    /// How many connections `key` has open here.
    pub fn open_count(&self, key: &AddressKey) -> u32 {
        self.entries().get(key).map_or(0, |entry| entry.open)
    }

    /// Gives back the place of a connection from `key` that closed.
    pub fn close(&self, key: &AddressKey) {
        if self.settings.max_connections.is_none() {
            return;
        }
        if let Some(entry) = self.entries().get_mut(key) {
            entry.open = entry.open.saturating_sub(1);
        }
    }

    /// Every address with connections open here, and how many: what this node tells the
    /// others in a cluster.
    pub fn open_counts(&self) -> Vec<(AddressKey, u32)> {
        self.entries()
            .iter()
            .filter(|(_, entry)| entry.open > 0)
            .map(|(key, entry)| (key.clone(), entry.open))
            .collect()
    }

    /// Takes a token from `key`'s clip bucket if there is one.
    pub fn take_clip(&self, key: &AddressKey) -> bool {
        self.clips
            .as_ref()
            .is_none_or(|bucket| bucket.check_key(key).is_ok())
    }

    /// Takes a token from `key`'s report bucket if there is one.
    pub fn take_report(&self, key: &AddressKey) -> bool {
        self.reports
            .as_ref()
            .is_none_or(|bucket| bucket.check_key(key).is_ok())
    }

    /// Counts a failed sign-in to the moderation API from `key`.
    pub fn admin_failed(&self, key: &AddressKey) {
        let now = Instant::now();
        let mut entries = self.entries();
        let entry = entries.entry(key.clone()).or_default();
        entry.forget_before(now);
        let (_, count) = entry.admin.get_or_insert((now, 0));
        *count += 1;
    }

    /// How long `key` must wait before the moderation API answers it again, if it failed
    /// to sign in too often.
    pub fn admin_retry_after(&self, key: &AddressKey) -> Option<Duration> {
        let now = Instant::now();
        let mut entries = self.entries();
        let entry = entries.get_mut(key)?;
        entry.forget_before(now);
        let (first, count) = entry.admin?;
        (count >= ADMIN_FAILURES).then(|| ADMIN_WINDOW.saturating_sub(now.duration_since(first)))
    }

    /// Drops what no limit needs any more: addresses with nothing open, recent or failed,
    /// and full buckets. Called every second or so, so memory follows the addresses of the
    /// last minute, not of every address ever seen.
    pub fn forget_idle(&self) {
        let now = Instant::now();
        self.entries().retain(|_, entry| {
            entry.forget_before(now);
            !entry.is_idle()
        });
        for bucket in [&self.clips, &self.reports].into_iter().flatten() {
            bucket.retain_recent();
            bucket.shrink_to_fit();
        }
    }
}

fn quota(burst: NonZeroU32, refill: Duration) -> Quota {
    Quota::with_period(refill)
        .expect("the refill period is longer than zero")
        .allow_burst(burst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::client::ClientAddress;
    use crate::identity::Identities;

    fn key(last: u8) -> AddressKey {
        let address = ClientAddress::of([192, 0, 2, last].into());
        AddressKey::of(&address, &Identities::new(b"test"))
    }

    fn limits(connections: u32, clips: u32) -> LocalLimits {
        LocalLimits::new(Settings::new(connections, clips))
    }

    #[test]
    fn an_address_holds_at_most_n_open_connections() {
        let limits = limits(3, 0);
        for _ in 0..3 {
            assert!(limits.open(&key(1)).is_ok());
        }
        assert_eq!(
            limits.open(&key(1)),
            Err(ConnectionRefused::TooManyConnections)
        );
        assert_eq!(
            limits.open(&key(2)),
            Ok(1),
            "another address is not affected"
        );
        limits.close(&key(1));
        assert_eq!(limits.open(&key(1)), Ok(3), "closing frees a place");
        assert_eq!(limits.open_counts().len(), 2);
    }

    #[test]
    fn an_address_opens_at_most_2n_a_minute_even_if_it_closes_them() {
        let limits = limits(2, 0);
        for _ in 0..4 {
            assert!(limits.open(&key(1)).is_ok());
            limits.close(&key(1));
        }
        assert_eq!(
            limits.open(&key(1)),
            Err(ConnectionRefused::TooManyConnections)
        );
        limits.forget_idle();
        assert_eq!(
            limits.open(&key(1)),
            Err(ConnectionRefused::TooManyConnections),
            "still in the window"
        );
    }

    #[test]
    fn zero_turns_the_limits_off() {
        let limits = limits(0, 0);
        for _ in 0..1_000 {
            assert!(limits.open(&key(1)).is_ok());
            assert!(limits.take_clip(&key(1)));
            assert!(limits.take_report(&key(1)));
        }
        assert!(limits.open_counts().is_empty(), "nothing is counted");
    }

    #[test]
    fn the_clip_bucket_holds_half_a_minute_and_reports_have_their_own() {
        let limits = limits(0, 40);
        let taken = (0..30).filter(|_| limits.take_clip(&key(1))).count();
        assert_eq!(taken, 20);
        assert!(
            limits.take_clip(&key(2)),
            "another address has its own bucket"
        );
        let reported = (0..30).filter(|_| limits.take_report(&key(1))).count();
        assert_eq!(reported, 20, "reports are not clips");
    }

    #[test]
    fn ten_failed_sign_ins_block_the_address_for_the_rest_of_the_minute() {
        let limits = limits(0, 0);
        for _ in 0..ADMIN_FAILURES - 1 {
            limits.admin_failed(&key(1));
        }
        assert_eq!(limits.admin_retry_after(&key(1)), None);
        limits.admin_failed(&key(1));
        let wait = limits.admin_retry_after(&key(1)).expect("blocked");
        assert!(wait <= ADMIN_WINDOW && wait > ADMIN_WINDOW - Duration::from_secs(5));
        assert_eq!(limits.admin_retry_after(&key(2)), None);
        limits.forget_idle();
        assert!(
            limits.admin_retry_after(&key(1)).is_some(),
            "kept while it matters"
        );
    }
}
