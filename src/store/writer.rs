//! The store's one writer: group commit on a thread of its own.
//!
//! Every change to the store (a clip's insert, the sweep's removals) is a [`Job`] sent to
//! this thread. It takes every job that is waiting, writes and fsyncs the batch's GIF files,
//! applies the whole batch in one sled transaction, flushes sled once, and only then answers
//! each waiter. So:
//!
//! - an answered insert is on disk (acked means durable), and a slow fsync is paid once per
//!   batch, not once per clip: while one batch is committed, the next gathers in the queue;
//! - only this thread ever flushes, so two sled flushes never run at once. sled 0.34
//!   deadlocks under concurrent flushes (upstream issues #1308, #1241, #1412), which froze
//!   the whole server when every clip called `flush_async` itself;
//! - no transaction or fsync ever runs on an async worker, so a slow disk delays acks but
//!   not the sockets, the pages or `/healthz`.
//!
//! One transaction per batch rather than per clip: sled writes its log buffer out twice for
//! every transaction (`PageCache::pin_log`), each write with its own `sync_file_range`, so
//! on a slow disk per-clip transactions cost two slow syncs per clip.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use sled::IVec;
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{Parts, StoreError, expiry_key};
use crate::metrics::CommitMetrics;

/// Jobs one batch takes at most, so one batch's answers are not held back behind an
/// unbounded commit. The encoder queue admits far fewer clips than this at once.
const MAX_BATCH: usize = 256;
/// Expired clips one sweep job removes, so a backlog after a long downtime becomes many
/// small transactions between which inserts still get their turn.
pub(super) const PURGE_BATCH: usize = 256;

/// A change to make durable.
pub(super) enum Change {
    Insert {
        key: Uuid,
        description: IVec,
        gif: Vec<u8>,
        due: [u8; 24],
    },
    /// Remove up to [`PURGE_BATCH`] clips due at or before `now_ms`.
    PurgeExpired { now_ms: u64 },
    /// Nothing to change: answered once everything sent before it is on disk, after which
    /// the writer stops and every later change is answered [`StoreError::Closed`].
    Close,
}

/// What a change did, once it is on disk.
#[derive(Clone, Copy)]
pub(super) enum Applied {
    /// `new` is false when a clip with this key was already stored.
    Inserted {
        new: bool,
    },
    Purged {
        removed: usize,
        more: bool,
    },
    Closed,
}

/// Why a whole batch failed; every waiter of the batch gets a copy.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("writing GIF files: {0}")]
    GifFiles(Arc<std::io::Error>),
}

struct Job {
    change: Change,
    done: oneshot::Sender<Result<Applied, StoreError>>,
}

/// The sending side of the writer's queue; cheap to clone.
#[derive(Clone)]
pub(super) struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts the writer thread. It stops after a [`Change::Close`], or once every
    /// `Writer` is dropped and the jobs already sent are done.
    pub(super) fn start(
        parts: Parts,
        count: Arc<AtomicUsize>,
        metrics: CommitMetrics,
    ) -> std::io::Result<(Self, std::thread::JoinHandle<()>)> {
        // Unbounded is safe here: every insert holds a place in the bounded encoder queue
        // until it is answered, and the sweep sends one job at a time.
        let (jobs, queue) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(&parts, queue, &count, &metrics))?;
        Ok((Self { jobs }, thread))
    }

    /// Whether the writer thread has ended (closed, or died): writes would all fail.
    pub(super) fn is_stopped(&self) -> bool {
        self.jobs.is_closed()
    }

    /// Queues `change` and waits until it is applied and on disk.
    pub(super) async fn commit(&self, change: Change) -> Result<Applied, StoreError> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job { change, done })
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

fn run(
    parts: &Parts,
    mut queue: mpsc::UnboundedReceiver<Job>,
    count: &AtomicUsize,
    metrics: &CommitMetrics,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.blocking_recv_many(&mut batch, MAX_BATCH) > 0 {
        let changes: Vec<&Change> = batch.iter().map(|job| &job.change).collect();
        let answers = commit(parts, &changes, count, metrics);
        let closing = changes.iter().any(|change| matches!(change, Change::Close));
        for (index, job) in batch.drain(..).enumerate() {
            let answer = match &answers {
                Ok(applied) => Ok(applied[index]),
                Err(error) => Err(StoreError::Commit(error.clone())),
            };
            // The waiter may have gone (its socket's task was dropped): nothing to tell.
            let _ = job.done.send(answer);
        }
        if closing {
            return;
        }
    }
}

