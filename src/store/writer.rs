//! The store's one writer: group commit on a thread of its own.
//!
//! Every change to the store (a clip's insert, the sweep's removals) is a [`Job`] sent to
//! this thread. It takes every job that is waiting, writes and fsyncs the batch's clip files,
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

use super::StoreError;
use super::layout::{Parts, expiry_key, key_of, report_key};
use crate::clip::{Clip, Rendition};
use crate::identity::UserId;
use crate::metrics::CommitMetrics;
use crate::moderation::Ban;

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
        files: [(Rendition, Vec<u8>); 3],
        due: [u8; 24],
    },
    /// Remove up to [`PURGE_BATCH`] clips due at or before `now_ms`.
    PurgeExpired {
        now_ms: u64,
    },
    /// Remove these clips, expired or not (a moderator's decision).
    Remove {
        keys: Vec<Uuid>,
    },
    /// `user` flags the clip `key`, if it is stored and unexpired at `now_ms`.
    Report {
        key: Uuid,
        user: UserId,
        now_ms: u64,
    },
    SaveBan {
        user: UserId,
        record: IVec,
    },
    RemoveBan {
        user: UserId,
    },
    /// Nothing to change: answered once everything sent before it is on disk, after which
    /// the writer stops and every later change is answered [`StoreError::Closed`].
    Close,
}

/// What a change did, once it is on disk.
#[derive(Debug, Clone)]
pub(super) enum Applied {
    /// `new` is false when a clip with this key was already stored.
    Inserted {
        new: bool,
    },
    Purged {
        removed: usize,
        more: bool,
    },
    /// The keys that were stored, of those asked to be removed.
    Removed {
        existed: Vec<Uuid>,
    },
    /// `known` is false when there was no such unexpired clip to report.
    Reported {
        known: bool,
    },
    BanSaved,
    BanRemoved {
        existed: bool,
    },
    Closed,
}

/// Why a whole batch failed; every waiter of the batch gets a copy.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("writing clip files: {0}")]
    ClipFiles(Arc<std::io::Error>),
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
        let answers: Vec<Result<Applied, StoreError>> = match answers {
            Ok(applied) => applied.into_iter().map(Ok).collect(),
            Err(error) => (0..batch.len())
                .map(|_| Err(StoreError::Commit(error.clone())))
                .collect(),
        };
        for (job, answer) in batch.drain(..).zip(answers) {
            // The waiter may have gone (its socket's task was dropped): nothing to tell.
            let _ = job.done.send(answer);
        }
        if closing {
            return;
        }
    }
}

