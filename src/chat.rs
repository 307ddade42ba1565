//! The chat events of SPEC §2: what a socket gets on connect, and `message` → clip.
//!
//! A clip is made in this order: rate limit, parse, reserve a place in the encoder queue,
//! encode, store durably, then tell the sender and everyone else. Any step can refuse the
//! clip; a refused clip is neither stored nor broadcast, and the socket stays open.

use serde::{Deserialize, Serialize};
use serde_json::json;
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use uuid::Uuid;

use crate::clip::{Author, Clip, now_ms};
use crate::encode_queue::Slot;
use crate::error::ClipError;
use crate::names::display_name;
use crate::presence::Online;
use crate::rate_limit::MessageLimit;
use crate::request::{ClipDraft, ClipRequest, MAX_CLIENT_ID_CHARS};
use crate::server::App;

/// The handshake's `auth` object.
#[derive(Debug, Deserialize)]
pub(crate) struct Handshake {
    name: Option<String>,
}

#[derive(Serialize)]
struct Welcome<'a> {
    you: &'a Author,
    #[serde(flatten)]
    online: Online,
}

#[derive(Serialize)]
struct MessageError<'a> {
    id: Option<&'a str>,
    code: &'static str,
    message: String,
}

/// Registers a new socket: greets it, replays recent clips, and listens for its events.
pub(crate) async fn on_connect(
    socket: SocketRef,
    State(app): State<App>,
    TryData(handshake): TryData<Handshake>,
) {
    let requested = handshake.ok().and_then(|handshake| handshake.name);
    let me = Author {
        id: socket.id.to_string(),
        name: display_name(requested.as_deref()),
    };
    let online = app.presence.connected();
    socket.extensions.insert(me.clone());
    socket.extensions.insert(MessageLimit::new());

    socket.on("message", on_message);
    socket.on_disconnect(on_disconnect);
    crate::live::register(&socket);

    let replay = app
        .store
        .recent(app.config.replay, now_ms())
        .await
        .unwrap_or_else(|error| {
            tracing::error!(%error, "reading the replay failed; sending none");
            Vec::new()
        });
    let greeting = socket
        .emit("welcome", &Welcome { you: &me, online })
        .and_then(|()| socket.emit("messages", &replay));
    if let Err(error) = greeting {
        tracing::debug!(%error, socket = %socket.id, "could not greet a socket");
    }
}

async fn on_disconnect(socket: SocketRef, State(app): State<App>) {
    app.presence.disconnected();
    crate::live::leave(&socket, &app).await;
}

async fn on_message(
    socket: SocketRef,
    State(app): State<App>,
    TryData(request): TryData<ClipRequest>,
    ack: AckSender,
) {
    // Echoed in `messageerror` only if it is a valid id: a refused 4 MB id is not sent back.
    let client_id = request
        .as_ref()
        .ok()
        .and_then(|request| request.id.clone())
        .filter(|id| id.chars().count() <= MAX_CLIENT_ID_CHARS);
    match publish(&socket, &app, request).await {
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

async fn publish(
    socket: &SocketRef,
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
    let request = request.map_err(|error| {
        tracing::debug!(%error, socket = %socket.id, "invalid message payload");
        ClipError::InvalidPayload
    })?;
    let draft = ClipDraft::parse(request)?;
    let slot = app.encoder.reserve()?;
    let gif = slot.encode(draft.frames).await?;

    let author = socket
        .extensions
        .get::<Author>()
        .ok_or(ClipError::Internal)?;
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
        tracing::error!(%error, key = %clip.key, "storing a clip failed");
        ClipError::Internal
    })?;
    Ok(Published { clip, _slot: slot })
}
