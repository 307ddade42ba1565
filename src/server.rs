//! Wiring: the axum router with Socket.IO mounted on it, the listeners, the background
//! tasks, and graceful shutdown. The state the handlers share is [`crate::app::App`].

use std::future::IntoFuture;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, header};
use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::{ParserConfig, SocketIo, SocketIoBuilder};
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};
use tokio_util::sync::CancellationToken;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::address::client::PeerAddr;
use crate::app::App;
use crate::cluster::driver::PubSub;
use crate::cluster::{Cluster, ClusterGauges};
use crate::config::Config;
use crate::live::redis::RedisLive;
use crate::metrics::Metrics;
use crate::rate_limit::SIGNAL_BURST;
use crate::request::MAX_MESSAGE_BYTES;
use crate::startup::Listeners;
use crate::store::{RedisStore, Store};
use crate::tls::TlsListener;

/// The transport-level cap on one incoming message. It sits above the 3 MiB SPEC limit
/// (plus base64 and packet overhead) so an oversized clip still reaches the handler and
/// gets a `frame_too_large` answer; anything beyond it is not worth reading at all and
/// closes the connection.
const TRANSPORT_LIMIT: usize = MAX_MESSAGE_BYTES + 2 * 1024 * 1024;
/// Binary attachments one packet may carry: enough for an 11-frame clip to be answered
/// with `bad_frame_count`, few enough that a packet cannot announce thousands.
const MAX_ATTACHMENTS: usize = 64;

/// Packets one socket may have waiting to be written out. socketioxide's default, 128, is
/// less than one peer's burst of call signals (SPEC §9), so a burst the rate limit accepted
/// was dropped at the receiver's queue. This holds the bursts of three peers at once and the
/// feed besides; tokio's channel allocates as it fills, so a quiet socket costs no more.
const OUTGOING_PACKETS: usize = 3 * SIGNAL_BURST.get() as usize + 128;
/// How long a stop waits for HTTP requests still open after every socket was closed. Closing
/// the sockets answers their long-polls; what is left is a download or a long-poll of an
/// Engine.IO session with no socket (a client that left between its disconnect and its
/// close packet), which would otherwise hold the stop until the next ping, 25 s later.
const LINGER_AFTER_CLOSE: Duration = Duration::from_secs(5);
/// How long a stop waits for the clips in flight to be stored. A full queue is committed in
/// one or two flushes, about a second even when every fsync takes 400 ms; a disk that has
/// not answered in this long is not going to, and the stop must not hang on it. Clips still
/// in flight then were never acked, so nothing promised is lost.
const DRAIN_LIMIT: Duration = Duration::from_secs(20);
/// How long a stop waits for the store's last flush, for the same reason.
const CLOSE_LIMIT: Duration = Duration::from_secs(10);
/// With TLS on, browsers are told to use HTTPS for this host for a year. No
/// `includeSubDomains`: other services under the same name are not ours to decide for.
/// Browsers ignore it over a certificate they had to be told to accept (RFC 6797 §8.1),
/// so a self-signed LAN set-up does not pin anything.
const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// socketioxide-redis's adapter on our reconnecting pub/sub.
pub type ClusterAdapter = CustomRedisAdapter<socketioxide::adapter::Emitter, PubSub>;

/// The Socket.IO builder's settings, the same for either adapter.
fn socket_io<A: Adapter>(
    builder: SocketIoBuilder<A>,
    app: &App,
) -> (SocketIoLayer<A>, SocketIo<A>) {
    builder
        .with_state(app.clone())
        // Long-polling bodies default to 100 KB, too small for a real clip.
        .max_payload(TRANSPORT_LIMIT as u64)
        .ws_max_message_size(TRANSPORT_LIMIT)
        .max_buffer_size(OUTGOING_PACKETS)
        .with_parser(
            ParserConfig::common()
                .max_incoming_binary_buf_size(TRANSPORT_LIMIT)
                .max_incoming_binaries(MAX_ATTACHMENTS),
        )
        .build_layer()
}

