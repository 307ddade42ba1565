//! The call room's membership events (SPEC §9): `call:join`, `call:leave`, a disconnect,
//! and a ban ending the calls of the banned (SPEC §10). Who is in which call is
//! [`crate::call::rooms::CallRooms`]'s; these check, announce and answer.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use tokio_util::sync::CancellationToken;

use super::call_signal::on_signal;
use super::membership::Membership;
use crate::app::App;
use crate::call::refusals::{JoinRefused, banned_message};
use crate::call::room::{RoomFull, RoomName};
use crate::clip::{Author, now_ms};
use crate::member::Member;
use crate::refusal::{Refusal, acknowledge};

#[derive(Deserialize)]
struct JoinRequest {
    room: String,
}

/// Listens for a newly connected socket's call events. Most sockets never join a call, so
/// what a caller needs (its own room, its signalling state) is made on its first join or
/// signal: an idle connection costs no more than it did before the call room.
pub(crate) fn register<A: Adapter>(socket: &SocketRef<A>) {
    socket.on("call:join", on_join::<A>);
    socket.on("call:signal", on_signal::<A>);
    socket.on("call:leave", on_leave::<A>);
}

async fn on_join<A: Adapter>(
    socket: SocketRef<A>,
    State(app): State<App>,
    TryData(request): TryData<JoinRequest>,
    ack: AckSender<A>,
) {
    let answer = join(&socket, &app, request).await;
    acknowledge(ack, answer.map_err(|refused| refused.body()));
}

/// Joins the call and tells its others; the reply is sent after them, so that no signal a
/// newcomer sends on reading it can reach a peer before that peer heard of the newcomer.
async fn join<A: Adapter>(
    socket: &SocketRef<A>,
    app: &App,
    request: Result<JoinRequest, socketioxide::ParserError>,
) -> Result<Value, JoinRefused> {
    let author = socket
        .extensions
        .get::<Author>()
        .ok_or(JoinRefused::InvalidPayload)?;
    if let Some(ban) = app.bans.of(&author.id, now_ms()) {
        return Err(JoinRefused::Banned {
            until_ms: ban.until,
        });
    }
    let request = request.map_err(|_| JoinRefused::InvalidPayload)?;
    let room = RoomName::parse(&request.room).ok_or(JoinRefused::InvalidRoom)?;
    let _changing = Membership::change(socket).await;
    let me = Member {
        id: socket.id.to_string(),
        user: author.id,
        name: author.name,
    };
    // Into the broadcast room first: whoever joins the call after us then announces itself
    // to us, and whoever joined before is in our reply. The other order leaves a gap in
    // which a joiner is in neither, and we never learn of them.
    // Addressable by its connection id, which is how a peer's signal finds it on any node.
    socket.join(socket.id);
    let broadcast_room = room.broadcast_room();
    socket.join(broadcast_room.clone());
    let joined = match app.calls.join(socket.id, &me, &room).await {
        Ok(joined) => joined,
        Err(RoomFull) => {
            socket.leave(broadcast_room);
            return Err(JoinRefused::RoomFull {
                max: app.config.call_max.get(),
            });
        }
    };
    if let Some(left) = &joined.left {
        socket.leave(left.broadcast_room());
        announce_left(socket, left).await;
    }
    if joined.is_new
        && let Err(error) = socket.to(broadcast_room).emit("call:joined", &me).await
    {
        tracing::warn!(%error, "announcing a call participant failed");
    }
    // A socket that disconnected while joining may have had its disconnect handler run
    // before this join put it in the call (each runs in a task of its own): take it out
    // again, as that handler would have. A disconnect marks the socket before its handler
    // runs, so one of the two always sees the other.
    if !socket.connected() {
        leave_now(socket, app).await;
    }
    // Likewise a ban made while this join was on its way: `end_banned_calls` may have
    // looked before this socket was in the call, and then this check sees the ban.
    if let Some(ban) = app.bans.of(&me.user, now_ms()) {
        leave_now(socket, app).await;
        return Err(JoinRefused::Banned {
            until_ms: ban.until,
        });
    }
    let ice_servers = app.ice.for_user(&me.user, unix_now());
    Ok(json!({ "you": me, "peers": joined.peers, "ice_servers": ice_servers }))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Acked once the socket is out of its call, so a client can join again right after
/// without racing its own leave (socketioxide handles each event in its own task).
async fn on_leave<A: Adapter>(socket: SocketRef<A>, State(app): State<App>, ack: AckSender<A>) {
    leave(&socket, &app).await;
    acknowledge(ack, Ok(Value::Null));
}

/// Takes a socket out of its call, on `call:leave` or disconnect, and tells the others.
pub async fn leave<A: Adapter>(socket: &SocketRef<A>, app: &App) {
    let _changing = Membership::change(socket).await;
    leave_now(socket, app).await;
}

/// [`leave`], for a caller that already holds the socket's membership lock.
async fn leave_now<A: Adapter>(socket: &SocketRef<A>, app: &App) {
    if let Some(room) = app.calls.leave(socket.id).await {
        socket.leave(room.broadcast_room());
        announce_left(socket, &room).await;
    }
}

/// Ends the calls of a user as soon as they are banned (SPEC §10), on every node: each
/// node takes its own banned sockets out, so the others get `call:left` and drop their
/// connections to them, and tells those sockets why with `call:ended`. Audio and video
/// go peer to peer, so the others' pages closing those connections is what stops them.
pub async fn end_banned_calls<A: Adapter>(io: SocketIo<A>, app: App, stop: CancellationToken) {
    let mut changes = app.bans.changes();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            changed = changes.changed() => if changed.is_err() { return },
        }
        let now = now_ms();
        let banned = app
            .calls
            .participants()
            .into_iter()
            .filter_map(|(sid, user)| Some((sid, app.bans.of(&user, now)?)));
        for (sid, ban) in banned {
            // A socket that is gone is being taken out by its disconnect handler.
            let Some(socket) = io.get_socket(sid) else {
                continue;
            };
            leave(&socket, &app).await;
            let ended = json!({ "code": "banned", "message": banned_message(ban.until) });
            if let Err(error) = socket.emit("call:ended", &ended) {
                tracing::debug!(%error, socket = %socket.id, "could not tell a banned socket its call ended");
            }
        }
    }
}

async fn announce_left<A: Adapter>(socket: &SocketRef<A>, room: &RoomName) {
    let left = json!({ "id": socket.id.as_str() });
    if let Err(error) = socket
        .to(room.broadcast_room())
        .emit("call:left", &left)
        .await
    {
        tracing::warn!(%error, "announcing a departure from a call failed");
    }
}
