//! Limits per client address (SPEC §13): one machine must not fill everyone's feed by
//! opening many sockets, each with a fresh identity.
//!
//! - [`client`]: who a connection comes from (the TCP peer, or behind a trusted reverse
//!   proxy the address it forwarded for), counted per IPv4 address or IPv6 /64;
//! - [`key`]: that address as it is kept — a keyed hash, never the address itself;
//! - [`limits`]: the limits the handlers ask, counted on this node or, in a cluster,
//!   across nodes in Redis (`redis.rs`), falling back to this node's count (`local.rs`)
//!   while Redis cannot be reached;
//! - [`rules`]: what both counts share — the windows, the sizes, a refusal's code.

pub mod client;
pub mod key;
pub mod limits;
mod local;
pub mod redis;
pub mod rules;
