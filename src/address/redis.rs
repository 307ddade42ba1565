//! The limits per address across nodes (SPEC §8, §13): each check is one Lua script, so
//! two nodes can never both take the last place or the last token.
//!
//! Open connections are counted per node, in one hash per node (`loopchat:open:<node>`,
//! address key → count) that the node rewrites from its own count every second: a check
//! adds up the hashes of the live nodes ([`NODES`], kept by presence), so the sockets of a
//! node killed with `kill -9` stop counting when it drops out of that set, within
//! [`NODE_TIMEOUT_MS`]. New connections, clips, reports and failed sign-ins are counted in
//! keys of their own per address, which expire when they no longer matter. Every key names
//! the address by its keyed hash only. The scripts build the per-node key names from
//! [`NODES`], which a standalone Redis (what the cluster mode runs on) allows.

use std::num::NonZeroU32;
use std::sync::LazyLock;
use std::time::Duration;

use redis::{RedisResult, Script};

use super::key::AddressKey;
use super::rules::{ADMIN_FAILURES, ADMIN_WINDOW, CONNECTION_WINDOW, Settings};
use crate::clip::now_ms;
use crate::cluster::Cluster;
use crate::cluster::nodes::{NODE_TIMEOUT_MS, NODES};

const OPEN_PREFIX: &str = "loopchat:open:";

/// Takes a place for a connection: refused (1) if the live nodes' open connections from
/// the address, this node's included, are at the cap, or the address opened its quota in
/// the window; else counts it (0).
/// KEYS: the address's window of new connections, this node's open hash, [`NODES`].
/// ARGV: address key, this node, now (ms), cap, quota, window (ms), node timeout (ms),
/// a unique member for the window, the open hash's lifetime (ms), the open hashes' prefix,
/// this node's open connections from the address before this one (its own count, which
/// is fresher than its hash).
static OPEN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local key, me, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local open = tonumber(ARGV[11])
local nodes = redis.call('ZRANGE', KEYS[3], now - tonumber(ARGV[7]), '+inf', 'BYSCORE')
for _, node in ipairs(nodes) do
  if node ~= me then
    open = open + tonumber(redis.call('HGET', ARGV[10] .. node, key) or '0')
  end
end
if open >= tonumber(ARGV[4]) then return 1 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[6]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[5]) then return 1 end
redis.call('ZADD', KEYS[1], now, ARGV[8])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('HINCRBY', KEYS[2], key, 1)
redis.call('PEXPIRE', KEYS[2], ARGV[9])
return 0
",
    )
});

/// A token bucket: takes a token (1) or not (0). Redis's own clock, so that nodes whose
/// clocks differ still share one bucket fairly.
/// KEYS: the bucket. ARGV: capacity, milliseconds per token.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local capacity, per = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]) or capacity, tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) / per)
local taken = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity * per))
return taken
",
    )
});

/// Counts a failed sign-in; the window starts at the first.
/// KEYS: the address's failures. ARGV: window (ms).
static ADMIN_FAILED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 0
",
    )
});

/// How many milliseconds the address must wait (0: none).
/// KEYS: the address's failures. ARGV: failures allowed.
static ADMIN_WAIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then return 0 end
return math.max(1, redis.call('PTTL', KEYS[1]))
",
    )
});

fn address_key(key: &AddressKey, what: &str) -> String {
    format!("loopchat:address:{key}:{what}")
}

