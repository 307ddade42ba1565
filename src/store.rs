//! Where clips are kept: sled, in `--data-dir` (SPEC §6).
//!
//! Three trees, written together in one transaction:
//! - `clips`:  key → the [`Clip`] as JSON (what replay reads, without the GIF bytes);
//! - `gifs`:   key → the GIF bytes (what `/clips/{key}.gif` serves);
//! - `expiry`: expires_at (big-endian ms) ‖ key → nothing, so the sweep finds what is due
//!   with one range scan instead of reading every clip.
//!
//! Keys are UUIDv7 bytes, so key order is creation order and replay is a reverse scan.
//! Expiry is checked on every read as well, so an expired clip is never returned even
//! before [`crate::sweep`] has removed it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use uuid::Uuid;

use crate::clip::Clip;

/// How many expired clips one sweep transaction removes, so a large backlog after a long
/// downtime does not become one huge transaction.
const PURGE_BATCH: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("a stored clip could not be read: {0}")]
    Corrupt(#[from] serde_json::Error),
}

impl From<TransactionError<serde_json::Error>> for StoreError {
    fn from(error: TransactionError<serde_json::Error>) -> Self {
        match error {
            TransactionError::Abort(error) => Self::Corrupt(error),
            TransactionError::Storage(error) => Self::Sled(error),
        }
    }
}

/// A handle to the clip store; cheap to clone, every clone is the same store.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    clips: sled::Tree,
    gifs: sled::Tree,
    expiry: sled::Tree,
    /// Clips currently stored. Kept here because sled's `len` walks the whole tree and
    /// `/metrics` asks on every scrape.
    count: Arc<AtomicUsize>,
}

impl Store {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = sled::open(path)?;
        let clips = db.open_tree("clips")?;
        let gifs = db.open_tree("gifs")?;
        let expiry = db.open_tree("expiry")?;
        let count = Arc::new(AtomicUsize::new(clips.len()));
        Ok(Self {
            db,
            clips,
            gifs,
            expiry,
            count,
        })
    }

    /// Stores a clip and its GIF, and returns only once both are flushed to disk: a clip
    /// that was acked must survive `kill -9`.
    pub async fn insert(&self, clip: &Clip, gif: &[u8]) -> Result<(), StoreError> {
        let key = clip.key.as_bytes();
        let description = serde_json::to_vec(clip)?;
        let due = expiry_key(clip.expires_at, clip.key);
        (&self.clips, &self.gifs, &self.expiry).transaction(|(clips, gifs, expiry)| {
            clips.insert(key, description.as_slice())?;
            gifs.insert(key, gif)?;
            expiry.insert(due.as_slice(), &[])?;
            Ok::<_, ConflictableTransactionError<serde_json::Error>>(())
        })?;
        self.count.fetch_add(1, Ordering::Relaxed);
        self.db.flush_async().await?;
        Ok(())
    }

    /// The newest `limit` clips that have not expired, oldest first.
    pub fn recent(&self, limit: usize, now_ms: u64) -> Result<Vec<Clip>, StoreError> {
        let mut newest_first = Vec::with_capacity(limit);
        for entry in self.clips.iter().rev() {
            if newest_first.len() == limit {
                break;
            }
            let (_, value) = entry?;
            let clip: Clip = serde_json::from_slice(&value)?;
            if !clip.is_expired(now_ms) {
                newest_first.push(clip);
            }
        }
        newest_first.reverse();
        Ok(newest_first)
    }

    /// The clip and its GIF bytes, unless it is unknown or expired.
    pub fn gif(&self, key: Uuid, now_ms: u64) -> Result<Option<(Clip, sled::IVec)>, StoreError> {
        let Some(description) = self.clips.get(key.as_bytes())? else {
            return Ok(None);
        };
        let clip: Clip = serde_json::from_slice(&description)?;
        if clip.is_expired(now_ms) {
            return Ok(None);
        }
        Ok(self.gifs.get(key.as_bytes())?.map(|gif| (clip, gif)))
    }

    /// Removes every clip whose expiry is at or before `now_ms`; returns how many.
    pub fn purge_expired(&self, now_ms: u64) -> Result<usize, StoreError> {
        let mut removed = 0;
        loop {
            let due: Vec<sled::IVec> = self
                .expiry
                .range(..=expiry_key(now_ms, Uuid::max()).as_slice())
                .keys()
                .take(PURGE_BATCH)
                .collect::<Result<_, _>>()?;
            if due.is_empty() {
                return Ok(removed);
            }
            let batch =
                (&self.clips, &self.gifs, &self.expiry).transaction(|(clips, gifs, expiry)| {
                    let mut existed = 0;
                    for due_key in &due {
                        let key = &due_key[8..];
                        if clips.remove(key)?.is_some() {
                            existed += 1;
                        }
                        gifs.remove(key)?;
                        expiry.remove(due_key)?;
                    }
                    Ok::<_, ConflictableTransactionError<serde_json::Error>>(existed)
                })?;
            self.count.fetch_sub(batch, Ordering::Relaxed);
            removed += batch;
        }
    }

    /// Clips stored, expired-but-not-yet-swept ones included.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the store answers a read, for `/healthz`.
    pub fn check(&self) -> Result<(), StoreError> {
        self.clips.first()?;
        Ok(())
    }

    /// Writes everything still in memory to disk, for a clean shutdown.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }
}

