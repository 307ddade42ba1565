//! The live room (SPEC §3): everyone in it sees everyone else's camera, one frame a
//! second.
//!
//! [`LiveRoom`] is the state — who is in the room and each one's latest frame — behind a
//! small API; the event handlers below it only check, relay and report.
//!
//! Frames are relayed as volatile packets: each viewer's connection holds at most one
//! pending frame (engineioxide's `send_volatile`, a `watch` slot beside the socket's
//! bounded buffer), and a newer frame replaces one not yet written. So a slow or stalled
//! viewer costs one frame of memory, never fills the buffer that its chat messages and
//! acks need, and simply skips frames. The price: two frames that reach one viewer in the
//! same instant keep only the later. With streamers at their own phases, as cameras are,
//! that lost 0–0.3 % (tools/load.mjs, 20 streamers to 500 viewers); all twenty on the same
//! tick lost 88 %. Frames sent on joining are the exception: they go through the
//! ordinary buffer, so a newcomer sees every streamer at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use socketioxide::socket::Sid;

use crate::app::App;
use crate::clip::{Author, now_ms};
use crate::identity::UserId;
use crate::jpeg;

/// The Socket.IO room every participant joins.
pub(crate) const ROOM: &str = "live";
/// Frames closer together than this are dropped: the room is one frame a second, with
/// some slack for timer jitter in the sender's browser.
const MIN_GAP: Duration = Duration::from_millis(900);
/// The largest live frame; the page sends 320×240 at quality 0.5, about 10–20 KB.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// The largest side of a live frame, in pixels.
pub const MAX_SIDE: usize = 640;
/// A participant silent this long has their cached frame dropped, so a newcomer is not
/// shown a frozen picture of someone who has gone.
pub const STALE_AFTER: Duration = Duration::from_secs(10);

/// Someone in the live room, as the others are told (`participants`, `live:joined`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The connection's socket id: what `live:left` and `live:frame`'s `from` refer to.
    pub id: String,
    /// The user id of SPEC §10, the same for every tab of one browser.
    pub user: UserId,
    pub name: String,
}

/// What a viewer is told about a relayed frame, beside the JPEG itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrameMeta {
    pub from: String,
    pub user: UserId,
    pub name: String,
    /// Milliseconds since the Unix epoch when the server relayed it.
    pub at: u64,
    /// Counts the sender's relayed frames, from 1.
    pub seq: u64,
}

/// Why a live frame was dropped. Each kind is reported to its sender once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    NotJoined,
    TooSoon,
    TooLarge,
    NotJpeg,
    BadDimensions,
    Banned,
}

impl Dropped {
    pub fn code(self) -> &'static str {
        match self {
            Self::NotJoined => "not_joined",
            Self::TooSoon => "rate_limited",
            Self::TooLarge => "frame_too_large",
            Self::NotJpeg => "bad_frame",
            Self::BadDimensions => "bad_dimensions",
            Self::Banned => "banned",
        }
    }

    fn message(self) -> String {
        match self {
            Self::NotJoined => "join the live room before sending frames".into(),
            Self::TooSoon => {
                "live frames are relayed at most once a second; extra ones are dropped".into()
            }
            Self::TooLarge => format!("live frames may be at most {MAX_FRAME_BYTES} bytes"),
            Self::NotJpeg => "live frames must be JPEG images".into(),
            Self::BadDimensions => {
                format!("live frames may be at most {MAX_SIDE} pixels on a side")
            }
            Self::Banned => "a moderator has blocked you; your frames are not shown".into(),
        }
    }

    /// One bit per kind, for [`ReportedDrops`].
    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

struct Participant {
    member: Member,
    /// Relayed frames so far; the next one gets `seq + 1`.
    seq: u64,
    last_relayed: Option<Instant>,
    latest: Option<CachedFrame>,
}

struct CachedFrame {
    meta: FrameMeta,
    jpeg: Bytes,
    received: Instant,
}

