//! loopchat: a realtime chat where every message is a short looping clip recorded from
//! the sender's webcam, plus a live room where everyone sees everyone's camera at one
//! frame a second. The contract is SPEC.md; the README says how to run and test it.
//!
//! # Layout
//!
//! - [`config`]: the command-line flags and their environment fallbacks.
//! - [`secret`]: a setting that is never printed (a token, a key, a URL with a password).
//! - [`startup`]: what is taken before serving (ports, data dir, certificate) and its errors.
//! - [`app`]: the state every handler shares.
//! - [`server`]: wiring — the router with Socket.IO mounted, the listeners, shutdown.
//! - [`tls`]: HTTPS — the certificate, reloaded on SIGHUP, and the TLS listener.
//! - [`io_error`]: an I/O error as words in an operator's one-line message.
//! - [`redirect`]: the plain-HTTP listener that redirects to HTTPS.
//! - [`http`]: the HTTP routes: pages, clip GIFs, health, metrics, static files.
//! - [`admin`]: the moderation API under `/admin/` (only with `--admin-token`).
//! - [`chat`]: the chat events — connect, `message` → clip, `report`, disconnect.
//! - [`identity`]: a browser's token → its stable user id (HMAC, never stored or logged).
//! - [`moderation`]: bans in force, and the profanity filter.
//! - [`request`]: what a client sends, parsed into types that cannot be invalid.
//! - [`encode_queue`]: runs the encoder on worker threads behind a bounded queue.
//! - [`encoder`]: JPEG frames in, looping GIF out; pure and synchronous.
//! - [`store`]: the clip store (sled records, a file per GIF; group commit), with expiry
//!   checked on every read; reports and bans are kept there too.
//! - [`sweep`]: the background task that deletes expired clips.
//! - [`live`]: the live room — who is in it, their latest frames, the relay.
//! - [`call`]: the call rooms — who is in which call, and the WebRTC signalling relay.
//! - [`ice`]: the STUN/TURN servers call pages are given, with TURN credentials.
//! - [`jpeg`]: reading a JPEG's size from its headers.
//! - [`presence`]: who is here (count and people) and its coalesced broadcast.
//! - [`rate_limit`]: the per-socket token buckets for `message` and `call:signal`.
//! - [`names`]: display names, requested or random.
//! - [`clip`]: the `Clip` every client sees.
//! - [`error`]: the client-facing error codes.
//! - [`metrics`]: the Prometheus metrics.
//! - `fuzzing`: the inbound path as one function over bytes, for `fuzz/` (hidden).

pub mod admin;
pub mod app;
pub mod call;
pub mod chat;
pub mod clip;
pub mod cluster;
pub mod config;
pub mod encode_queue;
pub mod encoder;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod ice;
pub mod identity;
pub mod io_error;
pub mod jpeg;
pub mod live;
pub mod metrics;
pub mod moderation;
pub mod names;
pub mod presence;
pub mod rate_limit;
pub mod redirect;
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
