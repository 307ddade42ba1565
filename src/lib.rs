//! loopchat: a realtime chat where every message is a short looping clip recorded from
//! the sender's webcam, plus a live room where everyone sees everyone's camera at one
//! frame a second. The contract is SPEC.md; the README says how to run and test it.
//!
//! # Layout
//!
//! From the top down: every module uses only modules below it.
//!
//! - [`config`]: the command-line flags and their environment fallbacks.
//! - [`secret`]: a setting that is never printed (a token, a key, a URL with a password).
//! - [`startup`]: what is taken before serving (ports, data dir, certificate) and its errors.
//! - [`server`]: wiring — the router with Socket.IO mounted, the listeners, the background
//!   tasks, shutdown; the one place that chooses one node or a cluster.
//! - [`tls`]: HTTPS — the certificate, reloaded on SIGHUP, and the TLS listener.
//! - [`io_error`]: an I/O error as words in an operator's one-line message.
//! - [`redirect`]: the plain-HTTP listener that redirects to HTTPS.
//!
//! The handlers:
//! - [`events`]: the Socket.IO events — chat (connect, `message` → clip, `report`), the live
//!   room, the call rooms and their signalling.
//! - [`http`]: the HTTP routes: pages, clips' files (GIF, MP4 with byte ranges, poster),
//!   health, metrics, static files.
//! - [`headers`]: the response headers every listener sets (`nosniff`).
//! - [`admin`]: the moderation API under `/admin/` and the moderator's page at `/admin`
//!   (only with `--admin-token`).
//!
//! The state they share, [`app::App`], and below it each feature's state, one type each
//! that works the same on one node or many:
//! - [`store`]: the clips (sled records and each clip's files with group commit, or Redis),
//!   with expiry checked on every read; reports and bans are kept there too.
//! - [`presence`]: who is here, and its coalesced broadcast.
//! - [`live`]: the live room — who is in it, their latest frames.
//! - [`call`]: the call rooms — who is in which call.
//! - [`member`]: a participant of a room, as the others are told.
//!
//! Each of these keeps its Redis side beside its local one (`store/redis_store.rs`,
//! `presence/redis.rs`, `live/redis.rs`, `call/redis.rs`): a backend shares its feature's
//! types and rules, and a newcomer finds both in one place. [`cluster`] holds only what
//! they have in common: the connections and their heartbeat, the pub/sub under the
//! Socket.IO adapter, and which nodes are alive.
//!
//! Beside them:
//! - [`sweep`]: the background task that deletes expired clips.
//! - [`ban_sync`]: in a cluster, every node's bans kept the same as the store's.
//! - [`encode_queue`]: runs the encoder on worker threads behind a bounded queue.
//! - [`encoder`]: JPEG frames in, a looping GIF, an MP4 and a poster out; pure and
//!   synchronous.
//! - [`request`]: what a client sends, parsed into types that cannot be invalid.
//! - [`identity`]: a browser's token → its stable user id (HMAC, never stored or logged).
//! - [`moderation`]: bans in force, and the profanity filter.
//! - [`ice`]: the STUN/TURN servers call pages are given, with TURN credentials.
//! - [`rate_limit`]: the per-socket token buckets for `message` and `call:signal`.
//! - [`address`]: the limits per client address — connections, clips, reports, failed
//!   sign-ins — on one node or across nodes, and the keyed hash that names an address.
//! - [`metrics`]: the Prometheus metrics.
//! - [`refusal`]: the one shape of a refusal a client is told (code and message), the ack,
//!   and "report each kind once"; every feature's reasons take it.
//! - [`error`]: why a clip was refused, with the codes of SPEC §5.
//! - [`jpeg`]: reading a JPEG's size from its headers.
//! - [`names`]: display names, requested or random.
//! - [`clip`]: the `Clip` every client sees, and the files (`Rendition`) it is kept as.
//! - [`byte_range`]: which bytes of a file a `Range` request asks for.
//! - `fuzzing`: the inbound path as one function over bytes, for `fuzz/` (hidden).

pub mod address;
pub mod admin;
pub mod app;
pub mod ban_sync;
pub mod byte_range;
pub mod call;
pub mod clip;
pub mod cluster;
pub mod config;
pub mod encode_queue;
pub mod encoder;
pub mod error;
pub mod events;
#[doc(hidden)]
pub mod fuzzing;
pub mod headers;
pub mod http;
pub mod ice;
pub mod identity;
pub mod io_error;
pub mod jpeg;
pub mod live;
pub mod member;
pub mod metrics;
pub mod moderation;
pub mod names;
pub mod presence;
pub mod rate_limit;
pub mod redirect;
pub mod refusal;
pub mod request;
pub mod secret;
pub mod server;
pub mod startup;
pub mod store;
pub mod sweep;
pub mod tls;

pub use config::Config;
pub use server::run;
pub use startup::Listeners;
