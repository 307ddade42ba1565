//! The state every handler shares, in a module of its own so that dependencies point one
//! way: the handlers ([`crate::events`], [`crate::http`], [`crate::admin`]) use it,
//! [`crate::server`] wires them together, and nothing it holds looks back up at it. Each
//! feature's state sits below it behind one type that works the same on one node or many ([`Store`], [`Presence`], [`LiveRoom`], [`CallRooms`]), so no handler asks
//! whether it runs in a cluster.

use std::sync::Arc;

use axum::http::{Extensions, HeaderMap};

use crate::address::client::{ClientAddress, PeerAddr, TrustedProxies};
use crate::address::key::AddressKey;
use crate::address::limits::{AddressLimits, Settings};
use crate::address::redis::RedisLimits;
use crate::call::redis::RedisCalls;
use crate::call::rooms::CallRooms;
use crate::clip::now_ms;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::encode_queue::EncodeQueue;
use crate::ice::IceServers;
use crate::identity::Identities;
use crate::live::redis::RedisLive;
use crate::live::room::LiveRoom;
use crate::metrics::Metrics;
use crate::moderation::Bans;
use crate::presence::Presence;
use crate::presence::redis::RedisPresence;
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
    /// Whose `X-Forwarded-For` names the client (`--trusted-proxy`).
    pub proxies: TrustedProxies,
    /// The limits per client address (SPEC §13).
    pub limits: AddressLimits,
    /// The other nodes, in cluster mode (SPEC §8), for the two things that are about the
    /// cluster itself: telling them the bans changed, and whether they can be reached.
    cluster: Option<Cluster>,
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
        let calls = CallRooms::new(config.call_max, cluster.clone().map(RedisCalls::new));
        let proxies = TrustedProxies::new(&config.trusted_proxies);
        let limits = AddressLimits::new(
            Settings::new(
                config.max_connections_per_address,
                config.clips_per_address_per_minute,
            ),
            config.clip_ttl,
            cluster.clone().map(RedisLimits::new),
        );
        Ok(Self {
            encoder: EncodeQueue::new(config.frame_delay, metrics.clone()),
            presence: Presence::new(
                metrics.connections.clone(),
                cluster.clone().map(RedisPresence::new),
            ),
            live: LiveRoom::new(cluster.clone().map(RedisLive::new)),
            config: Arc::new(config),
            store,
            metrics,
            calls,
            ice,
            identities,
            bans,
            proxies,
            limits,
            cluster,
        })
    }

    /// Tells the other nodes, if any, that a moderator changed the bans.
    pub async fn bans_changed(&self) {
        if let Some(cluster) = &self.cluster {
            crate::ban_sync::announce_change(cluster).await;
        }
    }

    /// The keyed hash of the client behind a request: its TCP peer (`PeerAddr`, in every
    /// request's `extensions`), or whom a trusted proxy's `X-Forwarded-For` names. `None`
    /// only for a request that did not come through a listener (tests).
    pub fn address_key(&self, extensions: &Extensions, headers: &HeaderMap) -> Option<AddressKey> {
        let axum::extract::ConnectInfo(PeerAddr(peer)) =
            extensions.get::<axum::extract::ConnectInfo<PeerAddr>>()?;
        let client: ClientAddress = self.proxies.client(peer.ip(), headers);
        Some(AddressKey::of(&client, &self.identities))
    }

    /// False while this node cannot reach its cluster's Redis (never on a single node): it
    /// cannot deliver across nodes then, and `/healthz` says so.
    pub fn reaches_the_others(&self) -> bool {
        self.cluster.as_ref().is_none_or(Cluster::is_up)
    }
}
