//! Cluster mode's store (SPEC §8): every node reads and writes the same Redis.
//!
//! - `loopchat:clip:{key}`: the [`Clip`] as JSON, expiring (`PXAT`) at its `expires_at`;
//! - `loopchat:gif:{key}`, `loopchat:mp4:{key}`, `loopchat:jpg:{key}`: the clip's files
//!   (SPEC §12), expiring with it;
//! - `loopchat:recent`: sorted set, key scored by `created_at`: the replay order;
//! - `loopchat:expiry`: sorted set, key scored by `expires_at`: what the sweep removes
//!   from the two sets once Redis itself has dropped the clip;
//! - `loopchat:reports:{key}`: set of the user ids that reported it, expiring with it, and
//!   `loopchat:reported`: sorted set, key scored by its report count;
//! - `loopchat:bans`: hash, user id → the [`Ban`] as JSON.
//!
//! A clip's records are written in one `MULTI`/`EXEC`, so a reader sees all of it or
//! none. Every read checks `expires_at` too: Redis expires keys lazily to the millisecond,
//! but the sorted sets are only cleaned by the sweep. An insert repeated after an unknown
//! outcome (a timeout) writes the same values again: harmless.
//!
//! Durability is Redis's: the node refuses to start on a Redis that does not `fsync` every
//! write unless told otherwise ([`crate::cluster::check_durability`]), so `EXEC`'s answer
//! means on disk.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use uuid::Uuid;

use super::{ClipFiles, Reported, StoreError};
use crate::clip::{Clip, Rendition};
use crate::cluster::health::Health;
use crate::identity::UserId;
use crate::moderation::Ban;

const RECENT: &str = "loopchat:recent";
const EXPIRY: &str = "loopchat:expiry";
const REPORTED: &str = "loopchat:reported";
const BANS: &str = "loopchat:bans";
/// Clips the sweep takes out of the sorted sets per round trip.
const SWEEP_BATCH: isize = 500;

fn clip_key(key: Uuid) -> String {
    format!("loopchat:clip:{key}")
}

/// One of a clip's files: named by its extension, so the GIF keeps the name it had before
/// clips had videos.
fn file_key(key: Uuid, rendition: Rendition) -> String {
    format!("loopchat:{}:{key}", rendition.extension())
}

fn reports_key(key: Uuid) -> String {
    format!("loopchat:reports:{key}")
}

/// The clips of these members of a sorted set, in their order, leaving out any whose
/// record Redis has already dropped.
async fn clips_named(
    connection: &mut ConnectionManager,
    members: &[String],
) -> Result<Vec<Clip>, StoreError> {
    let records: Vec<String> = members
        .iter()
        .filter_map(|key| Uuid::parse_str(key).ok())
        .map(clip_key)
        .collect();
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let descriptions: Vec<Option<Vec<u8>>> = connection.mget(&records).await?;
    descriptions
        .into_iter()
        .flatten()
        .map(|description| Ok(serde_json::from_slice(&description)?))
        .collect()
}

/// The shared store; cheap to clone, every clone is the same connection.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    /// Whether the store's Redis answered its last heartbeat. While it does not, every
    /// call fails at once with `Unavailable` instead of waiting for a timeout.
    health: Health,
    /// `ZCARD loopchat:recent` as of the last write or sweep, for `/metrics`.
    count: Arc<AtomicUsize>,
}

impl RedisStore {
    pub fn new(connection: ConnectionManager, health: Health) -> Self {
        Self {
            connection,
            health,
            count: Arc::default(),
        }
    }

    /// The connection, unless Redis is known to be away.
    fn connection(&self) -> Result<ConnectionManager, StoreError> {
        if self.health.is_up() {
            Ok(self.connection.clone())
        } else {
            Err(StoreError::Away)
        }
    }

    pub async fn insert(&self, clip: &Clip, files: ClipFiles<'_>) -> Result<(), StoreError> {
        let description = serde_json::to_vec(clip)?;
        let member = clip.key.to_string();
        let mut transaction = redis::pipe();
        transaction
            .atomic()
            .cmd("SET")
            .arg(clip_key(clip.key))
            .arg(description)
            .arg("PXAT")
            .arg(clip.expires_at)
            .ignore();
        for (rendition, bytes) in files.each() {
            transaction
                .cmd("SET")
                .arg(file_key(clip.key, rendition))
                .arg(bytes)
                .arg("PXAT")
                .arg(clip.expires_at)
                .ignore();
        }
        transaction
            .zadd(RECENT, &member, clip.created_at)
            .ignore()
            .zadd(EXPIRY, &member, clip.expires_at)
            .ignore()
            .zcard(RECENT);
        let (count,): (usize,) = transaction.query_async(&mut self.connection()?).await?;
        self.count.store(count, Ordering::Relaxed);
        Ok(())
    }

