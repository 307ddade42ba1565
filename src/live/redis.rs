//! The live room across nodes (SPEC §3, §8). Frames and `live:joined`/`live:left` already
//! reach every node through the adapter's room; what a node cannot know by itself is who
//! is in the room elsewhere and their latest frame, which a newcomer must be given. So each
//! node also keeps its participants, and their latest frame, in Redis:
//!
//! - `loopchat:live:members`: hash, connection id → the [`Member`] and its node;
//! - `loopchat:live:frame:{id}`: the latest frame (its meta as JSON, a newline, the JPEG),
//!   expiring after the room's 10 s silence rule, so Redis forgets a silent camera itself.
//!
//! Members of a node that stopped refreshing its presence ([`crate::cluster::nodes`]) are
//! left out, and every node tells its own viewers that they left
//! ([`RedisLive::announce_departed_nodes`]): a node killed with `kill -9` says nothing
//! itself. While Redis is away a node's room is its own sockets, as on a single node.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use redis::{AsyncCommands, RedisResult};
use serde::{Deserialize, Serialize};
use serde_json::json;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio_util::sync::CancellationToken;

use super::frame::{FrameMeta, ROOM, STALE_AFTER};
use crate::cluster::Cluster;
use crate::cluster::nodes::live_nodes;
use crate::member::Member;

/// How often a node looks for nodes that have gone.
const DEPARTURES_EVERY: Duration = Duration::from_secs(1);

const MEMBERS: &str = "loopchat:live:members";

fn frame_key(id: &str) -> String {
    format!("loopchat:live:frame:{id}")
}

#[derive(Serialize, Deserialize)]
struct Entry {
    member: Member,
    node: String,
}

/// Who else is in the room on the other nodes, and the latest frames of those streaming.
#[derive(Default)]
pub struct Elsewhere {
    pub members: Vec<Member>,
    pub frames: Vec<(FrameMeta, Bytes)>,
}

/// The live room's participants in Redis, as this node reads and writes them.
#[derive(Clone)]
pub struct RedisLive {
    cluster: Cluster,
}

impl RedisLive {
    pub fn new(cluster: Cluster) -> Self {
        Self { cluster }
    }

    /// Records `me` as a participant on this node and returns the other nodes' participants.
    pub async fn join(&self, me: &Member) -> RedisResult<Elsewhere> {
        let cluster = &self.cluster;
        let mut connection = cluster.connection.clone();
        let entry = Entry {
            member: me.clone(),
            node: cluster.node.to_string(),
        };
        let entry = serde_json::to_vec(&entry).expect("a member is plain data");
        let (entries,): (Vec<(String, Vec<u8>)>,) = redis::pipe()
            .hset(MEMBERS, &me.id, entry)
            .ignore()
            .hgetall(MEMBERS)
            .query_async(&mut connection)
            .await?;
        let nodes = live_nodes(&mut connection).await?;
        let members: Vec<Member> = entries
            .into_iter()
            .filter_map(|(_, entry)| serde_json::from_slice::<Entry>(&entry).ok())
            .filter(|entry| entry.node != *cluster.node && nodes.contains(&entry.node))
            .map(|entry| entry.member)
            .collect();
        if members.is_empty() {
            return Ok(Elsewhere::default());
        }
        let keys: Vec<String> = members.iter().map(|member| frame_key(&member.id)).collect();
        let stored: Vec<Option<Vec<u8>>> = connection.mget(&keys).await?;
        let frames = stored
            .into_iter()
            .flatten()
            .filter_map(|frame| decode(&frame))
            .collect();
        Ok(Elsewhere { members, frames })
    }

    /// Keeps `jpeg` as the latest frame of its sender, for newcomers on other nodes.
    pub async fn keep_frame(&self, meta: &FrameMeta, jpeg: &Bytes) -> RedisResult<()> {
        let mut record = serde_json::to_vec(meta).expect("a frame's meta is plain data");
        record.push(b'\n');
        record.extend_from_slice(jpeg);
        let ttl_ms = u64::try_from(STALE_AFTER.as_millis()).unwrap_or(u64::MAX);
        self.cluster
            .connection
            .clone()
            .pset_ex(frame_key(&meta.from), record, ttl_ms)
            .await
    }

    /// Takes a participant of this node out of the room.
    pub async fn leave(&self, id: &str) -> RedisResult<()> {
        redis::pipe()
            .hdel(MEMBERS, id)
            .ignore()
            .del(frame_key(id))
            .ignore()
            .query_async(&mut self.cluster.connection.clone())
            .await
    }

    /// Every [`DEPARTURES_EVERY`], notes the other nodes' live participants; when a node
    /// drops out of the live nodes, tells this node's sockets in the room that its
    /// participants left, and removes them from Redis.
    ///
    /// Each node announces from its own note of the tick before, so it does not matter which
    /// node removes the entries first: every node's note was taken while the dead node still
    /// counted as live (it stays so for the presence timeout, longer than one tick).
    pub async fn announce_departed_nodes<A: Adapter>(
        self,
        io: SocketIo<A>,
        stop: CancellationToken,
    ) {
        let cluster = self.cluster;
        let mut noted: HashMap<String, Vec<String>> = HashMap::new();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(DEPARTURES_EVERY) => {}
            }
            let mut connection = cluster.connection.clone();
            // With Redis away nothing is known about the other nodes; nobody is declared gone.
            let Ok(nodes) = live_nodes(&mut connection).await else {
                continue;
            };
            let Ok(entries) = connection
                .hgetall::<_, Vec<(String, Vec<u8>)>>(MEMBERS)
                .await
            else {
                continue;
            };
            for (node, ids) in &noted {
                if nodes.contains(node) {
                    continue;
                }
                for id in ids {
                    if let Err(error) = io
                        .local()
                        .to(ROOM)
                        .emit("live:left", &json!({ "id": id }))
                        .await
                    {
                        tracing::debug!(%error, "announcing a participant of a departed node failed");
                    }
                }
                if let Err(error) = connection.hdel::<_, _, ()>(MEMBERS, ids).await {
                    tracing::debug!(%error, "a departed node's live participants could not be removed");
                }
                tracing::info!(
                    node,
                    participants = ids.len(),
                    "a node left the cluster; its live participants are gone"
                );
            }
            noted.clear();
            for (_, entry) in entries {
                if let Ok(entry) = serde_json::from_slice::<Entry>(&entry)
                    && entry.node != *cluster.node
                    && nodes.contains(&entry.node)
                {
                    noted.entry(entry.node).or_default().push(entry.member.id);
                }
            }
        }
    }
}

fn decode(record: &[u8]) -> Option<(FrameMeta, Bytes)> {
    let split = record.iter().position(|byte| *byte == b'\n')?;
    let meta = serde_json::from_slice(&record[..split]).ok()?;
    Some((meta, Bytes::copy_from_slice(&record[split + 1..])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::UserId;

    #[test]
    fn a_kept_frame_reads_back_whole() {
        let meta = FrameMeta {
            from: "conn".into(),
            user: UserId::parse(&"u".repeat(20)).unwrap(),
            name: "amber".into(),
            at: 5,
            seq: 2,
        };
        let jpeg = Bytes::from_static(b"\xff\xd8\n\nnot really\xff\xd9");
        let mut record = serde_json::to_vec(&meta).unwrap();
        record.push(b'\n');
        record.extend_from_slice(&jpeg);
        let (read, bytes) = decode(&record).unwrap();
        assert_eq!((read.from, read.seq, bytes), (meta.from, meta.seq, jpeg));
    }
}
