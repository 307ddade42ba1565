//! Presence across nodes: each node writes its own tally to Redis once a second, with an
//! expiry, and reads the others'. A node that dies simply stops refreshing, and its
//! sockets stop counting within [`NODE_TIMEOUT_MS`]. (`fetch_sockets` would also count every
//! socket, but it loads every node on every call; SCALE.md.) The same write keeps the
//! node in [`NODES`], which is how the other features tell live nodes from dead ones.

use redis::RedisResult;
use redis::aio::ConnectionManager;

use super::tally::NodeTally;
use crate::clip::now_ms;
use crate::cluster::Cluster;
use crate::cluster::nodes::{NODE_TIMEOUT_MS, NODES, live_nodes};

fn tally_key(node: &str) -> String {
    format!("loopchat:presence:{node}")
}

/// A node's presence in Redis.
#[derive(Clone)]
pub struct RedisPresence {
    cluster: Cluster,
}

impl RedisPresence {
    pub fn new(cluster: Cluster) -> Self {
        Self { cluster }
    }

    /// Writes `mine` and returns the other live nodes' tallies; sets the node-count gauge.
    pub async fn exchange(&self, mine: &NodeTally) -> RedisResult<Vec<NodeTally>> {
        let cluster = &self.cluster;
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
        self.tallies_of(&mut connection, &nodes).await
    }

    /// The other live nodes' tallies as they last wrote them, without writing this node's:
    /// what a newcomer's `welcome` counts.
    pub async fn others(&self) -> RedisResult<Vec<NodeTally>> {
        let mut connection = self.cluster.connection.clone();
        let nodes = live_nodes(&mut connection).await?;
        self.tallies_of(&mut connection, &nodes).await
    }

    async fn tallies_of(
        &self,
        connection: &mut ConnectionManager,
        nodes: &[String],
    ) -> RedisResult<Vec<NodeTally>> {
        let others: Vec<String> = nodes
            .iter()
            .filter(|node| **node != *self.cluster.node)
            .map(|node| tally_key(node))
            .collect();
        if others.is_empty() {
            return Ok(Vec::new());
        }
        let tallies: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(&others)
            .query_async(connection)
            .await?;
        Ok(tallies
            .into_iter()
            .flatten()
            .filter_map(|tally| serde_json::from_slice(&tally).ok())
            .collect())
    }

    /// Takes this node out at once on a clean stop, instead of after [`NODE_TIMEOUT_MS`].
    pub async fn leave(&self) {
        let mut connection = self.cluster.connection.clone();
        let left: RedisResult<()> = redis::pipe()
            .del(tally_key(&self.cluster.node))
            .ignore()
            .zrem(NODES, &*self.cluster.node)
            .ignore()
            .query_async(&mut connection)
            .await;
        if let Err(error) = left {
            tracing::debug!(%error, "could not take this node out of the presence tally");
        }
    }
}
