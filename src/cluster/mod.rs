//! Cluster mode's plumbing (SPEC §8): what every feature's Redis side shares. Several
//! nodes on one Redis behave as one chat; each feature says how, beside its own local
//! implementation:
//!
//! - the clips: [`crate::store::RedisStore`];
//! - presence: [`crate::presence::redis`]; the live room: [`crate::live::redis`]; the call
//!   rooms: [`crate::call::redis`].
//!
//! Here is only what they have in common: the connections ([`Cluster`]), their heartbeat
//! ([`health`]), the reconnecting pub/sub under socketioxide-redis's adapter ([`driver`]),
//! which nodes are alive ([`nodes`]), and the id secret, made once for the whole cluster
//! (`SET NX`). The bans' change notices, which also need the store, are
//! [`crate::ban_sync`].
//!
//! Every Redis connection here is a `ConnectionManager` with short timeouts, watched by a
//! [`Health`] heartbeat: while Redis is away, calls fail at once instead of hanging
//! handlers, `/healthz` answers 503, and the connection comes back by itself.

pub mod driver;
pub mod health;
pub mod nodes;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio_util::sync::CancellationToken;

use crate::secret::Secret;
use driver::PubSub;
use health::Health;

/// Broadcasts and presence: short, so nothing waits long during an outage.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Clip writes: longer, because an AOF rewrite can hold a write for half a second
/// (SCALE.md), yet well inside the 5 s in which a client must hear `unavailable`.
const STORE_RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
const ID_SECRET_KEY: &str = "loopchat:id-secret";

/// A node's cluster connections.
#[derive(Clone)]
pub struct Cluster {
    /// This process's id among the nodes.
    pub node: Arc<str>,
    /// Broadcasts, presence and bans notices share this connection (it is multiplexed).
    pub connection: ConnectionManager,
    pub health: Health,
    pub pubsub: PubSub,
    /// The store's own connection and health (the same Redis unless `--store-redis-url`).
    store_connection: ConnectionManager,
    pub store_health: Health,
    pub nodes: Gauge,
}

/// The gauges a cluster keeps, from [`crate::metrics::Metrics`].
pub struct ClusterGauges {
    pub redis_up: Gauge,
    pub store_redis_up: Gauge,
    pub nodes: Gauge,
    pub dropped_publishes: prometheus_client::metrics::counter::Counter,
}

/// RESP3 is what lets pub/sub messages arrive on an ordinary multiplexed connection.
fn resp3(url: &Secret) -> anyhow::Result<redis::Client> {
    let url = url.expose();
    let url = if url.contains("protocol=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    };
    redis::Client::open(url).map_err(|_| anyhow::anyhow!("--redis-url is not a Redis URL"))
}

fn manager_config(response_timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        // A few quick retries only: unlimited ones make every command hang during an
        // outage (SCALE.md); the heartbeat keeps trying for as long as it takes.
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(100))
        .set_max_delay(Duration::from_millis(500))
        .set_connection_timeout(Some(CONNECTION_TIMEOUT))
        .set_response_timeout(Some(response_timeout))
}