/// What a newcomer is told when joining.
pub struct Joined {
    /// False when the socket was already in the room (joining twice changes nothing).
    pub is_new: bool,
    /// Everyone else in the room.
    pub others: Vec<Member>,
    /// The latest frame of everyone else who is streaming.
    pub frames: Vec<(FrameMeta, Bytes)>,
}

/// Who is in the live room, and each one's latest frame. Cloning shares the room.
#[derive(Clone, Default)]
pub struct LiveRoom {
    /// A std mutex: every critical section is a few map operations and never awaits.
    participants: Arc<Mutex<HashMap<Sid, Participant>>>,
}

impl LiveRoom {
    fn participants(&self) -> MutexGuard<'_, HashMap<Sid, Participant>> {
        // A panic while holding the lock cannot leave the map half-updated in a way that
        // matters more than losing the room, so a poisoned lock is used as is.
        self.participants
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn join(&self, sid: Sid, member: Member, now: Instant) -> Joined {
        let mut participants = self.participants();
        let is_new = !participants.contains_key(&sid);
        if is_new {
            participants.insert(
                sid,
                Participant {
                    member,
                    seq: 0,
                    last_relayed: None,
                    latest: None,
                },
            );
        }
        let mut others = Vec::new();
        let mut frames = Vec::new();
        for (_, participant) in participants.iter_mut().filter(|(other, _)| **other != sid) {
            others.push(participant.member.clone());
            if participant
                .latest
                .as_ref()
                .is_some_and(|frame| now.duration_since(frame.received) >= STALE_AFTER)
            {
                participant.latest = None;
            }
            if let Some(frame) = &participant.latest {
                frames.push((frame.meta.clone(), frame.jpeg.clone()));
            }
        }
        Joined {
            is_new,
            others,
            frames,
        }
    }

    /// Removes a participant; returns whether they were in the room.
    pub fn leave(&self, sid: Sid) -> bool {
        self.participants().remove(&sid).is_some()
    }

    /// Checks a frame and, if it is to be relayed, records it as the sender's latest.
    pub fn accept_frame(
        &self,
        sid: Sid,
        frame: &Bytes,
        now: Instant,
    ) -> Result<FrameMeta, Dropped> {
        // Cheap checks first, and all of them before taking the lock.
        if frame.len() > MAX_FRAME_BYTES {
            return Err(Dropped::TooLarge);
        }
        let (width, height) = jpeg::dimensions(frame).map_err(|_| Dropped::NotJpeg)?;
        if width > MAX_SIDE || height > MAX_SIDE || width == 0 || height == 0 {
            return Err(Dropped::BadDimensions);
        }

        let mut participants = self.participants();
        let participant = participants.get_mut(&sid).ok_or(Dropped::NotJoined)?;
        if participant
            .last_relayed
            .is_some_and(|last| now.duration_since(last) < MIN_GAP)
        {
            return Err(Dropped::TooSoon);
        }
        participant.seq += 1;
        participant.last_relayed = Some(now);
        let meta = FrameMeta {
            from: participant.member.id.clone(),
            user: participant.member.user.clone(),
            name: participant.member.name.clone(),
            at: now_ms(),
            seq: participant.seq,
        };
        participant.latest = Some(CachedFrame {
            meta: meta.clone(),
            jpeg: frame.clone(),
            received: now,
        });
        Ok(meta)
    }
}

/// Which kinds of dropped frame a socket has already been told about.
#[derive(Clone, Default)]
struct ReportedDrops(Arc<AtomicU8>);

