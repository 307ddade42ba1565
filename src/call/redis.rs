//! Call rooms across nodes (SPEC §8, §9). A signal already reaches its target on any node
//! through the target's own Socket.IO room; what a node cannot know by itself is who is in
//! a call on the other nodes: the peers a newcomer is given, whether a call is full, and
//! whether a signal's target is in the sender's call. So each call's participants are also
//! kept in Redis, in `loopchat:call:{room}` (a hash: connection id → the [`Member`], its
//! node and when it joined).
//!
//! Joining is one Lua script, so that two people joining the last place on two nodes at
//! once cannot both get it. The script also drops participants of nodes that have stopped
//! (they were never told to leave). Each node still keeps its own sockets' calls in
//! [`super::local::LocalCalls`], which is what it checks first.

use redis::RedisResult;
use serde::{Deserialize, Serialize};

use super::room::RoomName;
use crate::clip::now_ms;
use crate::cluster::Cluster;
use crate::cluster::nodes::live_nodes;
use crate::member::Member;

fn room_key(room: &RoomName) -> String {
    format!("loopchat:call:{}", room.as_str())
}

#[derive(Serialize, Deserialize)]
struct Entry {
    member: Member,
    node: String,
    /// When it joined (ms), for the order of `peers`.
    at: u64,
}

/// KEYS: the room's hash, the hash of the call the socket leaves for it (or the room's
/// again). ARGV: the socket's id, its entry, the most a call takes, then every live node.
/// Answers the room's entries after the join, or nil when it is full (the socket then
/// stays where it was).
const JOIN: &str = r"
local id, entry, max = ARGV[1], ARGV[2], tonumber(ARGV[3])
local live = {}
for i = 4, #ARGV do live[ARGV[i]] = true end
local entries = redis.call('HGETALL', KEYS[1])
local others, already = 0, false
for i = 1, #entries, 2 do
  local ok, decoded = pcall(cjson.decode, entries[i + 1])
  if not ok or not live[decoded.node] then
    redis.call('HDEL', KEYS[1], entries[i])
  elseif entries[i] == id then
    already = true
  else
    others = others + 1
  end
end
if not already and others >= max then return false end
if KEYS[2] ~= KEYS[1] then redis.call('HDEL', KEYS[2], id) end
redis.call('HSET', KEYS[1], id, entry)
return redis.call('HGETALL', KEYS[1])
";

/// The call rooms' participants in Redis, as this node reads and writes them.
#[derive(Clone)]
pub struct RedisCalls {
    cluster: Cluster,
}

impl RedisCalls {
    pub fn new(cluster: Cluster) -> Self {
        Self { cluster }
    }

    /// Puts `me` in `room` (out of `leaving`, its call until now), unless `room` already has
    /// `max` participants on live nodes: then `None`. Otherwise the others, in the order they
    /// joined.
    pub async fn join(
        &self,
        room: &RoomName,
        leaving: Option<&RoomName>,
        me: &Member,
        max: usize,
    ) -> RedisResult<Option<Vec<Member>>> {
        let cluster = &self.cluster;
        let mut connection = cluster.connection.clone();
        let mut nodes = live_nodes(&mut connection).await?;
        // This node may not have written its first tally yet.
        nodes.push(cluster.node.to_string());
        let entry = Entry {
            member: me.clone(),
            node: cluster.node.to_string(),
            at: now_ms(),
        };
        let entry = serde_json::to_string(&entry).expect("an entry is plain data");
        let room_key = room_key(room);
        let leaving_key = leaving.map_or_else(|| room_key.clone(), self::room_key);
        let entries: Option<Vec<(String, String)>> = redis::Script::new(JOIN)
            .key(&room_key)
            .key(&leaving_key)
            .arg(&me.id)
            .arg(entry)
            .arg(max)
            .arg(&nodes)
            .invoke_async(&mut connection)
            .await?;
        let Some(entries) = entries else {
            return Ok(None);
        };
        let mut others: Vec<Entry> = entries
            .into_iter()
            .filter(|(id, _)| *id != me.id)
            .filter_map(|(_, entry)| serde_json::from_str(&entry).ok())
            .collect();
        others.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.member.id.cmp(&b.member.id)));
        Ok(Some(others.into_iter().map(|entry| entry.member).collect()))
    }

    /// Whether the connection `id` is in `room`, on whichever node.
    pub async fn is_in(&self, room: &RoomName, id: &str) -> RedisResult<bool> {
        redis::cmd("HEXISTS")
            .arg(room_key(room))
            .arg(id)
            .query_async(&mut self.cluster.connection.clone())
            .await
    }

    /// Takes the connection `id` out of `room`.
    pub async fn leave(&self, room: &RoomName, id: &str) -> RedisResult<()> {
        redis::cmd("HDEL")
            .arg(room_key(room))
            .arg(id)
            .query_async(&mut self.cluster.connection.clone())
            .await
    }
}
