//! The call room (SPEC §9): WebRTC video calls, peer to peer. loopchat only introduces
//! the peers and carries their signalling (SDP descriptions and ICE candidates) over
//! Socket.IO; audio and video never pass through it.
//!
//! [`CallRooms`] is the state — who is in which call — behind a small API; the event
//! handlers below it only check, relay and report. A cluster (SPEC §8) will keep that state
//! in Redis behind the same operations, and the handlers are generic over the Socket.IO
//! adapter, so they stay as they are.
//!
//! A signal reaches its target through a Socket.IO room named by the target's connection
//! id, which every socket joins on connecting (as socket.io does by itself and socketioxide
//! 0.18 does not): an adapter resolves a room on whichever node its sockets are.
//! Each call is the Socket.IO room `call:<name>`: the prefix keeps a call's name from ever
//! being taken for a connection id, whose alphabet includes every character a name has.
//! One socket's signals are relayed in the order it sent them (see `on_signal`).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use socketioxide::socket::Sid;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::clip::{Author, now_ms};
use crate::error::until_text;
use crate::identity::UserId;
use crate::live::Member;
use crate::rate_limit::SignalLimit;

/// The largest `data` of one signal, as JSON: an SDP offer with many codecs and
/// candidates is 5–10 KB.
pub const MAX_SIGNAL_BYTES: usize = 32 * 1024;

/// The name of a call room: 1 to 64 of `a-z`, `0-9` and `-`, so it reads well in a link.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomName(String);

impl RoomName {
    const MAX_CHARS: usize = 64;
    /// Random bytes in a fresh name: 80 bits, beyond guessing (SPEC §9 asks for 64).
    const RANDOM_BYTES: usize = 10;

    pub fn parse(text: &str) -> Option<Self> {
        let well_formed = (1..=Self::MAX_CHARS).contains(&text.len())
            && text
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
        well_formed.then(|| Self(text.to_owned()))
    }