impl ReportedDrops {
    /// True the first time a kind is reported.
    fn first_time(&self, dropped: Dropped) -> bool {
        self.0.fetch_or(dropped.bit(), Ordering::Relaxed) & dropped.bit() == 0
    }
}

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
    // Into the broadcast room first: whoever joins the live room after us then announces
    // itself to us, and whoever joined before is in our reply. The other order leaves a gap
    // in which a joiner is in neither, and we never learn of them.
    socket.join(ROOM);
    let mut joined = app.live.join(socket.id, me.clone(), Instant::now());
    if let Some(cluster) = &app.cluster {
        match crate::cluster::live::join(cluster, &me).await {
            Ok(elsewhere) => {
                joined.others.extend(elsewhere.members);
                joined.frames.extend(elsewhere.frames);
            }
            Err(error) => tracing::debug!(%error, "the other nodes' live participants are unknown"),
        }
    }
    // A socket that disconnected while joining may have had its disconnect handler run
    // before this join put it in the room (each runs in a task of its own): take it out
    // again, as that handler would have. A disconnect marks the socket before its handler
    // runs, so one of the two always sees the other. (Without this, 600 sockets that sent
    // `live:join` and closed left 55 in the room for good.)
    if !socket.connected() {
        leave(&socket, &app).await;
        return;
    }
    let reply = json!({ "ok": true, "you": me, "participants": joined.others });
    if let Err(error) = ack.send(&reply) {
        tracing::debug!(%error, socket = %socket.id, "could not ack live:join");
    }
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
        let meta = app.live.accept_frame(socket.id, &frame, Instant::now())?;
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
            if let Some(cluster) = &app.cluster {
                let (meta, jpeg) = &relayed;
                if let Err(error) = crate::cluster::live::keep_frame(cluster, meta, jpeg).await {
                    tracing::debug!(%error, "a live frame could not be kept for other nodes' newcomers");
                }
            }
        }
        Err(dropped) => {
            app.metrics.live_frame_dropped(dropped.code());
            let reported = socket.extensions.get::<ReportedDrops>().unwrap_or_default();
            if reported.first_time(dropped) {
                let error = json!({ "code": dropped.code(), "message": dropped.message() });
                if let Err(error) = socket.emit("live:error", &error) {
                    tracing::debug!(%error, socket = %socket.id, "could not report a dropped frame");
                }
            }
        }
    }
}

/// Acked once the socket is out of the room, so a client can join again right after
/// without racing its own leave (socketioxide handles each event in its own task).
async fn on_leave<A: Adapter>(socket: SocketRef<A>, State(app): State<App>, ack: AckSender<A>) {
    leave(&socket, &app).await;
    if let Err(error) = ack.send(&json!({ "ok": true })) {
        tracing::debug!(%error, socket = %socket.id, "could not ack live:leave");
    }
}

