//! The limits per client address (SPEC §13), the one type the handlers ask: on a single
//! node they are counted here, in a cluster in Redis with every node's checks in one
//! script, and while Redis cannot be reached each node still limits its own sockets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::key::AddressKey;
use super::local::LocalLimits;
use super::redis::RedisLimits;
pub use super::rules::{ConnectionRefused, Settings};
use crate::identity::UserId;

/// How often a node tells the others its open connections, and forgets idle addresses.
const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// Every limit per address; cheap to clone, every clone counts the same.
#[derive(Clone)]
pub struct AddressLimits {
    settings: Settings,
    local: Arc<LocalLimits>,
    redis: Option<RedisLimits>,
    /// The address each user last sent a clip from, for as long as clips live: a ban by
    /// address reaches it when the user is not connected (SPEC §10). In a cluster, Redis.
    last_clip: Arc<Mutex<HashMap<UserId, (AddressKey, Instant)>>>,
    clip_ttl: Duration,
}

impl AddressLimits {
    pub fn new(settings: Settings, clip_ttl: Duration, redis: Option<RedisLimits>) -> Self {
        Self {
            settings,
            local: Arc::new(LocalLimits::new(settings)),
            redis,
            last_clip: Arc::default(),
            clip_ttl,
        }
    }

    /// Redis, unless it is known to be down: then the node counts alone.
    fn shared(&self) -> Option<&RedisLimits> {
        self.redis.as_ref().filter(|redis| redis.is_up())
    }

    /// Takes a place for a new connection from `key`, or says why not. The place is this
    /// node's until [`AddressLimits::close`].
    pub async fn open(&self, key: &AddressKey) -> Result<(), ConnectionRefused> {
        let Some(cap) = self.settings.max_connections else {
            return Ok(());
        };
        let mine = self.local.open(key)?;
        let Some(redis) = self.shared() else {
            return Ok(());
        };
        match redis.open(key, cap, mine.saturating_sub(1)).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.local.close(key);
                Err(ConnectionRefused::TooManyConnections)
            }
            Err(error) => {
                tracing::debug!(%error, "the shared connection count is unreachable; counting this node's only");
                Ok(())
            }
        }
    }

    /// Gives back a closed connection's place, on every node at once. (Should that write
    /// be lost, the next refresh, within a second, corrects it.)
    pub fn close(&self, key: &AddressKey) {
        if self.settings.max_connections.is_none() {
            return;
        }
        self.local.close(key);
        if let Some(redis) = self.shared().cloned() {
            let (key, local) = (key.clone(), self.local.clone());
            tokio::spawn(async move {
                // Read when it runs, not when it was spawned: the count a later open or
                // close left is the truth.
                let count = local.open_count(&key);
                if let Err(error) = redis.set_open(&key, count).await {
                    tracing::debug!(%error, "a closed connection is freed on the others at the next refresh");
                }
            });
        }
    }

    /// Takes a token from `key`'s clip bucket if there is one.
    pub async fn take_clip(&self, key: &AddressKey) -> bool {
        self.take(key, "message", LocalLimits::take_clip).await
    }

    /// Takes a token from `key`'s report bucket if there is one.
    pub async fn take_report(&self, key: &AddressKey) -> bool {
        self.take(key, "report", LocalLimits::take_report).await
    }

    async fn take(
        &self,
        key: &AddressKey,
        what: &str,
        local: fn(&LocalLimits, &AddressKey) -> bool,
    ) -> bool {
        let Some(bucket) = self.settings.bucket() else {
            return true;
        };
        // The node's own bucket first: in a cluster it is never fuller than the shared one,
        // and it is what still holds when Redis does not answer.
        if !local(&self.local, key) {
            return false;
        }
        let Some(redis) = self.shared() else {
            return true;
        };
        let (burst, refill) = bucket;
        redis
            .take(key, what, (burst.get(), refill))
            .await
            .unwrap_or_else(|error| {
                tracing::debug!(%error, "the shared bucket is unreachable; this node's applies");
                true
            })
    }

    /// Counts a failed sign-in to the moderation API.
    pub async fn admin_failed(&self, key: &AddressKey) {
        self.local.admin_failed(key);
        if let Some(redis) = self.shared()
            && let Err(error) = redis.admin_failed(key).await
        {
            tracing::debug!(%error, "a failed sign-in was counted on this node only");
        }
    }

    /// How long `key` must wait before the moderation API answers it again.
    pub async fn admin_retry_after(&self, key: &AddressKey) -> Option<Duration> {
        if let Some(wait) = self.local.admin_retry_after(key) {
            return Some(wait);
        }
        let redis = self.shared()?;
        redis.admin_retry_after(key).await.unwrap_or_else(|error| {
            tracing::debug!(%error, "the shared sign-in count is unreachable");
            None
        })
    }

    /// Remembers that `user` sent a clip from `key`.
    pub async fn clip_sent(&self, user: &UserId, key: &AddressKey) {
        self.last_clip
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(user.clone(), (key.clone(), Instant::now()));
        if let Some(redis) = self.shared()
            && let Err(error) = redis.clip_sent(user.as_str(), key, self.clip_ttl).await
        {
            tracing::debug!(%error, "the address of a clip was remembered on this node only");
        }
    }

    /// The address `user` last sent a clip from, on any node, while their clips live.
    pub async fn last_clip_address(&self, user: &UserId) -> Option<AddressKey> {
        if let Some(redis) = self.shared() {
            match redis.last_clip_address(user.as_str()).await {
                Ok(Some(key)) => return Some(key),
                Ok(None) => {}
                Err(error) => tracing::debug!(%error, "reading a clip's address from Redis failed"),
            }
        }
        let last_clip = self
            .last_clip
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        last_clip
            .get(user)
            .filter(|(_, at)| at.elapsed() < self.clip_ttl)
            .map(|(key, _)| key.clone())
    }

    /// Until `stop`: every second, forgets what no limit needs any more and, in a cluster,
    /// tells the others this node's open connections. At the stop, takes them out.
    pub async fn refresh(self, stop: CancellationToken) {
        let mut ticks = tokio::time::interval(REFRESH_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = ticks.tick() => {}
            }
            self.local.forget_idle();
            self.last_clip
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|_, (_, at)| at.elapsed() < self.clip_ttl);
            if self.settings.max_connections.is_some()
                && let Some(redis) = self.shared()
                && let Err(error) = redis.publish_open(&self.local.open_counts()).await
            {
                tracing::debug!(%error, "could not tell the others this node's connections per address");
            }
        }
        if let Some(redis) = &self.redis
            && let Err(error) = redis.leave().await
        {
            tracing::debug!(%error, "could not take this node's connections out of the shared count");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    #[test]
    fn the_bucket_holds_half_a_minute_rounded_up_and_refills_at_the_rate() {
        let bucket = |per_minute| Settings::new(64, per_minute).bucket();
        assert_eq!(
            bucket(40),
            Some((NonZeroU32::new(20).unwrap(), Duration::from_millis(1_500)))
        );
        assert_eq!(
            bucket(5),
            Some((NonZeroU32::new(3).unwrap(), Duration::from_secs(12)))
        );
        assert_eq!(
            bucket(1),
            Some((NonZeroU32::new(1).unwrap(), Duration::from_secs(60)))
        );
        assert_eq!(bucket(0), None);
    }

    #[test]
    fn a_refusal_reads_as_its_code() {
        assert_eq!(
            ConnectionRefused::TooManyConnections.to_string(),
            "too_many_connections"
        );
        assert_eq!(ConnectionRefused::Banned.to_string(), "banned");
    }
}