    /// A fresh name nobody can guess: whoever has the link can join, so the link is the key.
    pub fn random() -> Self {
        let mut random = [0; Self::RANDOM_BYTES];
        getrandom::fill(&mut random).expect("the OS has no random numbers to give");
        Self(base32::encode(
            base32::Alphabet::Rfc4648Lower { padding: false },
            &random,
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Socket.IO room of this call.
    fn broadcast_room(&self) -> String {
        format!("call:{}", self.0)
    }
}

/// What joining a call did.
#[derive(Debug, PartialEq, Eq)]
pub struct Joined {
    /// False when the socket was already in this call (joining twice changes nothing).
    pub is_new: bool,
    /// Everyone else in the call, in the order they joined.
    pub peers: Vec<Member>,
    /// The call the socket was in before and has left for this one.
    pub left: Option<RoomName>,
}

/// The call is full: it already has `--call-max` participants.
#[derive(Debug, PartialEq, Eq)]
pub struct RoomFull;

/// How many calls are in progress and how many people are in them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Census {
    /// Calls with at least one participant.
    pub calls: usize,
    pub participants: usize,
}

#[derive(Default)]
struct Calls {
    /// Each call's participants, in the order they joined; a call with nobody is removed.
    members: HashMap<RoomName, Vec<(Sid, Member)>>,
    /// The call each socket is in: at most one.
    call_of: HashMap<Sid, RoomName>,
}

impl Calls {
    fn remove(&mut self, sid: Sid) -> Option<RoomName> {
        let room = self.call_of.remove(&sid)?;
        if let Some(members) = self.members.get_mut(&room) {
            members.retain(|(member, _)| *member != sid);
            if members.is_empty() {
                self.members.remove(&room);
            }
        }
        Some(room)
    }
}

/// Who is in which call. Cloning shares the calls.
#[derive(Clone)]
pub struct CallRooms {
    /// `--call-max`.
    max: NonZeroUsize,
    /// A std mutex: every critical section is a few map operations and never awaits.
    calls: Arc<Mutex<Calls>>,
}

impl CallRooms {
    pub fn new(max: NonZeroUsize) -> Self {
        Self {
            max,
            calls: Arc::default(),
        }
    }

    fn calls(&self) -> MutexGuard<'_, Calls> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing the calls, so a poisoned lock is used as is.
        self.calls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Puts `sid` in `room`, leaving the call it was in, unless `room` is full; a full
    /// room leaves the socket where it was.
    pub fn join(&self, sid: Sid, member: Member, room: &RoomName) -> Result<Joined, RoomFull> {
        let mut calls = self.calls();
        let already = calls.call_of.get(&sid) == Some(room);
        if !already
            && calls
                .members
                .get(room)
                .is_some_and(|members| members.len() >= self.max.get())
        {
            return Err(RoomFull);
        }
        let left = if already { None } else { calls.remove(sid) };
        let members = calls.members.entry(room.clone()).or_default();
        let peers = members
            .iter()
            .filter(|(other, _)| *other != sid)
            .map(|(_, member)| member.clone())
            .collect();
        if !already {
            members.push((sid, member));
            calls.call_of.insert(sid, room.clone());
        }
        Ok(Joined {
            is_new: !already,
            peers,
            left,
        })
    }

    /// Takes `sid` out of its call; returns the call it was in.
    pub fn leave(&self, sid: Sid) -> Option<RoomName> {
        self.calls().remove(sid)
    }

    /// The call `sid` is in.
    pub fn room_of(&self, sid: Sid) -> Option<RoomName> {
        self.calls().call_of.get(&sid).cloned()
    }

    /// Whether `a` and `b` are two participants of one call.
    pub fn same_call(&self, a: Sid, b: Sid) -> bool {
        let calls = self.calls();
        a != b
            && calls
                .call_of
                .get(&a)
                .is_some_and(|room| calls.call_of.get(&b) == Some(room))
    }

    /// Every socket in a call, with its user.
    pub fn participants(&self) -> Vec<(Sid, UserId)> {
        let calls = self.calls();
        calls
            .members
            .values()
            .flatten()
            .map(|(sid, member)| (*sid, member.user.clone()))
            .collect()
    }

    pub fn census(&self) -> Census {
        let calls = self.calls();
        Census {
            calls: calls.members.len(),
            participants: calls.call_of.len(),
        }
    }
}

/// Why `call:join` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JoinRefused {
    InvalidPayload,
    InvalidRoom,
    RoomFull { max: usize },
    Banned { until_ms: u64 },
}

impl JoinRefused {
    fn code(self) -> &'static str {
        match self {
            Self::InvalidPayload => "invalid_payload",
            Self::InvalidRoom => "invalid_room",
            Self::RoomFull { .. } => "room_full",
            Self::Banned { .. } => "banned",
        }
    }

    fn message(self) -> String {
        match self {
            Self::InvalidPayload => "call:join takes { room } with the room's name".into(),
            Self::InvalidRoom => {
                "a room's name is 1 to 64 lower-case letters, digits and hyphens".into()
            }
            Self::RoomFull { max } => {
                format!("this call is full: it already has {max} participants")
            }
            Self::Banned { until_ms } => banned_message(until_ms),
        }
    }
}

fn banned_message(until_ms: u64) -> String {
    format!(
        "a moderator has blocked you from calls until {}",
        until_text(until_ms)
    )
}

/// Why a signal was not relayed. Each kind is reported to its sender once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalRefused {
    NotInCall,
    NotInRoom,
    InvalidPayload,
    TooLarge,
    RateLimited,
}

impl SignalRefused {
    /// Every kind, so metrics can show a zero for those that never happened.
    pub const ALL: [Self; 5] = [
        Self::NotInCall,
        Self::NotInRoom,
        Self::InvalidPayload,
        Self::TooLarge,
        Self::RateLimited,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::NotInCall => "not_in_call",
            Self::NotInRoom => "not_in_room",
            Self::InvalidPayload => "invalid_payload",
            Self::TooLarge => "signal_too_large",
            Self::RateLimited => "rate_limited",
        }
    }

    fn message(self) -> String {
        match self {
            Self::NotInCall => "join a call before sending signals".into(),
            Self::NotInRoom => "that connection is not one of the peers in your call".into(),
            Self::InvalidPayload => {
                "call:signal takes { to, data } with a peer's connection id and an object".into()
            }
            Self::TooLarge => {
                format!("a signal's data may be at most {MAX_SIGNAL_BYTES} bytes as JSON")
            }
            Self::RateLimited => "too many signals; extra ones are dropped".into(),
        }
    }

    /// One bit per kind, for [`ReportedRefusals`].
    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Which kinds of refused signal a socket has already been told about.