fn open_key(node: &str) -> String {
    format!("{OPEN_PREFIX}{node}")
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// One node's side of the shared counters.
#[derive(Clone)]
pub struct RedisLimits {
    cluster: Cluster,
}

impl RedisLimits {
    pub fn new(cluster: Cluster) -> Self {
        Self { cluster }
    }

    /// Whether the cluster's Redis answered its last heartbeat: while it does not, the
    /// node counts alone rather than wait on every check.
    pub fn is_up(&self) -> bool {
        self.cluster.health.is_up()
    }

    /// Takes a place for a connection from `key` (true), or refuses it (false).
    pub async fn open(&self, key: &AddressKey, cap: NonZeroU32, mine: u32) -> RedisResult<bool> {
        let node = &*self.cluster.node;
        let member = format!("{node}:{}", uuid::Uuid::now_v7().simple());
        let refused: u8 = OPEN
            .key(address_key(key, "opened"))
            .key(open_key(node))
            .key(NODES)
            .arg(key.as_str())
            .arg(node)
            .arg(now_ms())
            .arg(cap.get())
            .arg(Settings::new_connections(cap))
            .arg(millis(CONNECTION_WINDOW))
            .arg(NODE_TIMEOUT_MS)
            .arg(member)
            .arg(2 * NODE_TIMEOUT_MS)
            .arg(OPEN_PREFIX)
            .arg(mine)
            .invoke_async(&mut self.cluster.connection.clone())
            .await?;
        Ok(refused == 0)
    }

    /// Rewrites this node's open connections per address from its own count, which is the
    /// truth: a close is counted here, and any drift is gone within a second.
    pub async fn publish_open(&self, counts: &[(AddressKey, u32)]) -> RedisResult<()> {
        let key = open_key(&self.cluster.node);
        let mut pipe = redis::pipe();
        pipe.atomic().del(&key).ignore();
        if !counts.is_empty() {
            let fields: Vec<(&str, u32)> = counts
                .iter()
                .map(|(address, count)| (address.as_str(), *count))
                .collect();
            pipe.hset_multiple(&key, &fields)
                .ignore()
                .pexpire(&key, i64::try_from(2 * NODE_TIMEOUT_MS).unwrap_or(i64::MAX))
                .ignore();
        }
        pipe.query_async(&mut self.cluster.connection.clone()).await
    }

    /// Sets this node's open connections from `key` to `count`, its own count: at a close,
    /// so that the place is free on every node at once rather than at the next refresh.
    pub async fn set_open(&self, key: &AddressKey, count: u32) -> RedisResult<()> {
        let hash = open_key(&self.cluster.node);
        let mut pipe = redis::pipe();
        if count == 0 {
            pipe.hdel(&hash, key.as_str());
        } else {
            pipe.hset(&hash, key.as_str(), count);
        }
        pipe.query_async(&mut self.cluster.connection.clone()).await
    }

    /// Takes a token from `key`'s bucket `what` (`message`, `report`).
    pub async fn take(
        &self,
        key: &AddressKey,
        what: &str,
        (capacity, refill): (u32, Duration),
    ) -> RedisResult<bool> {
        let taken: u8 = TAKE
            .key(address_key(key, what))
            .arg(capacity)
            .arg(millis(refill))
            .invoke_async(&mut self.cluster.connection.clone())
            .await?;
        Ok(taken == 1)
    }

    pub async fn admin_failed(&self, key: &AddressKey) -> RedisResult<()> {
        ADMIN_FAILED
            .key(address_key(key, "admin"))
            .arg(millis(ADMIN_WINDOW))
            .invoke_async(&mut self.cluster.connection.clone())
            .await
    }

    pub async fn admin_retry_after(&self, key: &AddressKey) -> RedisResult<Option<Duration>> {
        let wait: u64 = ADMIN_WAIT
            .key(address_key(key, "admin"))
            .arg(ADMIN_FAILURES)
            .invoke_async(&mut self.cluster.connection.clone())
            .await?;
        Ok((wait > 0).then(|| Duration::from_millis(wait)))
    }

    /// Remembers the address `user` last sent a clip from, for as long as a clip lives:
    /// what a ban by address reaches when the user is no longer connected.
    pub async fn clip_sent(&self, user: &str, key: &AddressKey, ttl: Duration) -> RedisResult<()> {
        redis::cmd("SET")
            .arg(format!("loopchat:last-clip:{user}"))
            .arg(key.as_str())
            .arg("PX")
            .arg(millis(ttl).max(1))
            .query_async(&mut self.cluster.connection.clone())
            .await
    }

    pub async fn last_clip_address(&self, user: &str) -> RedisResult<Option<AddressKey>> {
        let hex: Option<String> = redis::cmd("GET")
            .arg(format!("loopchat:last-clip:{user}"))
            .query_async(&mut self.cluster.connection.clone())
            .await?;
        Ok(hex.as_deref().and_then(AddressKey::parse))
    }

    /// Takes this node's open connections out of the count, at a stop.
    pub async fn leave(&self) -> RedisResult<()> {
        redis::cmd("DEL")
            .arg(open_key(&self.cluster.node))
            .query_async(&mut self.cluster.connection.clone())
            .await
    }
}
