//! What `/metrics` shows (SPEC §4), in the Prometheus/OpenMetrics text format.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::call::refusals::SignalRefused;
use crate::error::ClipError;
use crate::refusal::Refusal;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindCodeLabel {
    kind: &'static str,
    code: &'static str,
}

/// What a client address was refused for being over its limits, or banned (SPEC §13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressRefusal {
    /// A handshake over the open or the new connections an address may have.
    TooManyConnections,
    /// A handshake from a banned address.
    BannedConnection,
    /// A `message` over the address's clip bucket.
    Message,
    /// A `report` over the address's report bucket.
    Report,
    /// An `/admin/` request after too many failed sign-ins.
    Admin,
}

impl AddressRefusal {
    pub const ALL: [Self; 5] = [
        Self::TooManyConnections,
        Self::BannedConnection,
        Self::Message,
        Self::Report,
        Self::Admin,
    ];

    fn label(self) -> KindCodeLabel {
        let (kind, code) = match self {
            Self::TooManyConnections => ("connection", "too_many_connections"),
            Self::BannedConnection => ("connection", "banned"),
            Self::Message => ("message", "rate_limited"),
            Self::Report => ("report", "rate_limited"),
            Self::Admin => ("admin", "too_many_failures"),
        };
        KindCodeLabel { kind, code }
    }
}

/// How the store's writer commits (see `store::writer`): one flush per batch of changes.
#[derive(Clone)]
pub struct CommitMetrics {
    /// Clips made durable by one batch (one flush): how much a slow fsync is shared.
    pub batch_clips: Histogram,
    /// Seconds one batch took to reach the disk: GIF files, transaction and flush.
    pub commit_seconds: Histogram,
}

impl Default for CommitMetrics {
    fn default() -> Self {
        Self {
            // 1 … 256 clips: the encoder queue never holds more at once.
            batch_clips: Histogram::new(exponential_buckets(1.0, 2.0, 9)),
            // 0.5 ms … ~8 s: a page-cache flush up to a badly overloaded disk.
            commit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 15)),
        }
    }
}

/// Every counter and gauge the server keeps. Cloning shares the values.
#[derive(Clone)]
pub struct Metrics {
    /// Only read when rendering; the metrics below are the handles that update it.
    registry: std::sync::Arc<Registry>,
    pub clips_accepted: Counter,
    clips_rejected: Family<CodeLabel, Counter>,
    /// Seconds from a clip's JPEGs to its GIF, on a worker thread.
    pub encode_seconds: Histogram,
    /// Clips admitted to the encoder queue and not yet answered: encoding, waiting for a
    /// core, or being stored. What a stop waits for.
    pub clips_in_flight: Gauge,
    pub connections: Gauge,
    pub live_frames_relayed: Counter,
    live_frames_dropped: Family<CodeLabel, Counter>,
    /// Set from the store on every scrape: the store is what knows.
    pub clips_stored: Gauge,
    pub commits: CommitMetrics,
    /// Cluster mode's state (SPEC §8); zeros on a single node.
    pub redis_up: Gauge,
    pub store_redis_up: Gauge,
    pub cluster_nodes: Gauge,
    pub dropped_publishes: Counter,
    /// Calls with at least one participant; set from the call rooms on every scrape.
    pub calls_in_progress: Gauge,
    /// People in calls; set from the call rooms on every scrape.
    pub call_participants: Gauge,
    pub call_signals_relayed: Counter,
    /// Accepted signals that could not be handed to their target: its queue of outgoing
    /// packets (socketioxide's, 128) was full, or it had just left.
    pub call_signals_undelivered: Counter,
    call_signals_refused: Family<CodeLabel, Counter>,
    address_refusals: Family<KindCodeLabel, Counter>,
}

