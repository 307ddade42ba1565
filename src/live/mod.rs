//! The live room (SPEC §3): everyone in it sees everyone else's camera, one frame a
//! second.
//!
//! - [`frame`]: what a frame is allowed to be, what viewers are told with it, why one is
//!   dropped;
//! - [`local`]: this node's participants and their latest frames;
//! - [`redis`]: the other nodes' participants, in cluster mode (SPEC §8);
//! - [`room`]: [`room::LiveRoom`], the one type over both that the handlers use.
//!
//! The events that use them, which only check, relay and report, are
//! [`crate::events::live`].
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

pub mod frame;
pub mod local;
pub mod redis;
pub mod room;
