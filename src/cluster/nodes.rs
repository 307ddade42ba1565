//! Which nodes are alive. Each node writes its presence tally once a second
//! ([`crate::presence::redis`]) and, in the same transaction, its time in [`NODES`]; a
//! node that has not done so for [`NODE_TIMEOUT_MS`] is gone — stopped, or killed with
//! `kill -9` without a word. The live room and the call rooms leave such a node's
//! participants out.

use redis::RedisResult;
use redis::aio::ConnectionManager;

use crate::clip::now_ms;

/// Sorted set: node id → when it last wrote its tally (ms).
pub const NODES: &str = "loopchat:nodes";
/// A node that has not written its tally for this long is gone.
pub const NODE_TIMEOUT_MS: u64 = 3_000;

/// The nodes that refreshed their tally within [`NODE_TIMEOUT_MS`].
pub async fn live_nodes(connection: &mut ConnectionManager) -> RedisResult<Vec<String>> {
    let since = now_ms().saturating_sub(NODE_TIMEOUT_MS);
    redis::cmd("ZRANGE")
        .arg(NODES)
        .arg(since)
        .arg("+inf")
        .arg("BYSCORE")
        .query_async(connection)
        .await
}
