//! The state every handler shares, in a module of its own so that dependencies point one
//! way: the handlers (`chat`, `live`, `call`, `http`, `admin`) use it, and
//! [`crate::server`] wires them together.

use std::sync::Arc;

use crate::call::CallRooms;
use crate::clip::now_ms;
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
}

impl App {
    /// The state for `config`, with the id secret and the bans in force read from the data
    /// dir and `store`. Refuses TURN servers without `--turn-secret`.
    pub fn new(config: Config, store: Store, metrics: Metrics) -> anyhow::Result<Self> {
        let identities = Identities::load(config.id_secret.as_ref(), &config.data_dir)?;
        let bans = Bans::new(store.bans()?, now_ms());
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
        })
    }
}