/// Makes `changes` durable: the clip files first, then one sled transaction and one flush.
/// Returns what each change did, in order, or the error that kept the whole batch out.
fn commit(
    parts: &Parts,
    changes: &[&Change],
    count: &AtomicUsize,
    metrics: &CommitMetrics,
) -> Result<Vec<Applied>, CommitError> {
    let started = Instant::now();
    let inserted: Vec<Uuid> = changes
        .iter()
        .filter_map(|change| match change {
            Change::Insert { key, .. } => Some(*key),
            _ => None,
        })
        .collect();
    let files: Vec<_> = changes
        .iter()
        .flat_map(|change| match change {
            Change::Insert { key, files, .. } => files
                .iter()
                .map(|(rendition, bytes)| (*key, *rendition, bytes.as_slice()))
                .collect(),
            _ => Vec::new(),
        })
        .collect();
    if let Err(error) = parts.files.write_durably(&files) {
        tracing::error!(%error, clips = inserted.len(), "writing clip files failed");
        remove_unrecorded_files(parts, inserted.iter().copied());
        return Err(CommitError::ClipFiles(Arc::new(error)));
    }

    // Range scans and reads cannot run inside a transaction; the writer is the only one
    // changing the trees, so what they find here is still there in the transaction below.
    let plans: Vec<Plan> = changes
        .iter()
        .map(|change| plan(parts, change))
        .collect::<Result<_, _>>()?;

    let applied = (&parts.clips, &parts.expiry, &parts.reports, &parts.bans)
        .transaction(|(clips, expiry, reports, bans)| {
            let mut applied = Vec::with_capacity(changes.len());
            for (change, plan) in changes.iter().zip(&plans) {
                applied.push(match (change, plan) {
                    (
                        Change::Insert {
                            key,
                            description,
                            due,
                            ..
                        },
                        _,
                    ) => {
                        let existed = clips.insert(key.as_bytes(), description.clone())?.is_some();
                        expiry.insert(due, &[])?;
                        Applied::Inserted { new: !existed }
                    }
                    (Change::PurgeExpired { .. } | Change::Remove { .. }, Plan::Remove(doomed)) => {
                        let mut existed = Vec::with_capacity(doomed.clips.len());
                        for (key, due) in &doomed.clips {
                            if clips.remove(key.as_bytes())?.is_some() {
                                existed.push(*key);
                            }
                            expiry.remove(&due[..])?;
                        }
                        for report in &doomed.reports {
                            reports.remove(report)?;
                        }
                        for user in &doomed.bans {
                            bans.remove(user)?;
                        }
                        match change {
                            Change::PurgeExpired { .. } => Applied::Purged {
                                removed: existed.len(),
                                more: doomed.clips.len() == PURGE_BATCH,
                            },
                            _ => Applied::Removed { existed },
                        }
                    }
                    (Change::Report { key, user, .. }, Plan::Report { known }) => {
                        if *known {
                            reports.insert(report_key(*key, user), &[])?;
                        }
                        Applied::Reported { known: *known }
                    }
                    (Change::SaveBan { user, record }, _) => {
                        bans.insert(user.as_str(), record.clone())?;
                        Applied::BanSaved
                    }
                    (Change::RemoveBan { user }, _) => Applied::BanRemoved {
                        existed: bans.remove(user.as_str())?.is_some(),
                    },
                    (Change::Close, _) => Applied::Closed,
                    (
                        Change::PurgeExpired { .. } | Change::Remove { .. } | Change::Report { .. },
                        _,
                    ) => {
                        unreachable!("plan() gives every removal and report its plan")
                    }
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
            Applied::Removed { existed } => existed.len(),
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
    if !inserted.is_empty() {
        metrics.batch_clips.observe(inserted.len() as f64);
    }
    if let Err(error) = flushed {
        tracing::error!(%error, clips = inserted.len(), "flushing the store failed");
        // Not on disk, so not acked: take the new clips out again so that they are never
        // served or replayed either.
        if let Err(error) = take_back(parts, changes, &applied, count) {
            tracing::error!(%error, "could not take back clips that were not flushed");
        }
        return Err(error.into());
    }

    // Only once their records are gone for good: a crash before this leaves orphans,
    // which the next start removes.
    let removed = plans.iter().flat_map(|plan| match plan {
        Plan::Remove(doomed) => doomed.clips.iter().map(|(key, _)| *key).collect(),
        _ => Vec::new(),
    });
    if let Err(error) = parts.files.remove(removed) {
        tracing::warn!(%error, "removing the files of removed clips failed");
    }
    Ok(applied)
}

/// What a change will do, found out before its transaction.
enum Plan {
    /// Nothing to look up first.
    Direct,
    Remove(Doomed),
    Report {
        known: bool,
    },
}

/// Clips to remove: each key with its `expiry` key, and every report about them; and,
/// for the sweep, the bans whose time is up.
struct Doomed {
    clips: Vec<(Uuid, [u8; 24])>,
    reports: Vec<IVec>,
    bans: Vec<IVec>,
}

fn plan(parts: &Parts, change: &Change) -> Result<Plan, CommitError> {
    Ok(match change {
        Change::PurgeExpired { now_ms } => {
            let keys = parts
                .expiry
                .range(..=expiry_key(*now_ms, Uuid::max()).as_slice())
                .keys()
                .take(PURGE_BATCH)
                .map(|due| {
                    let due = due?;
                    let key =
                        key_of(&due).ok_or_else(|| corrupt("an expiry key of the wrong length"))?;
                    let mut exact = [0; 24];
                    exact.copy_from_slice(&due);
                    Ok((key, exact))
                })
                .collect::<Result<Vec<_>, CommitError>>()?;
            let mut doomed = doomed(parts, keys)?;
            doomed.bans = bans_over(parts, *now_ms)?;
            Plan::Remove(doomed)
        }
        Change::Remove { keys } => {
            let mut stored = Vec::with_capacity(keys.len());
            for key in keys {
                if let Some(record) = parts.clips.get(key.as_bytes())? {
                    let clip: Clip = serde_json::from_slice(&record)
                        .map_err(|_| corrupt("a clip record that is not JSON"))?;
                    stored.push((*key, expiry_key(clip.expires_at, *key)));
                }
            }
            Plan::Remove(doomed(parts, stored)?)
        }
        Change::Report { key, now_ms, .. } => {
            let known = match parts.clips.get(key.as_bytes())? {
                Some(record) => serde_json::from_slice::<Clip>(&record)
                    .is_ok_and(|clip| !clip.is_expired(*now_ms)),
                None => false,
            };
            Plan::Report { known }
        }
        Change::Insert { .. }
        | Change::SaveBan { .. }
        | Change::RemoveBan { .. }
        | Change::Close => Plan::Direct,
    })
}

fn doomed(parts: &Parts, clips: Vec<(Uuid, [u8; 24])>) -> Result<Doomed, CommitError> {
    let mut reports = Vec::new();
    for (key, _) in &clips {
        for report in parts.reports.scan_prefix(key.as_bytes()).keys() {
            reports.push(report?);
        }
    }
    Ok(Doomed {
        clips,
        reports,
        bans: Vec::new(),
    })
}

/// The users whose ban ended at or before `now_ms`. Bans are few: a full scan is cheap.
fn bans_over(parts: &Parts, now_ms: u64) -> Result<Vec<IVec>, CommitError> {
    let mut over = Vec::new();
    for entry in parts.bans.iter() {
        let (user, record) = entry?;
        let ban: Ban =
            serde_json::from_slice(&record).map_err(|_| corrupt("a ban that is not JSON"))?;
        if ban.until <= now_ms {
            over.push(user);
        }
    }
    Ok(over)
}

fn corrupt(what: &str) -> CommitError {
    CommitError::Sled(sled::Error::Unsupported(format!("the store holds {what}")))
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
    remove_unrecorded_files(parts, added.iter().map(|(key, _)| **key));
    Ok(())
}

/// Removes the files of the clips among `keys` that are not stored, best effort: what is
/// left is an orphan that the next start removes.
fn remove_unrecorded_files(parts: &Parts, keys: impl Iterator<Item = Uuid>) {
    let unrecorded = keys.filter(|key| !parts.clips.contains_key(key.as_bytes()).unwrap_or(true));
    if let Err(error) = parts.files.remove(unrecorded) {
        tracing::warn!(%error, "removing files of clips that were not stored failed");
    }
}

/// The storage error of a transaction that never aborts by itself.
fn storage(error: TransactionError<Infallible>) -> sled::Error {
    match error {
        TransactionError::Abort(never) => match never {},
        TransactionError::Storage(error) => error,
    }
}
