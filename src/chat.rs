//! The chat events of SPEC §2: what a socket gets on connect, `message` → clip, and
//! `report`.
//!
//! A clip is made in this order: rate limit, ban, parse, profanity, reserve a place in the
//! encoder queue, encode, store durably, then tell the sender and everyone else. Any step
//! can refuse the clip; a refused clip is neither stored nor broadcast, and the socket
//! stays open.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use uuid::Uuid;

use crate::app::App;
use crate::clip::{Author, Clip, now_ms};
use crate::encode_queue::Slot;
use crate::error::{ClipError, ErrorBody};
use crate::identity::UserId;
use crate::names::display_name;
use crate::presence::Online;
use crate::rate_limit::MessageLimit;
use crate::request::{ClipDraft, ClipRequest, MAX_CLIENT_ID_CHARS};
use crate::store::Store;

/// The handshake's `auth` object. No `Debug`: the token must never reach a log line.
#[derive(Deserialize)]
pub(crate) struct Handshake {
    name: Option<String>,
    /// What proves the user id (SPEC §10); used once, to compute it, and dropped.
    token: Option<String>,
}

#[derive(Serialize)]
struct Welcome<'a> {
    you: You<'a>,
    #[serde(flatten)]
    online: Online,
}

#[derive(Serialize)]
struct You<'a> {
    id: &'a UserId,
    name: &'a str,
    /// This connection's socket id, what the live room addresses.
    conn: String,
}

/// `report` takes its own bucket, as strict as `message`'s: each report is a write.
#[derive(Clone, Default)]
struct ReportLimit(MessageLimit);

#[derive(Deserialize)]
struct ReportRequest {
    key: String,
}

#[derive(Serialize)]
struct MessageError<'a> {
    id: Option<&'a str>,
    code: &'static str,
    message: String,
}

/// Registers a new socket: greets it, replays recent clips, and listens for its events.
pub(crate) async fn on_connect<A: Adapter>(
    socket: SocketRef<A>,
    State(app): State<App>,
    TryData(handshake): TryData<Handshake>,
) {
    let (requested, token) = match handshake {
        Ok(handshake) => (handshake.name, handshake.token),
        Err(_) => (None, None),
    };
    let user = app.identities.user_id(token.as_deref());
    drop(token);
    let me = Author {
        id: user,
        name: display_name(requested.as_deref()),
    };
    app.presence.connected(&me.id, &me.name);
    socket.extensions.insert(me.clone());
    socket.extensions.insert(MessageLimit::new());
    socket.extensions.insert(ReportLimit::default());

    socket.on("message", on_message::<A>);
    socket.on("report", on_report::<A>);
    socket.on_disconnect(on_disconnect::<A>);
    crate::live::register(&socket);
    crate::call::register(&socket);

    // After the handlers are in place (events that arrive while this awaits are not lost):
    // the other nodes' tallies as they are now, not as of the last second's swap, so that
    // a newcomer's count is right from its first event.
    if let Some(cluster) = &app.cluster {
        match crate::cluster::presence::others(cluster).await {
            Ok(others) => app.presence.set_others(others),
            Err(error) => tracing::debug!(%error, "the other nodes' presence is unknown"),
        }
    }
    let online = app.presence.online();

    let replay = app
        .store
        .recent(app.config.replay, now_ms())
        .await
        .unwrap_or_else(|error| {
            tracing::error!(%error, "reading the replay failed; sending none");
            Vec::new()
        });
    let you = You {
        id: &me.id,
        name: &me.name,
        conn: socket.id.to_string(),
    };
    let greeting = socket
        .emit("welcome", &Welcome { you, online })
        .and_then(|()| socket.emit("messages", &replay));
    if let Err(error) = greeting {
        tracing::debug!(%error, socket = %socket.id, "could not greet a socket");
    }
}

async fn on_disconnect<A: Adapter>(socket: SocketRef<A>, State(app): State<App>) {
    if let Some(me) = socket.extensions.get::<Author>() {
        app.presence.disconnected(&me.id);
    }
    crate::live::leave(&socket, &app).await;
    crate::call::leave(&socket, &app).await;
}

/// `report { key }`: flags a clip for the moderators, once per user (SPEC §10).
async fn on_report<A: Adapter>(
    socket: SocketRef<A>,
    State(app): State<App>,
    TryData(request): TryData<ReportRequest>,
    ack: AckSender<A>,
) {
    let answer = report(&socket, &app, request).await;
    let reply = match answer {
        Ok(()) => json!({ "ok": true }),
        Err(error) => json!({ "ok": false, "error": error }),
    };
    if let Err(error) = ack.send(&reply) {
        tracing::debug!(%error, socket = %socket.id, "could not answer a report");
    }
}

async fn report<A: Adapter>(
    socket: &SocketRef<A>,
    app: &App,
    request: Result<ReportRequest, socketioxide::ParserError>,
) -> Result<(), ErrorBody> {
    let refusal = |code, message: &str| ErrorBody {
        code,
        message: message.to_owned(),
    };
    let limit = socket
        .extensions
        .get::<ReportLimit>()
        .ok_or_else(|| ClipError::Internal.body())?;
    if !limit.0.try_take() {
        return Err(ClipError::RateLimited.body());
    }
    let me = socket
        .extensions
        .get::<Author>()
        .ok_or_else(|| ClipError::Internal.body())?;
    let key = request
        .ok()
        .and_then(|request| crate::http::canonical_key(&request.key))
        .ok_or_else(|| refusal("invalid_payload", "a report is `{ key }` with a clip's key"))?;
    match app.store.report(key, me.id, now_ms()).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(refusal(
            "not_found",
            "there is no such clip, or it has expired",
        )),
        Err(error) => {
            tracing::error!(%error, %key, "storing a report failed");
            Err(ClipError::Internal.body())
        }
    }
}

