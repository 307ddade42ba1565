//! The live room's events (SPEC §3): `live:join`, `live:frame`, `live:leave`. They check,
//! relay and report; who is in the room is [`crate::live::room::LiveRoom`]'s.

use bytes::Bytes;
use serde_json::json;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State, TryData};

use super::membership::Membership;
use crate::app::App;
use crate::clip::{Author, now_ms};
use crate::live::frame::{Dropped, ROOM};
use crate::member::Member;
use crate::refusal::{Refusal, ReportedOnce, acknowledge};

/// Which kinds of dropped frame a socket has been told about, in its extensions: its own
/// type, so it is never mistaken for the call room's.
#[derive(Clone, Default)]
struct ReportedDrops(ReportedOnce);

/// Listens for the live-room events of a newly connected socket.
pub fn register<A: Adapter>(socket: &SocketRef<A>) {
    socket.extensions.insert(ReportedDrops::default());
    socket.on("live:join", on_join::<A>);
    socket.on("live:frame", on_frame::<A>);
    socket.on("live:leave", on_leave::<A>);
}

async fn on_join<A: Adapter>(socket: SocketRef<A>, State(app): State<App>, ack: AckSender<A>) {
    let Some(author) = socket.extensions.get::<Author>() else {
        return;
    };
    let me = Member {
        id: socket.id.to_string(),
        user: author.id,
        name: author.name,
    };
    let _changing = Membership::change(&socket).await;
    // Into the broadcast room first: whoever joins the live room after us then announces
    // itself to us, and whoever joined before is in our reply. The other order leaves a gap
    // in which a joiner is in neither, and we never learn of them.
    socket.join(ROOM);
    let joined = app.live.join(socket.id, &me).await;
    // A socket that disconnected while joining may have had its disconnect handler run
    // before this join put it in the room (each runs in a task of its own): take it out
    // again, as that handler would have. A disconnect marks the socket before its handler
    // runs, so one of the two always sees the other. (Without this, 600 sockets that sent
    // `live:join` and closed left 55 in the room for good.)
    if !socket.connected() {
        leave_now(&socket, &app).await;
        return;
    }
    acknowledge(ack, Ok(json!({ "you": me, "participants": joined.others })));
    // Joining again changes nothing, and sends nothing again: a client repeating
    // `live:join` must not make the server send every cached frame each time.
    if !joined.is_new {
        return;
    }
    for frame in &joined.frames {
        if let Err(error) = socket.emit("live:frame", frame) {
            tracing::debug!(%error, socket = %socket.id, "could not send a cached live frame");
        }
    }
    if let Err(error) = socket.to(ROOM).emit("live:joined", &me).await {
        tracing::warn!(%error, "announcing a live participant failed");
    }
}

async fn on_frame<A: Adapter>(
    socket: SocketRef<A>,
    State(app): State<App>,
    TryData(frame): TryData<Bytes>,
) {
    let banned = socket
        .extensions
        .get::<Author>()
        .is_some_and(|author| app.bans.of(&author.id, now_ms()).is_some());
    let accepted = frame.map_err(|_| Dropped::NotJpeg).and_then(|frame| {
        if banned {
            return Err(Dropped::Banned);
        }
        let meta = app.live.accept_frame(socket.id, &frame)?;
        Ok((meta, frame))
    });
    match accepted {
        Ok(relayed) => {
            app.metrics.live_frames_relayed.inc();
            if let Err(error) = socket
                .to(ROOM)
                .volatile()
                .emit("live:frame", &relayed)
                .await
            {
                tracing::debug!(%error, "a live frame could not be relayed");
            }
            let (meta, jpeg) = &relayed;
            app.live.keep_for_elsewhere(meta, jpeg).await;
        }
        Err(dropped) => {
            app.metrics.live_frame_dropped(dropped.code());
            let reported = socket.extensions.get::<ReportedDrops>().unwrap_or_default();
            reported.0.report(&socket, "live:error", &dropped);
        }
    }
}

/// Acked once the socket is out of the room, so a client can join again right after
/// without racing its own leave (socketioxide handles each event in its own task).
async fn on_leave<A: Adapter>(socket: SocketRef<A>, State(app): State<App>, ack: AckSender<A>) {
    leave(&socket, &app).await;
    acknowledge(ack, Ok(serde_json::Value::Null));
}

/// Takes a socket out of the room, on `live:leave` or disconnect, and tells the others.
pub async fn leave<A: Adapter>(socket: &SocketRef<A>, app: &App) {
    let _changing = Membership::change(socket).await;
    leave_now(socket, app).await;
}

/// [`leave`], for a caller that already holds the socket's membership lock.
async fn leave_now<A: Adapter>(socket: &SocketRef<A>, app: &App) {
    if !app.live.leave(socket.id).await {
        return;
    }
    socket.leave(ROOM);
    let left = json!({ "id": socket.id.to_string() });
    if let Err(error) = socket.to(ROOM).emit("live:left", &left).await {
        tracing::warn!(%error, "announcing a departure from the live room failed");
    }
}
