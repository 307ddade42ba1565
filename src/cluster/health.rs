//! Whether a Redis connection answers: a heartbeat per connection, read by `/healthz`,
//! `/metrics` and the store, and what wakes whoever waits for Redis to come back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use redis::aio::ConnectionManager;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How often each connection is pinged. A node notices an outage, and a recovery, within
/// about this long plus the response timeout.
const HEARTBEAT: Duration = Duration::from_millis(500);
/// What the heartbeat reads (it need not exist).
const HEARTBEAT_KEY: &str = "loopchat:heartbeat";

/// Whether one Redis connection answered its last heartbeat; clones share it.
#[derive(Clone)]
pub struct Health {
    up: Arc<AtomicBool>,
    gauge: Gauge,
    /// Woken when the connection comes back after an outage.
    pub(crate) recovered: Arc<Notify>,
}

impl Health {
    pub(crate) fn new(gauge: Gauge) -> Self {
        gauge.set(1);
        Self {
            up: Arc::new(AtomicBool::new(true)),
            gauge,
            recovered: Arc::new(Notify::new()),
        }
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// As a failed heartbeat leaves it.
    #[cfg(test)]
    pub(crate) fn fail_for_tests(&self) {
        self.set(false, "a test's");
    }

    fn set(&self, up: bool, what: &str) {
        let was = self.up.swap(up, Ordering::Relaxed);
        self.gauge.set(i64::from(up));
        match (was, up) {
            (true, false) => {
                tracing::warn!("{what} Redis is unreachable; serving what this node can alone")
            }
            (false, true) => {
                tracing::info!("{what} Redis is reachable again");
                self.recovered.notify_waiters();
            }
            _ => {}
        }
    }

    /// Reads from `connection` every [`HEARTBEAT`] until `stop`. Besides keeping the flag,
    /// the read is what makes an idle connection notice that Redis is back and reconnect.
    pub(crate) async fn watch(
        self,
        mut connection: ConnectionManager,
        what: &'static str,
        response_timeout: Duration,
        stop: CancellationToken,
    ) {
        loop {
            // A read rather than PING: a restarting Redis answers PING while it still
            // refuses every read and write with LOADING, and it is not back until it takes
            // those.
            let mut command = redis::cmd("EXISTS");
            command.arg(HEARTBEAT_KEY);
            let ping = command.query_async::<bool>(&mut connection);
            let answered = tokio::select! {
                () = stop.cancelled() => return,
                answer = tokio::time::timeout(response_timeout, ping) => matches!(answer, Ok(Ok(_))),
            };
            self.set(answered, what);
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(HEARTBEAT) => {}
            }
        }
    }
}
