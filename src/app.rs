//! The state every handler shares, in a module of its own so that dependencies point one
//! way: the handlers (`chat`, `live`, `call`, `http`, `admin`) use it, and
//! [`crate::server`] wires them together.

use std::sync::Arc;

use crate::call::CallRooms;
use crate::clip::now_ms;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::encode_queue::EncodeQueue;
use crate::ice::IceServers;
use crate::identity::Identities;
use crate::live::LiveRoom;
use crate::metrics::Metrics;
use crate::moderation::Bans;
use crate::presence::Presence;
use crate::store::Store;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct App {
    /// Behind an `Arc`: read by every handler, never changed after start.
    pub config: Arc<Config>,
    pub store: Store,
    pub encoder: EncodeQueue,
    pub metrics: Metrics,
    pub presence: Presence,
    pub live: LiveRoom,
    pub calls: CallRooms,
    /// What call pages are given to find each other through NATs and firewalls.
    pub ice: IceServers,
    pub identities: Identities,
    /// The bans in force, checked on every clip, live frame and call join.
    pub bans: Bans,
    /// The other nodes, in cluster mode (SPEC §8).
    pub cluster: Option<Cluster>,
}

impl App {
    /// The state for `config`, with the id secret (from the flag, the cluster or the data
    /// dir) and the bans in force read from `store`. Refuses TURN servers without
    /// `--turn-secret`.
    pub async fn new(
        config: Config,
        store: Store,
        metrics: Metrics,
        cluster: Option<Cluster>,
    ) -> anyhow::Result<Self> {
        let identities = match (&config.id_secret, &cluster) {
            (None, Some(cluster)) => Identities::new(&cluster.id_secret().await?),
            (configured, _) => Identities::load(configured.as_ref(), &config.data_dir)?,
        };
        let bans = Bans::new(store.bans().await?, now_ms());
        let ice = IceServers::new(&config.ice_servers, config.turn_secret.as_ref())?;
        let calls = CallRooms::new(config.call_max);
        Ok(Self {
            encoder: EncodeQueue::new(config.frame_delay, metrics.clone()),
            presence: Presence::new(metrics.connections.clone()),
            config: Arc::new(config),
            store,
            metrics,
            live: LiveRoom::default(),
            calls,
            ice,
            identities,
            bans,
            cluster,
        })
    }

    /// Tells the other nodes, if any, that a moderator changed the bans.
    pub async fn bans_changed(&self) {
        if let Some(cluster) = &self.cluster {
            cluster.bans_changed().await;
        }
    }
}
