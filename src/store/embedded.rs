//! The embedded store of a single node: in `--data-dir` (SPEC §6), sled for the records
//! and a clip's files beside it, laid out as [`layout`](super::layout) says.
//!
//! A clip's two records are written in one transaction, after its files are on disk, so
//! a stored clip always has its files. Expiry is checked on every read as well, so an expired
//! clip is never returned even before [`crate::sweep`] has removed it.
//!
//! Every write goes through the one writer thread of [`writer`](super::writer) (group
//! commit: one flush per batch); every read runs on tokio's blocking pool. No sled call or
//! file access runs on an async worker, where a slow disk would stall every socket.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use super::layout::{Parts, expiry_key};
use super::writer::{Applied, Change, Writer};
use super::{ClipFiles, Reported, StoreError, legacy_gifs};
use crate::clip::{Clip, Rendition};
use crate::identity::UserId;
use crate::metrics::CommitMetrics;
use crate::moderation::Ban;

/// The embedded store; cheap to clone, every clone is the same store.
#[derive(Clone)]
pub struct EmbeddedStore {
    /// For reads only: writes go through `writer`.
    parts: Parts,
    writer: Writer,
    /// The writer thread, joined by [`Store::close`] so the database is closed (and its
    /// lock released) once `close` returns.
    writer_thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
    /// Clips currently stored. Kept here because sled's `len` walks the whole tree and
    /// `/metrics` asks on every scrape.
    count: Arc<AtomicUsize>,
}

impl EmbeddedStore {
    pub fn open(path: &Path, metrics: CommitMetrics) -> Result<Self, StoreError> {
        let parts = Parts::open(path)?;
        let moved = legacy_gifs::move_to_files(&parts)?;
        if moved > 0 {
            tracing::info!(
                moved,
                "moved GIFs out of sled into {}",
                path.join("clips").display()
            );
        }
        let orphans = parts
            .files
            .remove_orphans(|key| parts.clips.contains_key(key.as_bytes()).unwrap_or(true))?;
        if orphans > 0 {
            tracing::info!(orphans, "removed files of clips that were never stored");
        }
        let count = Arc::new(AtomicUsize::new(parts.clips.len()));
        let (writer, thread) =
            Writer::start(parts.clone(), count.clone(), metrics).map_err(StoreError::Thread)?;
        Ok(Self {
            parts,
            writer,
            writer_thread: Arc::new(Mutex::new(Some(thread))),
            count,
        })
    }

    /// Stores a clip and its files, and returns only once all are on disk: a clip that was
    /// acked must survive `kill -9`.
    pub async fn insert(&self, clip: &Clip, files: ClipFiles<'_>) -> Result<(), StoreError> {
        let change = Change::Insert {
            key: clip.key,
            description: serde_json::to_vec(clip)?.into(),
            files: files
                .each()
                .map(|(rendition, bytes)| (rendition, bytes.to_vec())),
            due: expiry_key(clip.expires_at, clip.key),
        };
        self.writer.commit(change).await?;
        Ok(())
    }

    /// The newest `limit` clips that have not expired, oldest first.
    pub async fn recent(&self, limit: usize, now_ms: u64) -> Result<Vec<Clip>, StoreError> {
        let parts = self.parts.clone();
        tokio::task::spawn_blocking(move || parts.recent(limit, now_ms)).await?
    }

    /// The clip and the bytes of one of its files, unless it is unknown, expired or has
    /// no such file.
    pub async fn file(
        &self,
        key: Uuid,
        rendition: Rendition,
        now_ms: u64,
    ) -> Result<Option<(Clip, Vec<u8>)>, StoreError> {
        let parts = self.parts.clone();
        tokio::task::spawn_blocking(move || parts.file(key, rendition, now_ms)).await?
    }
    /// Removes every clip whose expiry is at or before `now_ms`; returns how many.
    pub async fn purge_expired(&self, now_ms: u64) -> Result<usize, StoreError> {
        let mut removed = 0;
        loop {
            match self.writer.commit(Change::PurgeExpired { now_ms }).await? {
                Applied::Purged {
                    removed: batch,
                    more,
                } => {
                    removed += batch;
                    if !more {
                        return Ok(removed);
                    }
                }
                other => unreachable!("a purge answers Purged, not {other:?}"),
            }
        }
    }