#[derive(Clone, Default)]
struct ReportedRefusals(Arc<AtomicU8>);

impl ReportedRefusals {
    /// True the first time a kind is reported.
    fn first_time(&self, refused: SignalRefused) -> bool {
        self.0.fetch_or(refused.bit(), Ordering::Relaxed) & refused.bit() == 0
    }
}

/// A signal accepted for relaying: its target and its data.
type Accepted = (Sid, Map<String, Value>);

/// One socket's signalling, kept in its extensions. Cloning shares it.
#[derive(Clone, Default)]
struct Signalling {
    /// Every attempt takes a token, so a flood of garbage is limited like one of signals.
    limit: SignalLimit,
    /// So that a flood of one kind of bad signal costs one `call:error`, not one each.
    reported: ReportedRefusals,
    /// Accepted signals in the order they came, waiting to be relayed.
    outbox: Arc<Mutex<VecDeque<Accepted>>>,
    /// Held while one signal is relayed, so that they go out in the outbox's order: an
    /// async mutex, because a relay awaits the adapter.
    relaying: Arc<tokio::sync::Mutex<()>>,
}

impl Signalling {
    fn outbox(&self) -> MutexGuard<'_, VecDeque<Accepted>> {
        self.outbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Relays the oldest signal waiting; each accepted signal is followed by one call.
    async fn relay_next<A: Adapter>(&self, socket: &SocketRef<A>, app: &App) {
        let _turn = self.relaying.lock().await;
        let Some((to, data)) = self.outbox().pop_front() else {
            return;
        };
        if !app.calls.same_call(socket.id, to) && !in_call_elsewhere(app, socket.id, to).await {
            refuse(socket, app, &self.reported, SignalRefused::NotInRoom);
            return;
        }
        let relayed = Relayed {
            from: socket.id.as_str(),
            data: &data,
        };
        match socket.to(to).emit("call:signal", &relayed).await {
            Ok(()) => {
                app.metrics.call_signals_relayed.inc();
            }
            Err(error) => tracing::debug!(%error, "a call signal could not be relayed"),
        }
    }
}

#[derive(Deserialize)]
struct JoinRequest {
    room: String,
}

#[derive(Deserialize)]
struct SignalRequest {
    to: String,
    data: Map<String, Value>,
}

#[derive(Serialize)]
struct Relayed<'a> {
    from: &'a str,
    data: &'a Map<String, Value>,
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
    let reply = match join(&socket, &app, request).await {
        Ok(reply) => reply,
        Err(refused) => json!({
            "ok": false,
            "error": { "code": refused.code(), "message": refused.message() },
        }),
    };
    if let Err(error) = ack.send(&reply) {
        tracing::debug!(%error, socket = %socket.id, "could not answer call:join");
    }
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
    let joined = match &app.cluster {
        None => app.calls.join(socket.id, me.clone(), &room),
        Some(cluster) => join_across(cluster, app, socket.id, &me, &room).await,
    };
    let joined = match joined {
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
        leave(socket, app).await;
    }
    // Likewise a ban made while this join was on its way: `end_banned_calls` may have
    // looked before this socket was in the call, and then this check sees the ban.
    if let Some(ban) = app.bans.of(&me.user, now_ms()) {
        leave(socket, app).await;
        return Err(JoinRefused::Banned {
            until_ms: ban.until,
        });
    }
    let ice_servers = app.ice.for_user(&me.user, unix_now());
    Ok(json!({ "ok": true, "you": me, "peers": joined.peers, "ice_servers": ice_servers }))
}

