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
pub(crate) const SIGNAL_BURST: NonZeroU32 = NonZeroU32::new(300).unwrap();
/// …after which 100 a second is far more than a call needs.
const SIGNAL_REFILL: Duration = Duration::from_millis(10);

/// A token bucket. Cloning shares the bucket.
#[derive(Clone)]
struct Bucket(Arc<DefaultDirectRateLimiter>);

impl Bucket {
    fn new(quota: Quota) -> Self {
        Self(Arc::new(RateLimiter::direct(quota)))
    }

    fn try_take(&self) -> bool {
        self.0.check().is_ok()
    }
}

fn quota(burst: NonZeroU32, refill: Duration) -> Quota {
    Quota::with_period(refill)
        .expect("the refill period is longer than zero")
        .allow_burst(burst)
}

fn message_quota() -> Quota {
    quota(BURST, REFILL)
}

fn signal_quota() -> Quota {
    quota(SIGNAL_BURST, SIGNAL_REFILL)
}

/// One socket's bucket for `message`. Cloning shares the bucket.
#[derive(Clone)]
pub struct MessageLimit(Bucket);

impl MessageLimit {
    pub fn new() -> Self {
        Self(Bucket::new(message_quota()))
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
        Self(Bucket::new(signal_quota()))
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
    use std::time::Duration;

    use governor::RateLimiter;
    use governor::clock::FakeRelativeClock;

    use super::{MessageLimit, message_quota, signal_quota};

    // The limits as SPEC.md states them, written out here rather than taken from the code.
    /// §5: more than 5 `message` events in a burst are refused…
    const MESSAGE_BURST: usize = 5;
    /// …and so is more than 20 in a minute. The burst counts towards those 20, so the other
    /// 15 come back over the minute: one every 60 s / 15 = 4 s.
    const MESSAGES_A_MINUTE: usize = 20;
    const MESSAGE_COMES_BACK: Duration =
        Duration::from_secs(60 / (MESSAGES_A_MINUTE - MESSAGE_BURST) as u64);
    /// §9: more than 300 `call:signal` events in a burst are refused…
    const SIGNAL_BURST: usize = 300;
    /// …and so is more than 100 a second: a burst is more than a second's worth, so that
    /// is the rate they come back at, one every 10 ms.
    const SIGNALS_A_SECOND: u32 = 100;
    const SIGNAL_COMES_BACK: Duration = Duration::from_millis(1_000 / SIGNALS_A_SECOND as u64);

    /// How far short of a token's return "just before" is.
    const JUST: Duration = Duration::from_millis(1);

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
    fn a_message_token_comes_back_every_four_seconds() {
        let clock = FakeRelativeClock::default();
        let bucket = RateLimiter::direct_with_clock(message_quota(), clock.clone());
        let take = |attempts: usize| (0..attempts).filter(|_| bucket.check().is_ok()).count();

        assert_eq!(
            take(MESSAGE_BURST + 3),
            MESSAGE_BURST,
            "the burst, then refused"
        );
        clock.advance(MESSAGE_COMES_BACK - JUST);
        assert_eq!(take(1), 0, "just before a token comes back");
        clock.advance(JUST);
        assert_eq!(take(3), 1, "exactly one came back");
        clock.advance(MESSAGE_COMES_BACK - JUST);
        assert_eq!(take(1), 0);
        clock.advance(JUST);
        assert_eq!(take(3), 1, "and the next, as long again later");
        clock.advance(MESSAGE_COMES_BACK * 3);
        assert_eq!(take(5), 3, "three periods, three tokens");
    }

    #[test]
    fn no_minute_has_more_than_twenty_messages() {
        let clock = FakeRelativeClock::default();
        let bucket = RateLimiter::direct_with_clock(message_quota(), clock.clone());
        let step = Duration::from_millis(100);
        let minute = Duration::from_secs(60);
        // A socket that sends all it may, looking every 100 ms, for five minutes.
        let mut allowed = Vec::new();
        let mut now = Duration::ZERO;
        while now < minute * 5 {
            while bucket.check().is_ok() {
                allowed.push(now);
            }
            clock.advance(step);
            now += step;
        }

        assert_eq!(
            allowed
                .iter()
                .take_while(|&&at| at == Duration::ZERO)
                .count(),
            MESSAGE_BURST
        );
        for (first, &start) in allowed.iter().enumerate() {
            let within = allowed[first..]
                .iter()
                .take_while(|&&at| at < start + minute)
                .count();
            assert!(
                within <= MESSAGES_A_MINUTE,
                "{within} messages in the minute from {start:?}"
            );
        }
    }

    #[test]
    fn a_signal_token_comes_back_every_ten_milliseconds() {
        let clock = FakeRelativeClock::default();
        let bucket = RateLimiter::direct_with_clock(signal_quota(), clock.clone());
        let take = |attempts: usize| (0..attempts).filter(|_| bucket.check().is_ok()).count();

        assert_eq!(
            take(SIGNAL_BURST + 100),
            SIGNAL_BURST,
            "the burst, then refused"
        );
        clock.advance(SIGNAL_COMES_BACK - JUST);
        assert_eq!(take(1), 0, "just before a token comes back");
        clock.advance(JUST);
        assert_eq!(take(3), 1, "exactly one came back");
        clock.advance(SIGNAL_COMES_BACK - JUST);
        assert_eq!(take(1), 0);
        clock.advance(JUST);
        assert_eq!(take(3), 1, "and the next, as long again later");
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            take(SIGNAL_BURST),
            SIGNALS_A_SECOND as usize,
            "a second gives a second's worth"
        );
    }
}
