//! The Socket.IO events, one module per feature: free `async fn` handlers that take what
//! they need from the socket and [`crate::app::App`], check it, and hand the work to the
//! state below them. They never ask whether they run in a cluster: each feature's state
//! answers the same on one node or many.
//!
//! - [`admission`]: who may connect — an address that is banned or over its limits is
//!   refused in the handshake (SPEC §13);
//! - [`chat`]: a connection's greeting and replay, `message` → clip, `report`, disconnect;
//! - [`live`]: `live:join`, `live:frame`, `live:leave` (SPEC §3);
//! - [`call`]: `call:join`, `call:leave`, and a ban ending calls (SPEC §9, §10);
//! - [`call_signal`]: `call:signal`, checked and relayed in the order it was sent;
//! - [`membership`]: one socket's joins and leaves, one at a time.

pub mod admission;
pub mod call;
pub mod call_signal;
pub mod chat;
pub mod live;
pub mod membership;