/// The HTTP routes of `app` with Socket.IO (`layer`) mounted on them.
fn router<A: Adapter>(app: App, layer: SocketIoLayer<A>, io: &SocketIo<A>) -> Router {
    // No route but Socket.IO's long-polling reads a body; a declared body larger than any
    // transport message is refused with 413 before anyone reads it. Headers are bounded by
    // hyper's defaults, which `axum::serve` keeps: at most 100 headers in at most ~400 KiB,
    // else 431. No CORS layer: see the README.
    let admin = match &app.config.admin_token {
        Some(token) => crate::admin::routes(token, app.clone(), io.clone()),
        None => crate::admin::disabled(),
    };
    crate::http::routes()
        .merge(admin)
        .with_state(app)
        .layer(layer)
        .layer(RequestBodyLimitLayer::new(TRANSPORT_LIMIT))
        // Outermost, so Socket.IO's long-polling answers, the admin API's 404s and the body
        // limit's 413 carry it too.
        .layer(crate::headers::nosniff())
}

/// The whole HTTP + Socket.IO service of a single node (the local adapter).
pub fn single_node(app: &App) -> (Router, SocketIo) {
    let (layer, io) = socket_io(SocketIo::builder(), app);
    io.ns(
        "/",
        crate::events::chat::on_connect::<LocalAdapter>
            .with(crate::events::admission::admit::<LocalAdapter>),
    );
    (router(app.clone(), layer, &io), io)
}

/// The whole service of a cluster node: Socket.IO through socketioxide-redis on the
/// cluster's reconnecting pub/sub. Fails if Redis refuses the namespace's subscriptions.
pub async fn cluster_node(
    app: &App,
    cluster: &Cluster,
) -> anyhow::Result<(Router, SocketIo<ClusterAdapter>)> {
    let adapter =
        RedisAdapterCtr::new_with_driver(cluster.pubsub.clone(), RedisAdapterConfig::default());
    let (layer, io) = socket_io(
        SocketIo::builder().with_adapter::<ClusterAdapter>(adapter),
        app,
    );
    // With a remote adapter the namespace exists only once this resolves.
    io.ns(
        "/",
        crate::events::chat::on_connect::<ClusterAdapter>
            .with(crate::events::admission::admit::<ClusterAdapter>),
    )
    .await
    .map_err(|error| anyhow::anyhow!("cannot subscribe to the cluster's channels: {error}"))?;
    Ok((router(app.clone(), layer, &io), io))
}

/// Serves on `listeners` until `shutdown` resolves, then stops accepting, lets clips in
/// flight finish (stored, acked and broadcast; at most `DRAIN_LIMIT`), closes the sockets,
/// waits at most `LINGER_AFTER_CLOSE` for the HTTP requests still open, and closes the
/// store (at most `CLOSE_LIMIT`). `ready` is called once the store and the state are
/// ready, just before serving begins: the moment to announce the server.
///
/// With `--redis-url` this is a cluster node (SPEC §8): the store, the broadcasts and the
/// presence are Redis's; otherwise the embedded store and the local adapter.
pub async fn run(
    listeners: Listeners,
    config: Config,
    ready: impl FnOnce(&Listeners),
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let metrics = Metrics::new();
    let stopping = CancellationToken::new();
    let cluster = match &config.redis_url {
        None => None,
        Some(url) => {
            let gauges = ClusterGauges {
                redis_up: metrics.redis_up.clone(),
                store_redis_up: metrics.store_redis_up.clone(),
                nodes: metrics.cluster_nodes.clone(),
                dropped_publishes: metrics.dropped_publishes.clone(),
            };
            let cluster = Cluster::connect(
                url,
                config.store_redis_url.as_ref(),
                gauges,
                stopping.clone(),
            )
            .await?;
            cluster
                .check_durability(config.allow_relaxed_durability)
                .await?;
            Some(cluster)
        }
    };
    let store = match &cluster {
        Some(cluster) => {
            let (connection, health) = cluster.store_connection();
            Store::Redis(RedisStore::new(connection, health))
        }
        // One line, for main to print as it is: the store's error already says its cause.
        None => Store::open(&config.data_dir, metrics.commits.clone()).map_err(|error| {
            anyhow::anyhow!(
                "cannot open the store in {}: {error} (another loopchat using this --data-dir?)",
                config.data_dir.display()
            )
        })?,
    };
    let app = App::new(config, store, metrics, cluster.clone()).await?;
    ready(&listeners);
    match &cluster {
        None => {
            let (router, io) = single_node(&app);
            serve(app, router, io, listeners, shutdown, stopping).await
        }
        Some(cluster) => {
            let (router, io) = cluster_node(&app, cluster).await?;
            tokio::spawn(
                RedisLive::new(cluster.clone())
                    .announce_departed_nodes(io.clone(), stopping.clone()),
            );
            tokio::spawn(crate::ban_sync::follow_bans(
                cluster.clone(),
                app.store.clone(),
                app.bans.clone(),
                stopping.clone(),
            ));
            serve(app, router, io, listeners, shutdown, stopping).await
        }
    }
}

