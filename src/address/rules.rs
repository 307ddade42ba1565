//! The rules of the limits per address (SPEC §13) that both counts share, the node's own
//! (`local.rs`) and the cluster's (`redis.rs`): the windows, the sizes, and how a refused
//! connection reads.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

/// The window of new connections: at most twice the open cap in any minute.
pub const CONNECTION_WINDOW: Duration = Duration::from_secs(60);
/// Failed sign-ins to the moderation API an address may make in [`ADMIN_WINDOW`]…
pub const ADMIN_FAILURES: u32 = 10;
/// …counted from the first; past them, it waits for the window to end.
pub const ADMIN_WINDOW: Duration = Duration::from_secs(60);

/// The limits as configured; `None` where 0 turned one off.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub max_connections: Option<NonZeroU32>,
    pub clips_per_minute: Option<NonZeroU32>,
}

impl Settings {
    pub fn new(max_connections: u32, clips_per_minute: u32) -> Self {
        Self {
            max_connections: NonZeroU32::new(max_connections),
            clips_per_minute: NonZeroU32::new(clips_per_minute),
        }
    }

    /// New connections an address may open in [`CONNECTION_WINDOW`]: room to reconnect
    /// every tab once, not to churn.
    pub fn new_connections(cap: NonZeroU32) -> u32 {
        cap.get().saturating_mul(2)
    }

    /// The clip (and report) bucket: half the minute's clips at once, refilled at the
    /// minute's rate. `None`: no limit.
    pub fn bucket(&self) -> Option<(NonZeroU32, Duration)> {
        let per_minute = self.clips_per_minute?;
        let burst = NonZeroU32::new(per_minute.get().div_ceil(2)).unwrap_or(NonZeroU32::MIN);
        Some((burst, Duration::from_secs(60) / per_minute.get()))
    }
}

/// Why a connection was refused in its handshake; what the client reads as
/// `connect_error`'s `err.message` (socketioxide sends a middleware's error as its
/// `Display`, and nothing else).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionRefused {
    TooManyConnections,
    Banned,
}

impl fmt::Display for ConnectionRefused {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::TooManyConnections => "too_many_connections",
            Self::Banned => "banned",
        })
    }
}