/// Makes `changes` durable: the GIF files first, then one sled transaction and one flush.
/// Returns what each change did, in order, or the error that kept the whole batch out.
fn commit(
    parts: &Parts,
    changes: &[&Change],
    count: &AtomicUsize,
    metrics: &CommitMetrics,
) -> Result<Vec<Applied>, CommitError> {
    let started = Instant::now();
    let gifs: Vec<(Uuid, &[u8])> = changes
        .iter()
        .filter_map(|change| match change {
            Change::Insert { key, gif, .. } => Some((*key, gif.as_slice())),
            _ => None,
        })
        .collect();
    if let Err(error) = parts.gifs.write_durably(&gifs) {
        tracing::error!(%error, clips = gifs.len(), "writing GIF files failed");
        remove_unrecorded_gifs(parts, gifs.iter().map(|(key, _)| *key));
        return Err(CommitError::GifFiles(Arc::new(error)));
    }

    // A range scan cannot run inside a transaction; the writer is the only one changing
    // the trees, so what it finds here is still there in the transaction below.
    let due: Vec<Vec<IVec>> = changes
        .iter()
        .map(|change| match change {
            Change::PurgeExpired { now_ms } => parts
                .expiry
                .range(..=expiry_key(*now_ms, Uuid::max()).as_slice())
                .keys()
                .take(PURGE_BATCH)
                .collect::<Result<_, _>>(),
            Change::Insert { .. } | Change::Close => Ok(Vec::new()),
        })
        .collect::<Result<_, _>>()?;

    let applied = (&parts.clips, &parts.expiry)
        .transaction(|(clips, expiry)| {
            let mut applied = Vec::with_capacity(changes.len());
            for (change, due) in changes.iter().zip(&due) {
                applied.push(match change {
                    Change::Insert {
                        key,
                        description,
                        due,
                        ..
                    } => {
                        let existed = clips.insert(key.as_bytes(), description.clone())?.is_some();
                        expiry.insert(due, &[])?;
                        Applied::Inserted { new: !existed }
                    }
                    Change::PurgeExpired { .. } => {
                        let mut removed = 0;
                        for due_key in due {
                            if clips.remove(&due_key[8..])?.is_some() {
                                removed += 1;
                            }
                            expiry.remove(due_key)?;
                        }
                        Applied::Purged {
                            removed,
                            more: due.len() == PURGE_BATCH,
                        }
                    }
                    Change::Close => Applied::Closed,
                });
            }
            Ok::<_, ConflictableTransactionError<Infallible>>(applied)
        })
        .map_err(storage)?;
    let new_clips = applied
        .iter()
        .filter(|applied| matches!(applied, Applied::Inserted { new: true }))
        .count();
    let removed: usize = applied
        .iter()
        .map(|applied| match applied {
            Applied::Purged { removed, .. } => *removed,
            _ => 0,
        })
        .sum();
    count.fetch_add(new_clips, Ordering::Relaxed);
    count.fetch_sub(removed, Ordering::Relaxed);

    let flushed = parts.db.flush();
    metrics
        .commit_seconds
        .observe(started.elapsed().as_secs_f64());
    // Batches of only sweep removals would drag the figure towards 0.
    if !gifs.is_empty() {
        metrics.batch_clips.observe(gifs.len() as f64);
    }
    if let Err(error) = flushed {
        tracing::error!(%error, clips = gifs.len(), "flushing the store failed");
        // Not on disk, so not acked: take the new clips out again so that they are never
        // served or replayed either.
        if let Err(error) = take_back(parts, changes, &applied, count) {
            tracing::error!(%error, "could not take back clips that were not flushed");
        }
        return Err(error.into());
    }

    // Only once their records are gone for good: a crash before this leaves orphans,
    // which the next start removes.
    let swept = due.iter().flatten().filter_map(|due_key| key_of(due_key));
    if let Err(error) = parts.gifs.remove(swept) {
        tracing::warn!(%error, "removing the GIF files of expired clips failed");
    }
    Ok(applied)
}

/// Removes the clips that `changes` added (not those that were there before).
fn take_back(
    parts: &Parts,
    changes: &[&Change],
    applied: &[Applied],
    count: &AtomicUsize,
) -> Result<(), sled::Error> {
    let added: Vec<_> = changes
        .iter()
        .zip(applied)
        .filter_map(|(change, applied)| match (change, applied) {
            (Change::Insert { key, due, .. }, Applied::Inserted { new: true }) => Some((key, due)),
            _ => None,
        })
        .collect();
    (&parts.clips, &parts.expiry)
        .transaction(|(clips, expiry)| {
            for (key, due) in &added {
                clips.remove(key.as_bytes())?;
                expiry.remove(&due[..])?;
            }
            Ok::<_, ConflictableTransactionError<Infallible>>(())
        })
        .map_err(storage)?;
    count.fetch_sub(added.len(), Ordering::Relaxed);
    remove_unrecorded_gifs(parts, added.iter().map(|(key, _)| **key));
    Ok(())
}

/// Removes the GIF files among `keys` that no stored clip refers to, best effort: what is
/// left is an orphan that the next start removes.
fn remove_unrecorded_gifs(parts: &Parts, keys: impl Iterator<Item = Uuid>) {
    let unrecorded = keys.filter(|key| !parts.clips.contains_key(key.as_bytes()).unwrap_or(true));
    if let Err(error) = parts.gifs.remove(unrecorded) {
        tracing::warn!(%error, "removing GIF files of clips that were not stored failed");
    }
}

/// The clip key at the end of an `expiry` key.
fn key_of(due_key: &[u8]) -> Option<Uuid> {
    Uuid::from_slice(due_key.get(8..)?).ok()
}

/// The storage error of a transaction that never aborts by itself.
fn storage(error: TransactionError<Infallible>) -> sled::Error {
    match error {
        TransactionError::Abort(never) => match never {},
        TransactionError::Storage(error) => error,
    }
}