    pub async fn recent(&self, limit: usize, now_ms: u64) -> Result<Vec<Clip>, StoreError> {
        let mut connection = self.connection()?;
        let mut newest_first = Vec::with_capacity(limit);
        let page = limit.max(1) as isize;
        let mut start = 0;
        // Pages of the newest keys until `limit` live ones are found: expired clips are
        // normally the oldest, so one page is the usual case.
        while newest_first.len() < limit {
            let keys: Vec<String> = connection
                .zrevrange(RECENT, start, start + page - 1)
                .await?;
            if keys.is_empty() {
                break;
            }
            start += page;
            for clip in clips_named(&mut connection, &keys).await? {
                if !clip.is_expired(now_ms) && newest_first.len() < limit {
                    newest_first.push(clip);
                }
            }
        }
        newest_first.reverse();
        Ok(newest_first)
    }

    pub async fn file(
        &self,
        key: Uuid,
        rendition: Rendition,
        now_ms: u64,
    ) -> Result<Option<(Clip, Vec<u8>)>, StoreError> {
        let (description, bytes): (Option<Vec<u8>>, Option<Vec<u8>>) = redis::pipe()
            .get(clip_key(key))
            .get(file_key(key, rendition))
            .query_async(&mut self.connection()?)
            .await?;
        let (Some(description), Some(bytes)) = (description, bytes) else {
            return Ok(None);
        };
        let clip: Clip = serde_json::from_slice(&description)?;
        Ok((!clip.is_expired(now_ms) && rendition.belongs_to(&clip)).then_some((clip, bytes)))
    }

    /// Redis has already dropped the expired clips' records; what is left to remove is
    /// their place in the sorted sets.
    pub async fn purge_expired(&self, now_ms: u64) -> Result<usize, StoreError> {
        let mut connection = self.connection()?;
        let mut removed = 0;
        loop {
            let due: Vec<String> = redis::cmd("ZRANGE")
                .arg(EXPIRY)
                .arg("-inf")
                .arg(now_ms)
                .arg("BYSCORE")
                .arg("LIMIT")
                .arg(0)
                .arg(SWEEP_BATCH)
                .query_async(&mut connection)
                .await?;
            if due.is_empty() {
                break;
            }
            let keys: Vec<Uuid> = due
                .iter()
                .filter_map(|key| Uuid::parse_str(key).ok())
                .collect();
            removed += self.remove_records(&mut connection, &due, &keys).await?;
            if due.len() < SWEEP_BATCH as usize {
                break;
            }
        }
        let count: usize = connection.zcard(RECENT).await?;
        self.count.store(count, Ordering::Relaxed);
        self.forget_ended_bans(&mut connection, now_ms).await?;
        Ok(removed)
    }

    /// Bans are few; the sweep reads them all and drops those whose time is up.
    async fn forget_ended_bans(
        &self,
        connection: &mut ConnectionManager,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let bans: Vec<(String, Vec<u8>)> = connection.hgetall(BANS).await?;
        let ended: Vec<&String> = bans
            .iter()
            .filter(|(_, record)| {
                serde_json::from_slice::<Ban>(record).is_ok_and(|ban| ban.until <= now_ms)
            })
            .map(|(user, _)| user)
            .collect();
        if !ended.is_empty() {
            connection.hdel::<_, _, ()>(BANS, ended).await?;
        }
        Ok(())
    }

    pub async fn remove(&self, keys: Vec<Uuid>) -> Result<Vec<Uuid>, StoreError> {
        let mut connection = self.connection()?;
        let mut existed = Vec::new();
        for key in keys {
            let member = key.to_string();
            let (deleted,): (usize,) = self
                .removal(std::slice::from_ref(&member), std::slice::from_ref(&key))
                .query_async(&mut connection)
                .await?;
            if deleted > 0 {
                existed.push(key);
            }
        }
        Ok(existed)
    }