    /// Removes these clips, expired or not; returns the keys that were stored.
    pub async fn remove(&self, keys: Vec<Uuid>) -> Result<Vec<Uuid>, StoreError> {
        match self.writer.commit(Change::Remove { keys }).await? {
            Applied::Removed { existed } => Ok(existed),
            other => unreachable!("a removal answers Removed, not {other:?}"),
        }
    }

    /// The unexpired clips whose author is `user`, oldest first.
    pub async fn clips_by(&self, user: UserId, now_ms: u64) -> Result<Vec<Uuid>, StoreError> {
        let parts = self.parts.clone();
        tokio::task::spawn_blocking(move || {
            let mut keys = Vec::new();
            for entry in parts.clips.iter().values() {
                let clip: Clip = serde_json::from_slice(&entry?)?;
                if clip.author.id == user && !clip.is_expired(now_ms) {
                    keys.push(clip.key);
                }
            }
            Ok(keys)
        })
        .await?
    }

    /// Records that `user` reported the clip `key`; a repeat counts once. False when there
    /// is no such unexpired clip.
    pub async fn report(&self, key: Uuid, user: UserId, now_ms: u64) -> Result<bool, StoreError> {
        match self
            .writer
            .commit(Change::Report { key, user, now_ms })
            .await?
        {
            Applied::Reported { known } => Ok(known),
            other => unreachable!("a report answers Reported, not {other:?}"),
        }
    }

    /// The unexpired clips that were reported, most reported first (then newest first).
    pub async fn reports(&self, now_ms: u64) -> Result<Vec<Reported>, StoreError> {
        let parts = self.parts.clone();
        tokio::task::spawn_blocking(move || parts.reports(now_ms)).await?
    }

    /// Keeps `ban`, replacing any earlier ban of the same user.
    pub async fn save_ban(&self, ban: &Ban) -> Result<(), StoreError> {
        let record = serde_json::to_vec(ban)?.into();
        let user = ban.user.clone();
        self.writer.commit(Change::SaveBan { user, record }).await?;
        Ok(())
    }

    /// Forgets the ban of `user`; false when there was none.
    pub async fn remove_ban(&self, user: UserId) -> Result<bool, StoreError> {
        match self.writer.commit(Change::RemoveBan { user }).await? {
            Applied::BanRemoved { existed } => Ok(existed),
            other => unreachable!("a ban removal answers BanRemoved, not {other:?}"),
        }
    }

    /// Every ban kept, those whose time is up included: read once at start.
    pub async fn bans(&self) -> Result<Vec<Ban>, StoreError> {
        let parts = self.parts.clone();
        tokio::task::spawn_blocking(move || {
            parts
                .bans
                .iter()
                .values()
                .map(|record| Ok(serde_json::from_slice(&record?)?))
                .collect()
        })
        .await?
    }

    /// Clips stored, expired-but-not-yet-swept ones included.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the store answers a read and can still write, for `/healthz`.
    pub async fn check(&self) -> Result<(), StoreError> {
        if self.writer.is_stopped() {
            return Err(StoreError::Closed);
        }
        let parts = self.parts.clone();
        tokio::task::spawn_blocking(move || parts.clips.first().map(drop)).await??;
        Ok(())
    }

    /// Waits until everything written so far is on disk, then stops the writer and waits
    /// for its thread to end; later writes through any clone answer [`StoreError::Closed`].
    pub async fn close(&self) -> Result<(), StoreError> {
        self.writer.commit(Change::Close).await?;
        let thread = self
            .writer_thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            tokio::task::spawn_blocking(move || thread.join())
                .await?
                .map_err(|_| StoreError::Closed)?;
        }
        Ok(())
    }
}