/// Big-endian expiry first, so byte order in the `expiry` tree is expiry order.
fn expiry_key(expires_at: u64, key: Uuid) -> [u8; 24] {
    let mut due = [0; 24];
    due[..8].copy_from_slice(&expires_at.to_be_bytes());
    due[8..].copy_from_slice(key.as_bytes());
    due
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clip::Author;

    fn clip(created_at: u64, ttl_ms: u64) -> Clip {
        let key = Uuid::now_v7();
        Clip {
            key,
            id: None,
            author: Author {
                id: "a".into(),
                name: "amber-otter".into(),
            },
            message: "hi".into(),
            clip: Clip::url(key),
            width: 200,
            height: 200,
            frames: 10,
            delay_ms: 200,
            bytes: 3,
            created_at,
            expires_at: created_at + ttl_ms,
        }
    }

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn recent_is_the_newest_unexpired_oldest_first() {
        let (_dir, store) = open();
        let mut keys = Vec::new();
        for _ in 0..5 {
            let clip = clip(1_000, 10_000);
            store.insert(&clip, b"GIF").await.unwrap();
            keys.push(clip.key);
        }
        let recent: Vec<_> = store
            .recent(3, 2_000)
            .unwrap()
            .iter()
            .map(|c| c.key)
            .collect();
        assert_eq!(recent, keys[2..]);
    }

    #[tokio::test]
    async fn expired_clips_are_never_returned_even_before_the_sweep() {
        let (_dir, store) = open();
        let short = clip(1_000, 1_000);
        let long = clip(1_000, 10_000);
        store.insert(&short, b"GIF").await.unwrap();
        store.insert(&long, b"GIF").await.unwrap();

        let recent: Vec<_> = store
            .recent(10, 2_000)
            .unwrap()
            .iter()
            .map(|c| c.key)
            .collect();
        assert_eq!(recent, [long.key]);
        assert!(store.gif(short.key, 2_000).unwrap().is_none());
        assert!(store.gif(long.key, 2_000).unwrap().is_some());
        assert_eq!(
            store.len(),
            2,
            "reads must not delete; that is the sweep's job"
        );
    }

    #[tokio::test]
    async fn purge_removes_exactly_what_is_due() {
        let (_dir, store) = open();
        let short = clip(1_000, 1_000);
        let long = clip(1_000, 10_000);
        store.insert(&short, b"GIF").await.unwrap();
        store.insert(&long, b"GIF").await.unwrap();

        assert_eq!(store.purge_expired(2_000).unwrap(), 1);
        assert_eq!(store.len(), 1);
        assert!(store.clips.get(short.key.as_bytes()).unwrap().is_none());
        assert!(store.gifs.get(short.key.as_bytes()).unwrap().is_none());
        assert_eq!(store.expiry.len(), 1);
        assert_eq!(store.purge_expired(2_000).unwrap(), 0);
    }

    #[tokio::test]
    async fn purge_handles_more_than_one_batch() {
        let (_dir, store) = open();
        for _ in 0..PURGE_BATCH + 3 {
            store.insert(&clip(1_000, 1), b"GIF").await.unwrap();
        }
        assert_eq!(store.purge_expired(5_000).unwrap(), PURGE_BATCH + 3);
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn clips_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let stored = clip(1_000, 10_000);
        {
            let store = Store::open(dir.path()).unwrap();
            store.insert(&stored, b"GIF89a").await.unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.len(), 1);
        let (clip, gif) = store.gif(stored.key, 2_000).unwrap().unwrap();
        assert_eq!(clip, stored);
        assert_eq!(gif.as_ref(), b"GIF89a");
    }
}