    /// One transaction that removes these clips everywhere; answers how many clip records
    /// still existed.
    fn removal(&self, members: &[String], keys: &[Uuid]) -> redis::Pipeline {
        let mut transaction = redis::pipe();
        transaction.atomic();
        transaction.del(keys.iter().map(|key| clip_key(*key)).collect::<Vec<_>>());
        let others: Vec<String> = keys
            .iter()
            .flat_map(|key| {
                Rendition::ALL
                    .map(|rendition| file_key(*key, rendition))
                    .into_iter()
                    .chain([reports_key(*key)])
            })
            .collect();
        transaction.del(others).ignore();
        for set in [RECENT, EXPIRY, REPORTED] {
            transaction.zrem(set, members).ignore();
        }
        transaction
    }

    async fn remove_records(
        &self,
        connection: &mut ConnectionManager,
        members: &[String],
        keys: &[Uuid],
    ) -> Result<usize, StoreError> {
        self.removal(members, keys)
            .query_async::<()>(connection)
            .await?;
        Ok(members.len())
    }

    pub async fn clips_by(&self, user: UserId, now_ms: u64) -> Result<Vec<Uuid>, StoreError> {
        let mut connection = self.connection()?;
        let keys: Vec<String> = connection.zrange(RECENT, 0, -1).await?;
        let mut by_user = Vec::new();
        for chunk in keys.chunks(SWEEP_BATCH as usize) {
            for clip in clips_named(&mut connection, chunk).await? {
                if clip.author.id == user && !clip.is_expired(now_ms) {
                    by_user.push(clip.key);
                }
            }
        }
        Ok(by_user)
    }

    pub async fn report(&self, key: Uuid, user: UserId, now_ms: u64) -> Result<bool, StoreError> {
        let mut connection = self.connection()?;
        let description: Option<Vec<u8>> = connection.get(clip_key(key)).await?;
        let Some(description) = description else {
            return Ok(false);
        };
        let clip: Clip = serde_json::from_slice(&description)?;
        if clip.is_expired(now_ms) {
            return Ok(false);
        }
        let reports = reports_key(key);
        let (added,): (usize,) = redis::pipe()
            .atomic()
            .sadd(&reports, user.as_str())
            .cmd("PEXPIREAT")
            .arg(&reports)
            .arg(clip.expires_at)
            .ignore()
            .query_async(&mut connection)
            .await?;
        if added > 0 {
            connection
                .zincr::<_, _, _, ()>(REPORTED, key.to_string(), 1)
                .await?;
        }
        Ok(true)
    }

    pub async fn reports(&self, now_ms: u64) -> Result<Vec<Reported>, StoreError> {
        let mut connection = self.connection()?;
        let counted: Vec<(String, f64)> = connection.zrevrange_withscores(REPORTED, 0, -1).await?;
        let mut reported = Vec::with_capacity(counted.len());
        for (key, reports) in counted {
            let Ok(key) = Uuid::parse_str(&key) else {
                continue;
            };
            let description: Option<Vec<u8>> = connection.get(clip_key(key)).await?;
            let Some(description) = description else {
                continue;
            };
            let clip: Clip = serde_json::from_slice(&description)?;
            if !clip.is_expired(now_ms) {
                reported.push(Reported {
                    key,
                    reports: reports as usize,
                    clip,
                });
            }
        }
        reported.sort_by(|a, b| b.reports.cmp(&a.reports).then(b.key.cmp(&a.key)));
        Ok(reported)
    }

    pub async fn save_ban(&self, ban: &Ban) -> Result<(), StoreError> {
        let record = serde_json::to_vec(ban)?;
        self.connection()?
            .hset::<_, _, _, ()>(BANS, ban.user.as_str(), record)
            .await?;
        Ok(())
    }

    pub async fn remove_ban(&self, user: UserId) -> Result<bool, StoreError> {
        let removed: usize = self.connection()?.hdel(BANS, user.as_str()).await?;
        Ok(removed > 0)
    }

    pub async fn bans(&self) -> Result<Vec<Ban>, StoreError> {
        let records: Vec<Vec<u8>> = self.connection()?.hvals(BANS).await?;
        records
            .iter()
            .map(|record| Ok(serde_json::from_slice(record)?))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub async fn check(&self) -> Result<(), StoreError> {
        redis::cmd("PING")
            .query_async::<()>(&mut self.connection()?)
            .await?;
        Ok(())
    }

    /// Every write was answered by Redis before it returned: nothing is left to flush.
    pub async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