/// Takes a socket out of the room, on `live:leave` or disconnect, and tells the others.
pub async fn leave<A: Adapter>(socket: &SocketRef<A>, app: &App) {
    if !app.live.leave(socket.id) {
        return;
    }
    socket.leave(ROOM);
    if let Some(cluster) = &app.cluster
        && let Err(error) = crate::cluster::live::leave(cluster, socket.id.as_str()).await
    {
        tracing::debug!(%error, "a live participant could not be taken out on the other nodes");
    }
    let left = json!({ "id": socket.id.to_string() });
    if let Err(error) = socket.to(ROOM).emit("live:left", &left).await {
        tracing::warn!(%error, "announcing a departure from the live room failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: &[u8] = include_bytes!("../tests/fixtures/clip-synth/f-1.jpg");

    fn author(name: &str) -> Member {
        Member {
            id: name.into(),
            user: UserId::parse(&"u".repeat(20)).unwrap(),
            name: name.into(),
        }
    }

    fn frame() -> Bytes {
        Bytes::from_static(FRAME)
    }

    #[test]
    fn a_newcomer_gets_the_others_and_their_latest_frames() {
        let room = LiveRoom::default();
        let (streamer, watcher, newcomer) = (Sid::new(), Sid::new(), Sid::new());
        let start = Instant::now();
        room.join(streamer, author("streamer"), start);
        room.join(watcher, author("watcher"), start);
        room.accept_frame(streamer, &frame(), start).unwrap();

        let joined = room.join(newcomer, author("newcomer"), start);
        assert!(joined.is_new);
        let mut names: Vec<_> = joined.others.iter().map(|a| a.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["streamer", "watcher"]);
        assert_eq!(joined.frames.len(), 1);
        assert_eq!(joined.frames[0].0.name, "streamer");
        assert_eq!(joined.frames[0].1, frame());
    }

    #[test]
    fn joining_twice_is_not_news() {
        let room = LiveRoom::default();
        let sid = Sid::new();
        assert!(room.join(sid, author("a"), Instant::now()).is_new);
        assert!(!room.join(sid, author("a"), Instant::now()).is_new);
    }

    #[test]
    fn frames_closer_than_the_gap_are_dropped_and_seq_counts_relayed_ones() {
        let room = LiveRoom::default();
        let sid = Sid::new();
        let start = Instant::now();
        room.join(sid, author("a"), start);
        assert_eq!(room.accept_frame(sid, &frame(), start).unwrap().seq, 1);
        let early = start + Duration::from_millis(500);
        assert_eq!(
            room.accept_frame(sid, &frame(), early).unwrap_err(),
            Dropped::TooSoon
        );
        let later = start + MIN_GAP;
        assert_eq!(room.accept_frame(sid, &frame(), later).unwrap().seq, 2);
    }

    #[test]
    fn bad_frames_are_dropped_by_kind() {
        let room = LiveRoom::default();
        let sid = Sid::new();
        let now = Instant::now();
        assert_eq!(
            room.accept_frame(sid, &frame(), now).unwrap_err(),
            Dropped::NotJoined
        );
        room.join(sid, author("a"), now);
        let png = Bytes::from_static(b"\x89PNG\r\n\x1a\n");
        assert_eq!(
            room.accept_frame(sid, &png, now).unwrap_err(),
            Dropped::NotJpeg
        );
        let mut big = FRAME.to_vec();
        big.resize(MAX_FRAME_BYTES + 1, 0);
        assert_eq!(
            room.accept_frame(sid, &Bytes::from(big), now).unwrap_err(),
            Dropped::TooLarge
        );
        let mut wide = FRAME.to_vec();
        let sof = wide
            .windows(2)
            .position(|pair| pair == [0xFF, 0xC0])
            .unwrap();
        wide[sof + 7..sof + 9].copy_from_slice(&641u16.to_be_bytes());
        assert_eq!(
            room.accept_frame(sid, &Bytes::from(wide), now).unwrap_err(),
            Dropped::BadDimensions
        );
    }

    #[test]
    fn a_silent_participants_frame_goes_stale() {
        let room = LiveRoom::default();
        let (streamer, newcomer) = (Sid::new(), Sid::new());
        let start = Instant::now();
        room.join(streamer, author("streamer"), start);
        room.accept_frame(streamer, &frame(), start).unwrap();
        let joined = room.join(newcomer, author("newcomer"), start + STALE_AFTER);
        assert_eq!(joined.others.len(), 1, "still in the room");
        assert!(joined.frames.is_empty(), "but no longer shown frozen");
    }

    #[test]
    fn leaving_removes_the_participant() {
        let room = LiveRoom::default();
        let sid = Sid::new();
        room.join(sid, author("a"), Instant::now());
        assert!(room.leave(sid));
        assert!(!room.leave(sid));
        assert!(
            room.join(Sid::new(), author("b"), Instant::now())
                .others
                .is_empty()
        );
    }

    #[test]
    fn each_kind_of_drop_is_reported_once() {
        let reported = ReportedDrops::default();
        assert!(reported.first_time(Dropped::TooSoon));
        assert!(!reported.first_time(Dropped::TooSoon));
        assert!(reported.first_time(Dropped::NotJpeg));
    }
}
