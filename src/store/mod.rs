//! Where clips are kept (SPEC §6, §8), behind one small interface with two backends:
//!
//! - [`embedded`]: a single node's store in `--data-dir`, sled plus a clip's files; what
//!   `cargo run --release` uses, with no other service;
//! - [`redis_store`]: cluster mode's store, shared by every node, with Redis's native
//!   expiry.
//!
//! Both keep the same promises, which one test suite ([`suite`]) checks against each: a
//! clip is acked only once it is durable, an expired clip is never returned (whether or not
//! the sweep has run), replay is the newest clips oldest first, an insert repeated after
//! an unknown outcome is harmless, and removal takes a clip, its files and its reports.
//!
//! An enum rather than a trait object: two backends, known at build time, and the async
//! methods stay plain `async fn`s.

mod embedded;
mod files;
mod layout;
mod legacy_gifs;
mod redis_store;
#[cfg(test)]
mod suite;
#[cfg(test)]
pub(crate) use suite::TestRedis;
mod writer;

use std::path::Path;

use uuid::Uuid;

use crate::clip::{Clip, Rendition};
use crate::identity::UserId;
use crate::metrics::CommitMetrics;
use crate::moderation::Ban;
pub use embedded::EmbeddedStore;
pub use redis_store::RedisStore;
pub use writer::CommitError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("a stored clip could not be read: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("clip files: {0}")]
    ClipFiles(#[from] std::io::Error),
    #[error("{0}")]
    Commit(CommitError),
    #[error("the store is closed")]
    Closed,
    #[error("could not start the store's writer thread: {0}")]
    Thread(std::io::Error),
    #[error("a store read panicked: {0}")]
    Panicked(#[from] tokio::task::JoinError),
    /// The store's Redis did not answer its last heartbeat, so nothing was sent to it.
    #[error("the store's Redis did not answer its last heartbeat")]
    Away,
    /// The store's Redis could not be reached, or did not answer in time: what was sent
    /// may or may not have been done (a repeat is harmless).
    #[error("the store's Redis cannot be reached: {0}")]
    Unavailable(String),
    #[error("redis: {0}")]
    Redis(redis::RedisError),
}

impl From<redis::RedisError> for StoreError {
    fn from(error: redis::RedisError) -> Self {
        // Only the connection's own troubles mean "try again"; a wrong reply is a bug.
        if error.is_io_error()
            || error.is_timeout()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.is_unrecoverable_error()
            // A Redis restarting answers LOADING until it has read its AOF back.
            || matches!(error.retry_method(), redis::RetryMethod::WaitAndRetry)
        {
            Self::Unavailable(error.to_string())
        } else {
            Self::Redis(error)
        }
    }
}

impl StoreError {
    /// Whether the client should be told `unavailable` (try again) rather than `internal`.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Away | Self::Unavailable(_))
    }

    /// Whether the store may have done what it answered with this error: Redis may have
    /// run a command whose answer was lost on the way back.
    pub fn may_have_written(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// A clip that readers reported, with how many did (SPEC §10 `GET /admin/reports`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reported {
    pub key: Uuid,
    pub reports: usize,
    pub clip: Clip,
}

/// A clip's files (SPEC §12), as the encoder made them, to be stored with its record.
#[derive(Debug, Clone, Copy)]
pub struct ClipFiles<'a> {
    pub gif: &'a [u8],
    pub video: &'a [u8],
    pub poster: &'a [u8],
}

impl<'a> ClipFiles<'a> {
    /// Each file with the rendition it is.
    pub fn each(self) -> [(Rendition, &'a [u8]); 3] {
        [
            (Rendition::Gif, self.gif),
            (Rendition::Video, self.video),
            (Rendition::Poster, self.poster),
        ]
    }
}

/// A handle to the clip store; cheap to clone, every clone is the same store.
#[derive(Clone)]
pub enum Store {
    Embedded(EmbeddedStore),
    Redis(RedisStore),
}

/// Calls the same method on whichever backend this is.
macro_rules! each {
    ($store:expr, $backend:ident => $call:expr) => {
        match $store {
            Store::Embedded($backend) => $call,
            Store::Redis($backend) => $call,
        }
    };
}

impl Store {
    /// The embedded store in `path`.
    pub fn open(path: &Path, metrics: CommitMetrics) -> Result<Self, StoreError> {
        EmbeddedStore::open(path, metrics).map(Self::Embedded)
    }

    /// Stores a clip and its files, and returns only once all are durable: a clip that was
    /// acked must survive `kill -9` (of the node, and of Redis), and is never seen without
    /// any of its files.
    pub async fn insert(&self, clip: &Clip, files: ClipFiles<'_>) -> Result<(), StoreError> {
        each!(self, store => store.insert(clip, files).await)
    }

    /// The newest `limit` clips that have not expired, oldest first.
    pub async fn recent(&self, limit: usize, now_ms: u64) -> Result<Vec<Clip>, StoreError> {
        each!(self, store => store.recent(limit, now_ms).await)
    }

    /// The clip and the bytes of one of its files, unless the clip is unknown or expired,
    /// or has no such file (a clip stored before videos has only its GIF).
    pub async fn file(
        &self,
        key: Uuid,
        rendition: Rendition,
        now_ms: u64,
    ) -> Result<Option<(Clip, Vec<u8>)>, StoreError> {
        each!(self, store => store.file(key, rendition, now_ms).await)
    }

    /// Removes every clip whose expiry is at or before `now_ms`; returns how many.
    pub async fn purge_expired(&self, now_ms: u64) -> Result<usize, StoreError> {
        each!(self, store => store.purge_expired(now_ms).await)
    }

    /// Removes these clips, expired or not; returns the keys that were stored.
    pub async fn remove(&self, keys: Vec<Uuid>) -> Result<Vec<Uuid>, StoreError> {
        each!(self, store => store.remove(keys).await)
    }

    /// The unexpired clips whose author is `user`, oldest first.
    pub async fn clips_by(&self, user: UserId, now_ms: u64) -> Result<Vec<Uuid>, StoreError> {
        each!(self, store => store.clips_by(user, now_ms).await)
    }

    /// Records that `user` reported the clip `key`; a repeat counts once. False when there
    /// is no such unexpired clip.
    pub async fn report(&self, key: Uuid, user: UserId, now_ms: u64) -> Result<bool, StoreError> {
        each!(self, store => store.report(key, user, now_ms).await)
    }

    /// The unexpired clips that were reported, most reported first (then newest first).
    pub async fn reports(&self, now_ms: u64) -> Result<Vec<Reported>, StoreError> {
        each!(self, store => store.reports(now_ms).await)
    }

    /// Keeps `ban`, replacing any earlier ban of the same user.
    pub async fn save_ban(&self, ban: &Ban) -> Result<(), StoreError> {
        each!(self, store => store.save_ban(ban).await)
    }

    /// Forgets the ban of `user`; false when there was none.
    pub async fn remove_ban(&self, user: UserId) -> Result<bool, StoreError> {
        each!(self, store => store.remove_ban(user).await)
    }

    /// Every ban kept, those whose time is up included.
    pub async fn bans(&self) -> Result<Vec<Ban>, StoreError> {
        each!(self, store => store.bans().await)
    }

    /// Clips stored, expired-but-not-yet-swept ones included (for `/metrics`; in Redis, as
    /// of the last write or sweep).
    pub fn len(&self) -> usize {
        each!(self, store => store.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the store answers a read and can still write, for `/healthz`.
    pub async fn check(&self) -> Result<(), StoreError> {
        each!(self, store => store.check().await)
    }

    /// Waits until everything written so far is durable and lets go of the store. The
    /// embedded store then answers later writes through any clone with
    /// [`StoreError::Closed`]; Redis answered every write already and has nothing to close.
    pub async fn close(&self) -> Result<(), StoreError> {
        each!(self, store => store.close().await)
    }
}