/// The serving and the stop of [`run`], the same for either adapter.
async fn serve<A: Adapter>(
    app: App,
    router: Router,
    io: SocketIo<A>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
    stopping: CancellationToken,
) -> anyhow::Result<()> {
    let store = app.store.clone();
    let sweeper = tokio::spawn(crate::sweep::run(
        store.clone(),
        app.config.sweep_every,
        stopping.clone(),
    ));
    let presence = tokio::spawn(app.presence.clone().broadcast(io.clone(), stopping.clone()));
    let limits = tokio::spawn(app.limits.clone().refresh(stopping.clone()));
    tokio::spawn(crate::events::call::end_banned_calls(
        io.clone(),
        app.clone(),
        stopping.clone(),
    ));

    let Listeners {
        main,
        main_addr,
        tls,
        redirect,
    } = listeners;
    let redirector = redirect.map(|(listener, _)| {
        tokio::spawn(
            axum::serve(listener, crate::redirect::router(main_addr.port()))
                .with_graceful_shutdown(stopping.clone().cancelled_owned())
                .into_future(),
        )
    });
    // The same service either way: TLS is only how connections arrive, and
    // `with_graceful_shutdown` stops a `TlsListener` as it stops a `TcpListener`.
    let mut serve = match tls {
        None => tokio::spawn(
            axum::serve(
                main,
                router.into_make_service_with_connect_info::<PeerAddr>(),
            )
            .with_graceful_shutdown(stopping.clone().cancelled_owned())
            .into_future(),
        ),
        Some(tls) => {
            #[cfg(unix)]
            tokio::spawn(
                tls.certificates
                    .clone()
                    .reload_on(tls.hangups, stopping.clone()),
            );
            let router = router.layer(SetResponseHeaderLayer::if_not_present(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
            ));
            let listener = TlsListener::new(main, tls.certificates.server_config())?;
            tokio::spawn(
                axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<PeerAddr>(),
                )
                .with_graceful_shutdown(stopping.clone().cancelled_owned())
                .into_future(),
            )
        }
    };
    tokio::select! {
        () = shutdown => {}
        // Serving ends only after a shutdown began, unless it failed.
        result = &mut serve => return Ok(result??),
    }

    tracing::info!("shutting down: finishing clips in flight");
    // Stops accepting connections, the sweep and presence. Upgraded WebSockets are not
    // axum's connections any more, so the serve task cannot be what waits for their clips:
    // the encoder queue is.
    stopping.cancel();
    if tokio::time::timeout(DRAIN_LIMIT, app.encoder.drain())
        .await
        .is_err()
    {
        tracing::warn!(
            "clips still in flight {DRAIN_LIMIT:?} into the stop (is the disk stuck?); stopping without them, unacked"
        );
    }
    // Open sockets would keep their long-polls, and the server, up forever.
    io.close().await;
    match tokio::time::timeout(LINGER_AFTER_CLOSE, &mut serve).await {
        Ok(result) => result??,
        Err(_) => {
            tracing::warn!(
                "HTTP requests still open {LINGER_AFTER_CLOSE:?} after the sockets closed; stopping without them"
            );
            serve.abort();
        }
    }

    // Its only answers are redirects: nothing there is worth waiting for.
    if let Some(redirector) = redirector {
        redirector.abort();
    }
    let _ = tokio::join!(sweeper, presence, limits);
    match tokio::time::timeout(CLOSE_LIMIT, store.close()).await {
        Ok(closed) => closed?,
        Err(_) => {
            tracing::warn!("the store's last flush took over {CLOSE_LIMIT:?}; stopping without it")
        }
    }
    tracing::info!("stopped");
    Ok(())
}
