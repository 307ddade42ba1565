//! The call room (SPEC §9): WebRTC video calls, peer to peer. loopchat only introduces
//! the peers and carries their signalling (SDP descriptions and ICE candidates) over
//! Socket.IO; audio and video never pass through it.
//!
//! - [`room`]: a call's name, and what joining one tells;
//! - [`local`]: which call each of this node's sockets is in;
//! - [`redis`]: every node's participants, in cluster mode (SPEC §8);
//! - [`rooms`]: [`rooms::CallRooms`], the one type over both that the handlers use;
//! - [`refusals`]: why a join or a signal was refused.
//!
//! The events that use them are [`crate::events::call`] and [`crate::events::call_signal`].
//!
//! A signal reaches its target through a Socket.IO room named by the target's connection
//! id, which a socket joins on its first `call:join` (as socket.io does by itself for
//! every socket and socketioxide 0.18 does not): an adapter resolves a room on whichever
//! node its sockets are. Each call is the Socket.IO room `call:<name>`: the prefix keeps a
//! call's name from ever being taken for a connection id, whose alphabet includes every
//! character a name has. One socket's signals are relayed in the order it sent them (see
//! [`crate::events::call_signal`]).

pub mod local;
pub mod redis;
pub mod refusals;
pub mod room;
pub mod rooms;
