//! What the live room passes around and checks, below both its local state and its Redis
//! side: the limits on a frame, what a viewer is told beside one, and why one is dropped.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::identity::UserId;
use crate::refusal::Refusal;

/// The Socket.IO room every participant joins.
pub const ROOM: &str = "live";
/// The largest live frame; the page sends 320×240 at quality 0.5, about 10–20 KB.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// The largest side of a live frame, in pixels.
pub const MAX_SIDE: usize = 640;
/// A participant silent this long has their cached frame dropped, so a newcomer is not
/// shown a frozen picture of someone who has gone.
pub const STALE_AFTER: Duration = Duration::from_secs(10);

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

impl Refusal for Dropped {
    fn code(&self) -> &'static str {
        match self {
            Self::NotJoined => "not_joined",
            Self::TooSoon => "rate_limited",
            Self::TooLarge => "frame_too_large",
            Self::NotJpeg => "bad_frame",
            Self::BadDimensions => "bad_dimensions",
            Self::Banned => "banned",
        }
    }

    fn message(&self) -> String {
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
}
