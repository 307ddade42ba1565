//! How many sockets are connected, and the coalesced `presence` broadcast (SPEC §2).
//!
//! Connects and disconnects only bump a counter and wake the broadcaster; the broadcaster
//! sends at most one `presence` a second, with the count as it is then. A thousand clients
//! connecting cost about one event each, not a million.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use serde::Serialize;
use socketioxide::SocketIo;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The shortest gap between two `presence` broadcasts.
const COALESCE: Duration = Duration::from_secs(1);

/// The `presence` and `welcome` payload field.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Online {
    pub online: i64,
}

#[derive(Clone)]
pub struct Presence {
    /// The `connections` metric doubles as the count, so the two can never disagree.
    connections: Gauge,
    /// Set by every change, taken by the broadcaster; a change while it sleeps is kept.
    changed: Arc<Notify>,
}

impl Presence {
    pub fn new(connections: Gauge) -> Self {
        Self {
            connections,
            changed: Arc::new(Notify::new()),
        }
    }

    /// Counts a new socket; returns the count including it.
    pub fn connected(&self) -> Online {
        let online = self.connections.inc() + 1;
        self.changed.notify_one();
        Online { online }
    }

    pub fn disconnected(&self) {
        self.connections.dec();
        self.changed.notify_one();
    }

    pub fn online(&self) -> Online {
        Online {
            online: self.connections.get(),
        }
    }

    /// Broadcasts `presence` when the count has changed, at most once per `COALESCE`,
    /// until `shutdown` is cancelled.
    pub async fn broadcast(self, io: SocketIo, shutdown: CancellationToken) {
        let mut last_sent = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.changed.notified() => {}
            }
            let now = self.online();
            if last_sent != Some(now.online) {
                if let Err(error) = io.emit("presence", &now).await {
                    tracing::warn!(%error, "broadcasting presence failed");
                }
                last_sent = Some(now.online);
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(COALESCE) => {}
            }
        }
    }
}
