//! The live room across nodes (SPEC §3, §8). Frames and `live:joined`/`live:left` already
//! reach every node through the adapter's room; what a node cannot know by itself is who
//! is in the room elsewhere and their latest frame, which a newcomer must be given. So each
//! node also keeps its participants, and their latest frame, in Redis:
//!
//! - `loopchat:live:members`: hash, connection id → the [`Member`] and its node;
//! - `loopchat:live:frame:{id}`: the latest frame (its meta as JSON, a newline, the JPEG),
//!   expiring after the room's 10 s silence rule, so Redis forgets a silent camera itself.
//!
//! Members of a node that stopped refreshing its presence (see [`super::presence`]) are
//! left out. While Redis is away a node's room is its own sockets, as on a single node.

use bytes::Bytes;
use redis::{AsyncCommands, RedisResult};
use serde::{Deserialize, Serialize};

use super::Cluster;
use super::presence::live_nodes;
use crate::live::{FrameMeta, Member, STALE_AFTER};

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

/// Records `me` as a participant on this node and returns the other nodes' participants.
pub async fn join(cluster: &Cluster, me: &Member) -> RedisResult<Elsewhere> {
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
pub async fn keep_frame(cluster: &Cluster, meta: &FrameMeta, jpeg: &Bytes) -> RedisResult<()> {
    let mut record = serde_json::to_vec(meta).expect("a frame's meta is plain data");
    record.push(b'\n');
    record.extend_from_slice(jpeg);
    let ttl_ms = u64::try_from(STALE_AFTER.as_millis()).unwrap_or(u64::MAX);
    cluster
        .connection
        .clone()
        .pset_ex(frame_key(&meta.from), record, ttl_ms)
        .await
}

/// Takes a participant of this node out of the room.
pub async fn leave(cluster: &Cluster, id: &str) -> RedisResult<()> {
    redis::pipe()
        .hdel(MEMBERS, id)
        .ignore()
        .del(frame_key(id))
        .ignore()
        .query_async(&mut cluster.connection.clone())
        .await
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
