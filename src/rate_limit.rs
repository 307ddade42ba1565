//! The per-socket limit on `message` events (SPEC §5: at most 5 in a burst and 20 a
//! minute, every attempt counted, valid or not).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// A burst of at most this many messages…
const BURST: NonZeroU32 = NonZeroU32::new(5).unwrap();
/// …then one more every this often. A token bucket allows `BURST + window / REFILL` in any
/// window, so 5 + 60 s / 4 s = 20 a minute at most: both limits hold with one bucket.
const REFILL: Duration = Duration::from_secs(4);

/// One socket's token bucket. Cloning shares the bucket.
#[derive(Clone)]
pub struct MessageLimit(Arc<DefaultDirectRateLimiter>);

impl MessageLimit {
    pub fn new() -> Self {
        let quota = Quota::with_period(REFILL)
            .expect("REFILL is longer than zero")
            .allow_burst(BURST);
        Self(Arc::new(RateLimiter::direct(quota)))
    }

    /// Takes a token if there is one.
    pub fn try_take(&self) -> bool {
        self.0.check().is_ok()
    }
}

impl Default for MessageLimit {
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
}