impl Metrics {
    pub fn new() -> Self {
        let clips_accepted = Counter::default();
        let clips_rejected = Family::<CodeLabel, Counter>::default();
        // 1 ms … ~1 s: the encoder takes a few ms on a good day, far more under overload.
        let encode_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 11));
        let clips_in_flight = Gauge::default();
        let connections = Gauge::default();
        let live_frames_relayed = Counter::default();
        let live_frames_dropped = Family::<CodeLabel, Counter>::default();
        let clips_stored = Gauge::default();
        let commits = CommitMetrics::default();
        let (redis_up, store_redis_up, cluster_nodes) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        let dropped_publishes = Counter::default();
        let calls_in_progress = Gauge::default();
        let call_participants = Gauge::default();
        let call_signals_relayed = Counter::default();
        let call_signals_undelivered = Counter::default();
        let call_signals_refused = Family::<CodeLabel, Counter>::default();
        let address_refusals = Family::<KindCodeLabel, Counter>::default();

        // Every rejection code shows up from the start, with zero, so dashboards and rate
        // queries do not have to special-case a code that has not happened yet.
        for code in ClipError::CODES {
            let _ = clips_rejected.get_or_create(&CodeLabel { code });
        }
        for refused in SignalRefused::ALL {
            let code = refused.code();
            let _ = call_signals_refused.get_or_create(&CodeLabel { code });
        }
        for refusal in AddressRefusal::ALL {
            let _ = address_refusals.get_or_create(&refusal.label());
        }

        let mut registry = Registry::with_prefix("loopchat");
        registry.register(
            "clips_accepted",
            "Clips stored and acked",
            clips_accepted.clone(),
        );
        registry.register(
            "clips_rejected",
            "Clips refused, by error code",
            clips_rejected.clone(),
        );
        registry.register(
            "encode_seconds",
            "Time to turn a clip's JPEGs into a GIF",
            encode_seconds.clone(),
        );
        registry.register(
            "clips_in_flight",
            "Clips admitted and not yet answered",
            clips_in_flight.clone(),
        );
        registry.register(
            "connections",
            "Connected Socket.IO clients",
            connections.clone(),
        );
        registry.register(
            "live_frames_relayed",
            "Live-room frames relayed to viewers",
            live_frames_relayed.clone(),
        );
        registry.register(
            "live_frames_dropped",
            "Live-room frames dropped, by reason",
            live_frames_dropped.clone(),
        );
        registry.register(
            "redis_up",
            "1 while the cluster's Redis answers its heartbeat (cluster mode only)",
            redis_up.clone(),
        );
        registry.register(
            "store_redis_up",
            "1 while the store's Redis answers its heartbeat (cluster mode only)",
            store_redis_up.clone(),
        );
        registry.register(
            "cluster_nodes",
            "Nodes that wrote their presence in the last 3 s, this one included (cluster mode only)",
            cluster_nodes.clone(),
        );
        registry.register(
            "redis_dropped_publishes",
            "Broadcasts that reached this node's sockets only, because Redis was unreachable",
            dropped_publishes.clone(),
        );
        registry.register(
            "clips_stored",
            "Clips in the store, including expired ones not yet swept",
            clips_stored.clone(),
        );
        registry.register(
            "store_batch_clips",
            "Clips made durable by one store flush",
            commits.batch_clips.clone(),
        );
        registry.register(
            "store_commit_seconds",
            "Time one batch of store writes took to reach the disk",
            commits.commit_seconds.clone(),
        );
        registry.register(
            "calls_in_progress",
            "Call rooms with at least one participant",
            calls_in_progress.clone(),
        );
        registry.register(
            "call_participants",
            "Connections in a call room",
            call_participants.clone(),
        );
        registry.register(
            "call_signals_relayed",
            "Call signals (SDP, ICE candidates) relayed to a peer",
            call_signals_relayed.clone(),
        );
        registry.register(
            "call_signals_undelivered",
            "Call signals accepted but not delivered: the target's queue was full or it left",
            call_signals_undelivered.clone(),
        );
        registry.register(
            "call_signals_refused",
            "Call signals not relayed, by error code",
            call_signals_refused.clone(),
        );
        registry.register(
            "address_refusals",
            "Connections, clips, reports and admin requests refused by the limits per client address, by kind and code",
            address_refusals.clone(),
        );

        Self {
            registry: std::sync::Arc::new(registry),
            clips_accepted,
            clips_rejected,
            encode_seconds,
            clips_in_flight,
            connections,
            live_frames_relayed,
            live_frames_dropped,
            clips_stored,
            commits,
            redis_up,
            store_redis_up,
            cluster_nodes,
            dropped_publishes,
            calls_in_progress,
            call_participants,
            call_signals_relayed,
            call_signals_undelivered,
            call_signals_refused,
            address_refusals,
        }
    }

    pub fn address_refused(&self, refusal: AddressRefusal) {
        self.address_refusals.get_or_create(&refusal.label()).inc();
    }

    pub fn clip_rejected(&self, error: &ClipError) {
        self.clips_rejected
            .get_or_create(&CodeLabel { code: error.code() })
            .inc();
    }

    pub fn live_frame_dropped(&self, code: &'static str) {
        self.live_frames_dropped
            .get_or_create(&CodeLabel { code })
            .inc();
    }

    pub fn call_signal_refused(&self, code: &'static str) {
        self.call_signals_refused
            .get_or_create(&CodeLabel { code })
            .inc();
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SPEC §5's codes, written out: each is shown from the start, with zero.
    #[test]
    fn renders_every_rejection_code_and_counts_them() {
        let metrics = Metrics::new();
        metrics.clip_rejected(&ClipError::RateLimited);
        let text = metrics.render();
        assert!(
            text.contains(r#"loopchat_clips_rejected_total{code="rate_limited"} 1"#),
            "{text}"
        );
        for code in [
            "invalid_payload",
            "bad_frame_count",
            "frame_too_large",
            "bad_frame",
            "bad_dimensions",
            "text_too_long",
            "busy",
            "profanity",
            "banned",
            "unavailable",
            "internal",
        ] {
            let zero = format!(r#"loopchat_clips_rejected_total{{code="{code}"}} 0"#);
            assert!(text.contains(&zero), "{code}: {text}");
        }
        assert!(text.contains("loopchat_encode_seconds_bucket"), "{text}");
    }

    #[test]
    fn renders_every_signal_refusal_code_and_counts_them() {
        let metrics = Metrics::new();
        metrics.call_signal_refused("not_in_room");
        let text = metrics.render();
        assert!(
            text.contains(r#"loopchat_call_signals_refused_total{code="not_in_room"} 1"#),
            "{text}"
        );
        for code in [
            "not_in_call",
            "invalid_payload",
            "signal_too_large",
            "rate_limited",
        ] {
            let zero = format!(r#"loopchat_call_signals_refused_total{{code="{code}"}} 0"#);
            assert!(text.contains(&zero), "{text}");
        }
        assert!(
            text.contains("loopchat_call_signals_relayed_total 0"),
            "{text}"
        );
        assert!(text.contains("loopchat_calls_in_progress 0"), "{text}");
        assert!(text.contains("loopchat_call_participants 0"), "{text}");
    }

    /// SPEC §13's refusals, written out: each kind and code shown from the start.
    #[test]
    fn renders_every_address_refusal_and_counts_them() {
        let metrics = Metrics::new();
        metrics.address_refused(AddressRefusal::TooManyConnections);
        let text = metrics.render();
        let line = |kind: &str, code: &str, count: u32| {
            format!(r#"loopchat_address_refusals_total{{kind="{kind}",code="{code}"}} {count}"#)
        };
        for expected in [
            line("connection", "too_many_connections", 1),
            line("connection", "banned", 0),
            line("message", "rate_limited", 0),
            line("report", "rate_limited", 0),
            line("admin", "too_many_failures", 0),
        ] {
            assert!(text.contains(&expected), "{expected}: {text}");
        }
    }
}
