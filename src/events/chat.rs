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

use super::membership::Membership;
use crate::address::key::AddressKey;
use crate::app::App;
use crate::clip::{Author, Clip, now_ms};
use crate::encode_queue::Slot;
use crate::error::ClipError;
use crate::identity::UserId;
use crate::metrics::AddressRefusal;
use crate::names::display_name;
use crate::presence::tally::Online;
use crate::rate_limit::MessageLimit;
use crate::refusal::{Refusal, acknowledge};
use crate::request::{ClipDraft, ClipRequest, MAX_CLIENT_ID_CHARS};
use crate::store::{ClipFiles, Store};

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

/// Why a `report` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReportRefused {
    RateLimited,
    InvalidPayload,
    NotFound,
    Internal,
}

impl Refusal for ReportRefused {
    fn code(&self) -> &'static str {
        match self {
            Self::RateLimited => ClipError::RateLimited.code(),
            Self::InvalidPayload => "invalid_payload",
            Self::NotFound => "not_found",
            Self::Internal => ClipError::Internal.code(),
        }
    }

    fn message(&self) -> String {
        match self {
            // As strict as `message`'s limit, and told the same way.
            Self::RateLimited => ClipError::RateLimited.message(),
            Self::InvalidPayload => "a report is `{ key }` with a clip's key".into(),
            Self::NotFound => "there is no such clip, or it has expired".into(),
            Self::Internal => ClipError::Internal.message(),
        }
    }
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
    super::admission::enter(&socket, &app);
    // How a ban by address finds the addresses this user is connected from, on any node.
    socket.join(me.id.room());
    socket.extensions.insert(me.clone());
    socket.extensions.insert(MessageLimit::new());
    socket.extensions.insert(ReportLimit::default());
    Membership::give(&socket);

    socket.on("message", on_message::<A>);
    socket.on("report", on_report::<A>);
    socket.on_disconnect(on_disconnect::<A>);
    super::live::register(&socket);
    super::call::register(&socket);

    // After the handlers are in place, so that events that arrive while this awaits are
    // not lost.
    app.presence.read_others().await;
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
    super::admission::leave(&socket, &app);
    if let Some(me) = socket.extensions.get::<Author>() {
        app.presence.disconnected(&me.id);
    }
    super::live::leave(&socket, &app).await;
    super::call::leave(&socket, &app).await;
}

/// `report { key }`: flags a clip for the moderators, once per user (SPEC §10).
async fn on_report<A: Adapter>(
    socket: SocketRef<A>,
    State(app): State<App>,
    TryData(request): TryData<ReportRequest>,
    ack: AckSender<A>,
) {
    let answer = report(&socket, &app, request).await;
    acknowledge(
        ack,
        answer
            .map(|()| serde_json::Value::Null)
            .map_err(|refused| refused.body()),
    );
}

async fn report<A: Adapter>(
    socket: &SocketRef<A>,
    app: &App,
    request: Result<ReportRequest, socketioxide::ParserError>,
) -> Result<(), ReportRefused> {
    // The address's bucket first: it is shared by all its sockets, each of which has a
    // bucket of its own (SPEC §13).
    if let Some(address) = socket.extensions.get::<AddressKey>()
        && !app.limits.take_report(&address).await
    {
        app.metrics.address_refused(AddressRefusal::Report);
        return Err(ReportRefused::RateLimited);
    }
    let limit = socket
        .extensions
        .get::<ReportLimit>()
        .ok_or(ReportRefused::Internal)?;
    if !limit.0.try_take() {
        return Err(ReportRefused::RateLimited);
    }
    let me = socket
        .extensions
        .get::<Author>()
        .ok_or(ReportRefused::Internal)?;
    let key = request
        .ok()
        .and_then(|request| crate::http::canonical_key(&request.key))
        .ok_or(ReportRefused::InvalidPayload)?;
    match app.store.report(key, me.id, now_ms()).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(ReportRefused::NotFound),
        Err(error) => {
            tracing::error!(%error, %key, "storing a report failed");
            Err(ReportRefused::Internal)
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
            if let Err(error) = socket.emit("messageack", clip) {
                tracing::debug!(%error, socket = %socket.id, "could not ack a stored clip");
            }
            acknowledge(ack, Ok(json!({ "message": clip })));
            if let Err(error) = socket.broadcast().emit("message", clip).await {
                tracing::warn!(%error, key = %clip.key, "broadcasting a clip failed");
            }
        }
        Err(error) => {
            app.metrics.clip_rejected(&error);
            let body = error.body();
            let told = socket.emit(
                "messageerror",
                &MessageError {
                    id: client_id.as_deref(),
                    code: body.code,
                    message: body.message.clone(),
                },
            );
            if let Err(error) = told {
                tracing::debug!(%error, socket = %socket.id, "could not tell a socket its clip was refused");
            }
            acknowledge(ack, Err(body));
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
    // Every attempt takes a token, valid or not, so a flood of garbage is limited too: the
    // address's first, shared by all its sockets (SPEC §13), then the socket's own.
    let address = socket.extensions.get::<AddressKey>();
    if let Some(address) = &address
        && !app.limits.take_clip(address).await
    {
        app.metrics.address_refused(AddressRefusal::Message);
        return Err(ClipError::RateLimited);
    }
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
    let encoded = slot.encode(draft.frames).await?;
    let gif = &encoded.gif;

    let key = Uuid::now_v7();
    let created_at = now_ms();
    let ttl_ms = u64::try_from(app.config.clip_ttl.as_millis()).unwrap_or(u64::MAX);
    let clip = Clip {
        key,
        id: draft.client_id,
        author,
        message: draft.text.into_string(),
        clip: Clip::url(key),
        video: Some(Clip::video_url(key)),
        poster: Some(Clip::poster_url(key)),
        width: gif.width,
        height: gif.height,
        frames: gif.frames,
        delay_ms: gif.delay_ms,
        bytes: gif.bytes.len(),
        video_bytes: Some(encoded.video.len()),
        created_at,
        expires_at: created_at.saturating_add(ttl_ms),
    };
    app.store
        .insert(
            &clip,
            ClipFiles {
                gif: &gif.bytes,
                video: &encoded.video,
                poster: &encoded.poster,
            },
        )
        .await
        .map_err(|error| {
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
    if let Some(address) = address {
        // For a ban by address once the author has left (SPEC §10).
        app.limits.clip_sent(&clip.author.id, &address).await;
    }
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
