//! Presence across nodes: each node writes its own tally to Redis once a second, with an
//! expiry, and reads the others'. A node that dies simply stops refreshing, and its
//! sockets stop counting within [`NODE_TIMEOUT`]. (`fetch_sockets` would also count every
//! socket, but it loads every node on every call; SCALE.md.)

use redis::RedisResult;

use super::Cluster;
use crate::clip::now_ms;
use crate::presence::NodeTally;

/// Sorted set: node id → when it last wrote its tally (ms).
const NODES: &str = "loopchat:nodes";
/// A node that has not written its tally for this long is gone.
const NODE_TIMEOUT_MS: u64 = 3_000;

fn tally_key(node: &str) -> String {
    format!("loopchat:presence:{node}")
}

/// Writes `mine` and returns the other live nodes' tallies; sets the node-count gauge.
pub async fn exchange(cluster: &Cluster, mine: &NodeTally) -> RedisResult<Vec<NodeTally>> {
    let now = now_ms();
    let mut connection = cluster.connection.clone();
    let mine = serde_json::to_vec(mine).expect("a tally is plain data");
    let (nodes,): (Vec<String>,) = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg(tally_key(&cluster.node))
        .arg(mine)
        .arg("PX")
        .arg(NODE_TIMEOUT_MS)
        .ignore()
        .zadd(NODES, &*cluster.node, now)
        .ignore()
        .zrembyscore(NODES, "-inf", now.saturating_sub(NODE_TIMEOUT_MS))
        .ignore()
        .zrange(NODES, 0, -1)
        .query_async(&mut connection)
        .await?;
    cluster
        .nodes
        .set(i64::try_from(nodes.len()).unwrap_or(i64::MAX));
    let others: Vec<String> = nodes
        .iter()
        .filter(|node| **node != *cluster.node)
        .map(|node| tally_key(node))
        .collect();
    if others.is_empty() {
        return Ok(Vec::new());
    }
    let tallies: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
        .arg(&others)
        .query_async(&mut connection)
        .await?;
    Ok(tallies
        .into_iter()
        .flatten()
        .filter_map(|tally| serde_json::from_slice(&tally).ok())
        .collect())
}

/// The nodes that refreshed their tally within [`NODE_TIMEOUT_MS`].
pub async fn live_nodes(
    connection: &mut redis::aio::ConnectionManager,
) -> RedisResult<Vec<String>> {
    let since = now_ms().saturating_sub(NODE_TIMEOUT_MS);
    redis::cmd("ZRANGE")
        .arg(NODES)
        .arg(since)
        .arg("+inf")
        .arg("BYSCORE")
        .query_async(connection)
        .await
}

/// Takes this node out at once on a clean stop, instead of after [`NODE_TIMEOUT_MS`].
pub async fn leave(cluster: &Cluster) {
    let mut connection = cluster.connection.clone();
    let left: RedisResult<()> = redis::pipe()
        .del(tally_key(&cluster.node))
        .ignore()
        .zrem(NODES, &*cluster.node)
        .ignore()
        .query_async(&mut connection)
        .await;
    if let Err(error) = left {
        tracing::debug!(%error, "could not take this node out of the presence tally");
    }
}