impl Cluster {
    /// Connects to `redis_url` (and `store_url`, if another), or says in one line why not.
    pub async fn connect(
        redis_url: &Secret,
        store_url: Option<&Secret>,
        gauges: ClusterGauges,
        stop: CancellationToken,
    ) -> anyhow::Result<Self> {
        let unreachable = |what: &str, error: redis::RedisError| {
            anyhow::anyhow!("cannot reach the {what} Redis: {error}")
        };
        let (handlers, push_sender) = PubSub::push_sender();
        let connection = ConnectionManager::new_with_config(
            resp3(redis_url)?,
            manager_config(RESPONSE_TIMEOUT)
                .set_push_sender(push_sender)
                .set_automatic_resubscription(),
        )
        .await
        .map_err(|error| unreachable("cluster", error))?;
        let store_connection = ConnectionManager::new_with_config(
            resp3(store_url.unwrap_or(redis_url))?,
            manager_config(STORE_RESPONSE_TIMEOUT),
        )
        .await
        .map_err(|error| unreachable("store's", error))?;

        let health = Health::new(gauges.redis_up);
        let store_health = Health::new(gauges.store_redis_up);
        tokio::spawn(health.clone().watch(
            connection.clone(),
            "the cluster's",
            RESPONSE_TIMEOUT,
            stop.clone(),
        ));
        tokio::spawn(store_health.clone().watch(
            store_connection.clone(),
            "the store's",
            RESPONSE_TIMEOUT,
            stop.clone(),
        ));
        let pubsub = PubSub::new(
            connection.clone(),
            handlers,
            health.clone(),
            gauges.dropped_publishes,
        );
        tokio::spawn(pubsub.clone().keep_subscribed(stop));
        Ok(Self {
            // Not a bare UUID: clip keys are UUIDs, and a node's id is in Redis keys too.
            node: format!("node-{}", uuid::Uuid::now_v7().simple()).into(),
            connection,
            health,
            pubsub,
            store_connection,
            store_health,
            nodes: gauges.nodes,
        })
    }

    /// The store's connection and its health, for [`crate::store::RedisStore`].
    pub fn store_connection(&self) -> (ConnectionManager, Health) {
        (self.store_connection.clone(), self.store_health.clone())
    }

    /// Whether both connections answered their last heartbeat, for `/healthz`.
    pub fn is_up(&self) -> bool {
        self.health.is_up() && self.store_health.is_up()
    }

    /// The cluster's id secret: the one a node made first, kept in Redis (`SET NX`).
    pub async fn id_secret(&self) -> anyhow::Result<Vec<u8>> {
        let mut made = [0u8; 32];
        getrandom::fill(&mut made).map_err(|error| anyhow::anyhow!("no randomness: {error}"))?;
        let mut connection = self.store_connection.clone();
        let _: Option<String> = redis::cmd("SET")
            .arg(ID_SECRET_KEY)
            .arg(&made[..])
            .arg("NX")
            .query_async(&mut connection)
            .await?;
        let kept: Vec<u8> = redis::cmd("GET")
            .arg(ID_SECRET_KEY)
            .query_async(&mut connection)
            .await?;
        anyhow::ensure!(
            kept.len() >= 16,
            "the id secret in Redis ({ID_SECRET_KEY}) is too short"
        );
        Ok(kept)
    }

    /// Refuses a store Redis that does not fsync every write (SPEC §8), unless `relaxed`.
    pub async fn check_durability(&self, relaxed: bool) -> anyhow::Result<()> {
        let setting = |name: &'static str| {
            let mut connection = self.store_connection.clone();
            async move {
                // A map in RESP3, a flat [name, value] array in RESP2: a HashMap takes both.
                let answer: redis::RedisResult<std::collections::HashMap<String, String>> =
                    redis::cmd("CONFIG")
                        .arg("GET")
                        .arg(name)
                        .query_async(&mut connection)
                        .await;
                answer.ok().and_then(|mut settings| settings.remove(name))
            }
        };
        let (appendonly, appendfsync) = (setting("appendonly").await, setting("appendfsync").await);
        match (appendonly.as_deref(), appendfsync.as_deref()) {
            (Some("yes"), Some("always")) => Ok(()),
            (None, _) | (_, None) => {
                tracing::warn!(
                    "cannot read the store Redis's appendonly/appendfsync (CONFIG GET refused?); make sure it has appendonly yes and appendfsync always, or acked clips may be lost"
                );
                Ok(())
            }
            (Some(appendonly), Some(appendfsync)) if relaxed => {
                tracing::warn!(
                    appendonly,
                    appendfsync,
                    "the store Redis does not fsync every write; acked clips may be lost if it stops (--allow-relaxed-durability)"
                );
                Ok(())
            }
            (Some(appendonly), Some(appendfsync)) => anyhow::bail!(
                "the store Redis has appendonly {appendonly} and appendfsync {appendfsync}; acked clips need appendonly yes and appendfsync always (or start with --allow-relaxed-durability)"
            ),
        }
    }
}