impl Parts {
    fn recent(&self, limit: usize, now_ms: u64) -> Result<Vec<Clip>, StoreError> {
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

    fn file(
        &self,
        key: Uuid,
        rendition: Rendition,
        now_ms: u64,
    ) -> Result<Option<(Clip, Vec<u8>)>, StoreError> {
        let Some(description) = self.clips.get(key.as_bytes())? else {
            return Ok(None);
        };
        let clip: Clip = serde_json::from_slice(&description)?;
        if clip.is_expired(now_ms) || !rendition.belongs_to(&clip) {
            return Ok(None);
        }
        let Some(bytes) = self.files.read(key, rendition)? else {
            tracing::error!(%key, file = rendition.extension(), "a stored clip lacks a file");
            return Ok(None);
        };
        Ok(Some((clip, bytes)))
    }

    fn reports(&self, now_ms: u64) -> Result<Vec<Reported>, StoreError> {
        let mut counts: Vec<(Uuid, usize)> = Vec::new();
        for report in self.reports.iter().keys() {
            let report = report?;
            let Some(key) = report.get(..16).and_then(|key| Uuid::from_slice(key).ok()) else {
                continue;
            };
            match counts.last_mut() {
                Some((last, count)) if *last == key => *count += 1,
                _ => counts.push((key, 1)),
            }
        }
        let mut reported = Vec::with_capacity(counts.len());
        for (key, reports) in counts {
            let Some(record) = self.clips.get(key.as_bytes())? else {
                continue;
            };
            let clip: Clip = serde_json::from_slice(&record)?;
            if !clip.is_expired(now_ms) {
                reported.push(Reported { key, reports, clip });
            }
        }
        reported.sort_by(|a, b| b.reports.cmp(&a.reports).then(b.key.cmp(&a.key)));
        Ok(reported)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::legacy_gifs::{LEGACY_GIF_TREE, MIGRATION_BATCH};
    use crate::store::suite::{FILES, clip, user};
    use crate::store::writer::PURGE_BATCH;

    fn open_in(dir: &Path) -> EmbeddedStore {
        EmbeddedStore::open(dir, CommitMetrics::default()).unwrap()
    }

    fn open() -> (tempfile::TempDir, EmbeddedStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = open_in(dir.path());
        (dir, store)
    }

    async fn keys(store: &EmbeddedStore, limit: usize, now_ms: u64) -> Vec<Uuid> {
        let recent = store.recent(limit, now_ms).await.unwrap();
        recent.iter().map(|clip| clip.key).collect()
    }

    #[tokio::test]
    async fn purge_removes_exactly_what_is_due() {
        let (_dir, store) = open();
        let short = clip(1_000, 1_000);
        let long = clip(1_000, 10_000);
        store.insert(&short, FILES).await.unwrap();
        store.insert(&long, FILES).await.unwrap();

        assert_eq!(store.purge_expired(2_000).await.unwrap(), 1);
        assert_eq!(store.len(), 1);
        let parts = &store.parts;
        assert!(parts.clips.get(short.key.as_bytes()).unwrap().is_none());
        assert!(
            parts
                .files
                .read(short.key, Rendition::Gif)
                .unwrap()
                .is_none(),
            "its GIF file is gone"
        );
        assert!(
            parts
                .files
                .read(long.key, Rendition::Gif)
                .unwrap()
                .is_some()
        );
        assert_eq!(parts.expiry.len(), 1);
        assert_eq!(store.purge_expired(2_000).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn purge_handles_more_than_one_batch() {
        let (_dir, store) = open();
        for _ in 0..PURGE_BATCH + 3 {
            store.insert(&clip(1_000, 1), FILES).await.unwrap();
        }
        assert_eq!(store.purge_expired(5_000).await.unwrap(), PURGE_BATCH + 3);
        assert!(store.is_empty());
    }

    /// Stores `stored` with the GIF `GIF89a` in a store in `dir`, then closes it (releasing
    /// sled's lock) so that the test can open `dir` again.
    async fn store_and_close(dir: &Path, stored: &Clip) {
        let store = open_in(dir);
        store.insert(stored, FILES).await.unwrap();
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn clips_survive_closing_and_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let stored = clip(1_000, 10_000);
        store_and_close(dir.path(), &stored).await;

        let store = open_in(dir.path());
        assert_eq!(store.len(), 1);
        let (clip, gif) = store
            .file(stored.key, Rendition::Gif, 2_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(clip, stored);
        assert_eq!(gif, b"GIF89a");
    }

    #[tokio::test]
    async fn every_file_of_a_clip_is_kept_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let stored = clip(1_000, 10_000);
        store_and_close(dir.path(), &stored).await;

        let store = open_in(dir.path());
        for (rendition, bytes) in FILES.each() {
            let (_, read) = store
                .file(stored.key, rendition, 2_000)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(read, bytes, "{rendition:?}");
        }
    }

    #[tokio::test]
    async fn a_store_whose_files_are_in_the_gifs_folder_keeps_them() {
        // Stores made while clips had only a GIF kept them in `gifs/`.
        let dir = tempfile::tempdir().unwrap();
        let stored = clip(1_000, 10_000);
        store_and_close(dir.path(), &stored).await;
        std::fs::rename(dir.path().join("clips"), dir.path().join("gifs")).unwrap();

        let store = open_in(dir.path());
        let (_, gif) = store
            .file(stored.key, Rendition::Gif, 2_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(gif, FILES.gif);
        assert!(
            !dir.path().join("gifs").exists(),
            "the folder has its new name"
        );
    }

    #[tokio::test]
    async fn a_gif_file_without_a_stored_clip_is_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let stored = clip(1_000, 10_000);
        store_and_close(dir.path(), &stored).await;
        // What a crash between the GIF's fsync and its record's commit leaves behind.
        let orphan = dir.path().join(format!("clips/{}.mp4", Uuid::now_v7()));
        std::fs::write(&orphan, b"GIF89a").unwrap();

        let store = open_in(dir.path());
        assert!(!orphan.exists(), "the orphan is removed");
        let (_, gif) = store
            .file(stored.key, Rendition::Gif, 2_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(gif, b"GIF89a", "a stored clip keeps its GIF");
    }

    #[tokio::test]
    async fn a_store_with_gifs_in_sled_moves_them_to_files() {
        let dir = tempfile::tempdir().unwrap();
        // Clips from before videos, too: no video, no poster.
        let stored: Vec<Clip> = (0..MIGRATION_BATCH + 2)
            .map(|_| Clip {
                video: None,
                poster: None,
                video_bytes: None,
                ..clip(1_000, 10_000)
            })
            .collect();
        {
            // The layout before GIFs moved out of sled: three trees.
            let db = sled::open(dir.path()).unwrap();
            let (clips, gifs, expiry) = (
                db.open_tree("clips").unwrap(),
                db.open_tree(LEGACY_GIF_TREE).unwrap(),
                db.open_tree("expiry").unwrap(),
            );
            for clip in &stored {
                clips
                    .insert(clip.key.as_bytes(), serde_json::to_vec(clip).unwrap())
                    .unwrap();
                gifs.insert(clip.key.as_bytes(), clip.key.to_string().as_bytes())
                    .unwrap();
                expiry
                    .insert(expiry_key(clip.expires_at, clip.key), &[])
                    .unwrap();
            }
            db.flush().unwrap();
        }

        let store = open_in(dir.path());
        assert_eq!(store.len(), stored.len());
        for clip in &stored {
            let (_, gif) = store
                .file(clip.key, Rendition::Gif, 2_000)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(gif, clip.key.to_string().as_bytes());
            for rendition in [Rendition::Video, Rendition::Poster] {
                let file = store.file(clip.key, rendition, 2_000).await.unwrap();
                assert!(file.is_none(), "an old clip has only its GIF");
            }
        }
        let names = store.parts.db.tree_names();
        assert!(
            !names.iter().any(|name| name == LEGACY_GIF_TREE.as_bytes()),
            "the old tree is gone"
        );
        assert_eq!(
            store.purge_expired(20_000).await.unwrap(),
            stored.len(),
            "and the sweep still finds them"
        );
    }

    #[tokio::test]
    async fn removal_and_the_sweep_take_the_reports_along() {
        // What is counted and listed is the shared suite's (`suite.rs`); this is where
        // the records go.
        let (_dir, store) = open();
        let (kept, removed, expired) = (clip(1_000, 10_000), clip(1_000, 10_000), clip(1_000, 500));
        for stored in [&kept, &removed, &expired] {
            store.insert(stored, FILES).await.unwrap();
            store.report(stored.key, user('a'), 1_000).await.unwrap();
        }
        store.remove(vec![removed.key]).await.unwrap();
        store.purge_expired(2_000).await.unwrap();
        assert_eq!(
            store.parts.reports.len(),
            1,
            "only the kept clip's report is left"
        );
    }

    #[tokio::test]
    async fn bans_are_kept_and_the_sweep_forgets_those_that_ended() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_in(dir.path());
        let ban = |letter, until| Ban {
            user: user(letter),
            until,
            reason: Some("spam".into()),
            addresses: Vec::new(),
        };
        store.save_ban(&ban('a', 5_000)).await.unwrap();
        store.save_ban(&ban('b', 1_500)).await.unwrap();
        assert!(
            store
                .remove_ban(user('c'))
                .await
                .is_ok_and(|existed| !existed)
        );
        store.purge_expired(2_000).await.unwrap();
        store.close().await.unwrap();
        drop(store);

        let store = open_in(dir.path());
        assert_eq!(store.bans().await.unwrap(), [ban('a', 5_000)]);
        assert!(store.remove_ban(user('a')).await.unwrap());
        assert!(store.bans().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_closed_store_refuses_writes_and_still_reads() {
        let (_dir, store) = open();
        let stored = clip(1_000, 10_000);
        store.insert(&stored, FILES).await.unwrap();
        let other_handle = store.clone();
        store.close().await.unwrap();

        let refused = other_handle.insert(&clip(1_000, 10_000), FILES).await;
        assert!(matches!(refused, Err(StoreError::Closed)), "{refused:?}");
        assert!(
            other_handle.check().await.is_err(),
            "a store that cannot write is not healthy"
        );
        assert_eq!(keys(&other_handle, 10, 2_000).await, [stored.key]);
    }

    #[tokio::test]
    async fn every_insert_is_counted_in_a_flushed_batch() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = crate::metrics::Metrics::new();
        let store = EmbeddedStore::open(dir.path(), metrics.commits.clone()).unwrap();
        let mut inserts = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let store = store.clone();
            inserts.spawn(async move { store.insert(&clip(1_000, 10_000), FILES).await });
        }
        while let Some(inserted) = inserts.join_next().await {
            inserted.unwrap().unwrap();
        }
        let text = metrics.render();
        assert!(
            text.contains("loopchat_store_batch_clips_sum 20.0"),
            "every clip is in exactly one batch: {text}"
        );
    }

    /// sled 0.34 deadlocks when flushes run concurrently (upstream #1308, #1241, #1412);
    /// with one `flush_async` per insert, 16 tasks on 2 workers hung after 0–2 inserts.
    /// The watchdog turns a hang into a failure instead of a stuck CI run; its bound is a
    /// liveness limit, not a speed claim.
    #[test]
    fn many_concurrent_inserts_all_complete() {
        const TASKS: usize = 16;
        const INSERTS_PER_TASK: usize = 8;
        const WATCHDOG: Duration = Duration::from_secs(120);
        let dir = tempfile::tempdir().unwrap();
        let store = open_in(dir.path());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        // About the size of a real clip's GIF, so inserts fill sled's buffers as clips do.
        let gif = vec![0x47; 130 * 1024];
        let (finished, all_done) = std::sync::mpsc::channel();
        let writer = store.clone();
        runtime.spawn(async move {
            let mut inserts = tokio::task::JoinSet::new();
            for _ in 0..TASKS {
                let (store, gif) = (writer.clone(), gif.clone());
                inserts.spawn(async move {
                    for _ in 0..INSERTS_PER_TASK {
                        store
                            .insert(&clip(1_000, 10_000), ClipFiles { gif: &gif, ..FILES })
                            .await
                            .unwrap();
                    }
                });
            }
            while let Some(task) = inserts.join_next().await {
                task.unwrap();
            }
            finished.send(()).unwrap();
        });

        let outcome = all_done.recv_timeout(WATCHDOG);
        // A hung runtime cannot be dropped politely; leave its threads behind.
        runtime.shutdown_background();
        assert!(
            outcome.is_ok(),
            "concurrent inserts made no progress for {WATCHDOG:?}: {} of {} stored",
            store.len(),
            TASKS * INSERTS_PER_TASK
        );
        assert_eq!(store.len(), TASKS * INSERTS_PER_TASK);
    }
}