async fn on_message<A: Adapter>(
    socket: SocketRef<A>,
    io: SocketIo<A>,
    State(app): State<App>,
    TryData(request): TryData<ClipRequest>,
    ack: AckSender<A>,
) {
    // Echoed in `messageerror` only if it is a valid id: a refused 4 MB id is not sent back.
    let client_id = request
        .as_ref()
        .ok()
        .and_then(|request| request.id.clone())
        .filter(|id| id.chars().count() <= MAX_CLIENT_ID_CHARS);
    match publish(&socket, &io, &app, request).await {
        Ok(published) => {
            let clip = &published.clip;
            app.metrics.clips_accepted.inc();
            let acked = socket
                .emit("messageack", clip)
                .and_then(|()| ack.send(&json!({ "ok": true, "message": clip })));
            if let Err(error) = acked {
                tracing::debug!(%error, socket = %socket.id, "could not ack a stored clip");
            }
            if let Err(error) = socket.broadcast().emit("message", clip).await {
                tracing::warn!(%error, key = %clip.key, "broadcasting a clip failed");
            }
        }
        Err(error) => {
            app.metrics.clip_rejected(&error);
            let body = error.body();
            let refused = socket
                .emit(
                    "messageerror",
                    &MessageError {
                        id: client_id.as_deref(),
                        code: body.code,
                        message: body.message.clone(),
                    },
                )
                .and_then(|()| ack.send(&json!({ "ok": false, "error": body })));
            if let Err(error) = refused {
                tracing::debug!(%error, socket = %socket.id, "could not tell a socket its clip was refused");
            }
        }
    }
}

/// A stored clip, with its queue slot still held: shutdown waits for the slot, so the
/// clip's ack and broadcast go out before the sockets are closed.
struct Published {
    clip: Clip,
    _slot: Slot,
}

async fn publish<A: Adapter>(
    socket: &SocketRef<A>,
    io: &SocketIo<A>,
    app: &App,
    request: Result<ClipRequest, socketioxide::ParserError>,
) -> Result<Published, ClipError> {
    // Every attempt takes a token, valid or not, so a flood of garbage is limited too.
    let limit = socket
        .extensions
        .get::<MessageLimit>()
        .ok_or(ClipError::Internal)?;
    if !limit.try_take() {
        return Err(ClipError::RateLimited);
    }
    let author = socket
        .extensions
        .get::<Author>()
        .ok_or(ClipError::Internal)?;
    if let Some(ban) = app.bans.of(&author.id, now_ms()) {
        return Err(ClipError::Banned {
            until_ms: ban.until,
        });
    }
    let request = request.map_err(|error| {
        tracing::debug!(%error, socket = %socket.id, "invalid message payload");
        ClipError::InvalidPayload
    })?;
    let draft = ClipDraft::parse(request)?;
    if app.config.filter_profanity && crate::moderation::is_profane(draft.text.as_str()) {
        return Err(ClipError::Profanity);
    }
    let slot = app.encoder.reserve()?;
    let gif = slot.encode(draft.frames).await?;

    let key = Uuid::now_v7();
    let created_at = now_ms();
    let ttl_ms = u64::try_from(app.config.clip_ttl.as_millis()).unwrap_or(u64::MAX);
    let clip = Clip {
        key,
        id: draft.client_id,
        author,
        message: draft.text.into_string(),
        clip: Clip::url(key),
        width: gif.width,
        height: gif.height,
        frames: gif.frames,
        delay_ms: gif.delay_ms,
        bytes: gif.bytes.len(),
        created_at,
        expires_at: created_at.saturating_add(ttl_ms),
    };
    app.store.insert(&clip, &gif.bytes).await.map_err(|error| {
        if error.is_unavailable() {
            tracing::warn!(%error, key = %clip.key, "the store is unreachable; clip refused");
            if error.may_have_written() {
                tokio::spawn(withdraw(
                    io.clone(),
                    app.store.clone(),
                    clip.key,
                    clip.expires_at,
                ));
            }
            ClipError::Unavailable
        } else {
            tracing::error!(%error, key = %clip.key, "storing a clip failed");
            ClipError::Internal
        }
    })?;
    Ok(Published { clip, _slot: slot })
}

/// How often [`withdraw`] asks a store that does not answer again.
const WITHDRAW_RETRY: Duration = Duration::from_millis(500);

/// Takes a clip refused `unavailable` out of the store once it answers again. A lost
/// answer is not a lost write: Redis may have run the transaction and its reply not come
/// back, and a clip its sender was told did not go must not turn up later. Every page is
/// told to drop it, in case a replay showed it meanwhile. Gives up once the clip would have
/// expired anyway.
async fn withdraw<A: Adapter>(io: SocketIo<A>, store: Store, key: Uuid, expires_at: u64) {
    loop {
        match store.remove(vec![key]).await {
            Ok(removed) => {
                if !removed.is_empty() {
                    tracing::warn!(%key, "a clip refused as unavailable had been stored after all; withdrawn");
                    if let Err(error) = io.emit("message:removed", &json!({ "key": key })).await {
                        tracing::warn!(%error, %key, "announcing a withdrawn clip failed");
                    }
                }
                return;
            }
            Err(error) if now_ms() < expires_at => {
                tracing::debug!(%error, %key, "a refused clip cannot be withdrawn yet");
                tokio::time::sleep(WITHDRAW_RETRY).await;
            }
            Err(error) => {
                tracing::debug!(%error, %key, "a refused clip has expired before it could be withdrawn");
                return;
            }
        }
    }
}