/// Joins `room` in a cluster: the call's place and its peers on every node are Redis's
/// to give; this node's own record follows. With Redis away, a node's calls are its own
/// sockets', as on a single node.
async fn join_across(
    cluster: &crate::cluster::Cluster,
    app: &App,
    sid: Sid,
    me: &Member,
    room: &RoomName,
) -> Result<Joined, RoomFull> {
    let leaving = app.calls.room_of(sid).filter(|current| current != room);
    let max = app.config.call_max.get();
    match crate::cluster::calls::join(cluster, room, leaving.as_ref(), me, max).await {
        Ok(Some(peers)) => {
            let here = app.calls.join(sid, me.clone(), room)?;
            Ok(Joined { peers, ..here })
        }
        Ok(None) => Err(RoomFull),
        Err(error) => {
            tracing::warn!(%error, "the other nodes' calls are unknown; joining with this node's only");
            app.calls.join(sid, me.clone(), room)
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Checks a signal and queues it as the event is read, then relays it. socketioxide runs
/// each event's handler in a task of its own, so two signals from one socket could overtake
/// each other, and an ICE candidate that arrives before its offer breaks the negotiation.
/// The body of this function runs before that task is spawned, in the order the events
/// came; the tasks then relay in queue order.
fn on_signal<A: Adapter>(
    socket: SocketRef<A>,
    State(app): State<App>,
    TryData(request): TryData<SignalRequest>,
) -> impl Future<Output = ()> + Send + 'static {
    let signalling = socket.extensions.get::<Signalling>().unwrap_or_else(|| {
        let made = Signalling::default();
        socket.extensions.insert(made.clone());
        made
    });
    let queued = match check_signal(&socket, &app, &signalling.limit, request) {
        Ok(accepted) => {
            signalling.outbox().push_back(accepted);
            Some(signalling)
        }
        Err(refused) => {
            refuse(&socket, &app, &signalling.reported, refused);
            None
        }
    };
    async move {
        if let Some(signalling) = queued {
            signalling.relay_next(&socket, &app).await;
        }
    }
}

/// Counts a refused signal, and tells its sender if it is the first of its kind.
fn refuse<A: Adapter>(
    socket: &SocketRef<A>,
    app: &App,
    reported: &ReportedRefusals,
    refused: SignalRefused,
) {
    app.metrics.call_signal_refused(refused.code());
    if reported.first_time(refused) {
        let error = json!({ "code": refused.code(), "message": refused.message() });
        if let Err(error) = socket.emit("call:error", &error) {
            tracing::debug!(%error, socket = %socket.id, "could not report a refused signal");
        }
    }
}

/// The target of a signal that may be relayed. Every attempt takes a token, valid or not,
/// so a flood of garbage is limited too.
fn check_signal<A: Adapter>(
    socket: &SocketRef<A>,
    app: &App,
    limit: &SignalLimit,
    request: Result<SignalRequest, socketioxide::ParserError>,
) -> Result<Accepted, SignalRefused> {
    if !limit.try_take() {
        return Err(SignalRefused::RateLimited);
    }
    let request = request.map_err(|_| SignalRefused::InvalidPayload)?;
    if json_longer_than(&request.data, MAX_SIGNAL_BYTES) {
        return Err(SignalRefused::TooLarge);
    }
    if app.calls.room_of(socket.id).is_none() {
        return Err(SignalRefused::NotInCall);
    }
    let to = request
        .to
        .parse::<Sid>()
        .map_err(|_| SignalRefused::NotInRoom)?;
    // In a cluster a target on another node is checked in Redis, when the signal's turn
    // to be relayed comes ([`Signalling::relay_next`]).
    if to == socket.id || (!app.calls.same_call(socket.id, to) && app.cluster.is_none()) {
        return Err(SignalRefused::NotInRoom);
    }
    Ok((to, request.data))
}

/// Whether `value` as compact JSON is longer than `limit` bytes; stops writing at the limit.
fn json_longer_than(value: &impl Serialize, limit: usize) -> bool {
    struct Budget(usize);
    impl io::Write for Budget {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0 = self
                .0
                .checked_sub(bytes.len())
                .ok_or_else(|| io::Error::other("over the limit"))?;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(Budget(limit), value).is_err()
}

/// Acked once the socket is out of its call, so a client can join again right after
/// without racing its own leave (socketioxide handles each event in its own task).
async fn on_leave<A: Adapter>(socket: SocketRef<A>, State(app): State<App>, ack: AckSender<A>) {
    leave(&socket, &app).await;
    if let Err(error) = ack.send(&json!({ "ok": true })) {
        tracing::debug!(%error, socket = %socket.id, "could not ack call:leave");
    }
}

/// Whether `to`, a connection of another node, is in the call of `from` (cluster mode).
async fn in_call_elsewhere(app: &App, from: Sid, to: Sid) -> bool {
    let (Some(cluster), Some(room)) = (&app.cluster, app.calls.room_of(from)) else {
        return false;
    };
    crate::cluster::calls::is_in(cluster, &room, to.as_str())
        .await
        .unwrap_or_else(|error| {
            tracing::debug!(%error, "a call signal's target could not be checked");
            false
        })
}

/// Takes a socket out of its call, on `call:leave` or disconnect, and tells the others.
pub async fn leave<A: Adapter>(socket: &SocketRef<A>, app: &App) {
    if let Some(room) = app.calls.leave(socket.id) {
        if let Some(cluster) = &app.cluster
            && let Err(error) =
                crate::cluster::calls::leave(cluster, &room, socket.id.as_str()).await
        {
            tracing::debug!(%error, "a call participant could not be taken out on the other nodes");
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str) -> Member {
        Member {
            id: name.into(),
            user: UserId::parse(&"u".repeat(20)).unwrap(),
            name: name.into(),
        }
    }

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).unwrap()
    }

    fn rooms(max: usize) -> CallRooms {
        CallRooms::new(NonZeroUsize::new(max).unwrap())
    }

    fn names(members: &[Member]) -> Vec<&str> {
        members.iter().map(|member| member.name.as_str()).collect()
    }

    #[test]
    fn room_names_are_short_lower_case_letters_digits_and_hyphens() {
        for good in ["a", "team-standup", "0-9", &"x".repeat(64)] {
            assert!(RoomName::parse(good).is_some(), "{good:?}");
        }
        for bad in ["", "Team", "a b", "a_b", "ä", "a/b", "a.b", &"x".repeat(65)] {
            assert!(RoomName::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_random_name_is_a_valid_one_of_80_bits_and_fresh() {
        let name = RoomName::random();
        assert_eq!(name.as_str().len(), 16, "10 bytes in base32");
        assert!(RoomName::parse(name.as_str()).is_some(), "{name:?}");
        assert_ne!(RoomName::random(), name);
    }

    #[test]
    fn a_call_room_is_never_a_connection_id() {
        let name = room("abcdefghijklmnop");
        assert!(name.broadcast_room().parse::<Sid>().is_err());
    }

    #[test]
    fn a_newcomer_gets_the_others_in_the_order_they_joined() {
        let calls = rooms(8);
        let (first, second, newcomer) = (Sid::new(), Sid::new(), Sid::new());
        calls.join(first, member("first"), &room("r")).unwrap();
        calls.join(second, member("second"), &room("r")).unwrap();
        calls
            .join(Sid::new(), member("elsewhere"), &room("other"))
            .unwrap();

        let joined = calls
            .join(newcomer, member("newcomer"), &room("r"))
            .unwrap();
        assert!(joined.is_new);
        assert_eq!(names(&joined.peers), ["first", "second"]);
        assert_eq!(joined.left, None);
        assert_eq!(
            calls.census(),
            Census {
                calls: 2,
                participants: 4
            }
        );
    }

    #[test]
    fn joining_the_same_call_twice_is_not_news() {
        let calls = rooms(2);
        let (sid, other) = (Sid::new(), Sid::new());
        calls.join(other, member("other"), &room("r")).unwrap();
        calls.join(sid, member("me"), &room("r")).unwrap();
        let again = calls.join(sid, member("me"), &room("r")).unwrap();
        assert!(
            !again.is_new,
            "not new, and not refused although the call is full"
        );
        assert_eq!(names(&again.peers), ["other"]);
        assert_eq!(calls.census().participants, 2);
    }

    #[test]
    fn a_full_call_refuses_and_the_socket_stays_where_it_was() {
        let calls = rooms(2);
        calls.join(Sid::new(), member("a"), &room("full")).unwrap();
        calls.join(Sid::new(), member("b"), &room("full")).unwrap();
        let sid = Sid::new();
        calls.join(sid, member("me"), &room("mine")).unwrap();
        assert_eq!(calls.join(sid, member("me"), &room("full")), Err(RoomFull));
        assert_eq!(calls.room_of(sid), Some(room("mine")));
    }

    #[test]
    fn joining_another_call_leaves_the_first() {
        let calls = rooms(8);
        let (sid, stays) = (Sid::new(), Sid::new());
        calls.join(sid, member("me"), &room("one")).unwrap();
        calls.join(stays, member("stays"), &room("one")).unwrap();
        let joined = calls.join(sid, member("me"), &room("two")).unwrap();
        assert_eq!(joined.left, Some(room("one")));
        assert!(joined.peers.is_empty());
        assert_eq!(calls.room_of(sid), Some(room("two")));
        assert!(!calls.same_call(sid, stays));
        let late = calls
            .join(Sid::new(), member("late"), &room("one"))
            .unwrap();
        assert_eq!(names(&late.peers), ["stays"]);
    }

    #[test]
    fn same_call_holds_only_for_two_participants_of_one_call() {
        let calls = rooms(8);
        let (a, b, c, outsider) = (Sid::new(), Sid::new(), Sid::new(), Sid::new());
        calls.join(a, member("a"), &room("r")).unwrap();
        calls.join(b, member("b"), &room("r")).unwrap();
        calls.join(c, member("c"), &room("s")).unwrap();
        assert!(calls.same_call(a, b));
        assert!(calls.same_call(b, a));
        assert!(!calls.same_call(a, c), "another call");
        assert!(!calls.same_call(a, outsider), "in no call");
        assert!(!calls.same_call(outsider, a));
        assert!(!calls.same_call(a, a), "yourself");
    }

    #[test]
    fn leaving_removes_the_participant_and_an_empty_call() {
        let calls = rooms(8);
        let (a, b) = (Sid::new(), Sid::new());
        calls.join(a, member("a"), &room("r")).unwrap();
        calls.join(b, member("b"), &room("r")).unwrap();
        assert_eq!(calls.leave(a), Some(room("r")));
        assert_eq!(calls.leave(a), None);
        assert!(!calls.same_call(a, b));
        assert_eq!(
            calls.census(),
            Census {
                calls: 1,
                participants: 1
            }
        );
        calls.leave(b);
        assert_eq!(
            calls.census(),
            Census {
                calls: 0,
                participants: 0
            }
        );
    }

    #[test]
    fn participants_are_everyone_in_every_call_with_their_user() {
        let calls = rooms(8);
        let (a, b, c) = (Sid::new(), Sid::new(), Sid::new());
        calls.join(a, member("a"), &room("r")).unwrap();
        calls.join(b, member("b"), &room("r")).unwrap();
        calls.join(c, member("c"), &room("s")).unwrap();
        let sids = |calls: &CallRooms| {
            let mut sids: Vec<String> = calls
                .participants()
                .into_iter()
                .map(|(sid, _)| sid.to_string())
                .collect();
            sids.sort();
            sids
        };
        let mut expected: Vec<String> = [a, b, c].iter().map(Sid::to_string).collect();
        expected.sort();
        assert_eq!(sids(&calls), expected);
        calls.leave(a);
        assert_eq!(sids(&calls).len(), 2);
        assert!(!sids(&calls).contains(&a.to_string()));
    }

    #[test]
    fn each_kind_of_refusal_is_reported_once() {
        let reported = ReportedRefusals::default();
        for kind in SignalRefused::ALL {
            assert!(reported.first_time(kind), "{kind:?}");
            assert!(!reported.first_time(kind), "{kind:?}");
        }
    }

    #[test]
    fn a_signal_is_measured_as_compact_json() {
        let data: Map<String, Value> =
            serde_json::from_value(json!({ "sdp": "x".repeat(100) })).unwrap();
        let length = serde_json::to_vec(&data).unwrap().len();
        assert!(!json_longer_than(&data, length));
        assert!(json_longer_than(&data, length - 1));
    }

    #[test]
    fn a_ban_says_until_when() {
        let message = JoinRefused::Banned {
            until_ms: 1_764_612_000_000,
        }
        .message();
        assert_eq!(
            message,
            "a moderator has blocked you from calls until 2025-12-01 18:00:00 UTC"
        );
    }
}
