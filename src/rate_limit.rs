//! The per-socket limits on `message` events (SPEC §5: at most 5 in a burst and 20 a
//! minute) and on `call:signal` events (SPEC §9: at most 300 in a burst and 100 a
//! second), every attempt counted, valid or not.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// A burst of at most this many messages…
const BURST: NonZeroU32 = NonZeroU32::new(5).unwrap();
/// …then one more every this often. A token bucket allows `BURST + window / REFILL` in any
/// window, so 5 + 60 s / 4 s = 20 a minute at most: both limits hold with one bucket.
const REFILL: Duration = Duration::from_secs(4);

/// A call's set-up is a burst: an offer or answer and a few dozen ICE candidates for each
/// of up to seven peers, and again on every renegotiation…
const SIGNAL_BURST: NonZeroU32 = NonZeroU32::new(300).unwrap();
/// …after which 100 a second is far more than a call needs.
const SIGNAL_REFILL: Duration = Duration::from_millis(10);

/// A token bucket. Cloning shares the bucket.
#[derive(Clone)]
struct Bucket(Arc<DefaultDirectRateLimiter>);

impl Bucket {
    fn new(burst: NonZeroU32, refill: Duration) -> Self {
        let quota = Quota::with_period(refill)
            .expect("the refill period is longer than zero")
            .allow_burst(burst);
        Self(Arc::new(RateLimiter::direct(quota)))
    }

    fn try_take(&self) -> bool {
        self.0.check().is_ok()
    }
}

/// One socket's bucket for `message`. Cloning shares the bucket.
#[derive(Clone)]
pub struct MessageLimit(Bucket);

impl MessageLimit {
    pub fn new() -> Self {
        Self(Bucket::new(BURST, REFILL))
    }

    /// Takes a token if there is one.
    pub fn try_take(&self) -> bool {
        self.0.try_take()
    }
}

impl Default for MessageLimit {
    fn default() -> Self {
        Self::new()
    }
}

/// One socket's bucket for `call:signal`. Cloning shares the bucket.
#[derive(Clone)]
pub struct SignalLimit(Bucket);

impl SignalLimit {
    pub fn new() -> Self {
        Self(Bucket::new(SIGNAL_BURST, SIGNAL_REFILL))
    }

    /// Takes a token if there is one.
    pub fn try_take(&self) -> bool {
        self.0.try_take()
    }
}

impl Default for SignalLimit {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_of_five_then_refuses() {
        let limit = MessageLimit::new();
        let allowed = (0..8).filter(|_| limit.try_take()).count();
        assert_eq!(allowed, 5);
    }

    #[test]
    fn clones_share_one_bucket() {
        let limit = MessageLimit::new();
        let clone = limit.clone();
        for _ in 0..5 {
            assert!(clone.try_take());
        }
        assert!(!limit.try_take());
    }

    #[test]
    fn signals_are_allowed_a_burst_of_300() {
        let limit = SignalLimit::new();
        // Taken at once: a few tokens may come back meanwhile (one every 10 ms) on a
        // machine that pauses the test, never fifty.
        let allowed = (0..400).filter(|_| limit.try_take()).count();
        assert!((300..350).contains(&allowed), "{allowed}");
    }
}
