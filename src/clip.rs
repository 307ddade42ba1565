//! A stored clip as every client sees it (SPEC §2 `Clip`).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::identity::UserId;

/// Who sent a clip, and who a socket is. The id is the user id the server derived from the
/// browser's token (SPEC §10), so nobody can post as someone else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    pub id: UserId,
    pub name: String,
}

/// The description of one clip: sent in `messageack`, `message` and the replay, and kept
/// in the store beside the GIF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clip {
    /// Time-ordered (UUIDv7), so the store's key order is creation order.
    pub key: Uuid,
    /// The sender's own correlation id, echoed back.
    pub id: Option<String>,
    pub author: Author,
    /// Plain text, never HTML.
    pub message: String,
    /// Where the GIF is served: `/clips/<key>.gif`.
    pub clip: String,
    /// Where the MP4 is served: `/clips/<key>.mp4` (SPEC §12). Null for a clip stored
    /// before clips had videos; such a record has no field at all, hence the default.
    #[serde(default)]
    pub video: Option<String>,
    /// Where the first frame is served as a JPEG: `/clips/<key>.jpg`; null like `video`.
    #[serde(default)]
    pub poster: Option<String>,
    pub width: u16,
    pub height: u16,
    pub frames: usize,
    pub delay_ms: u64,
    pub bytes: usize,
    /// The MP4's size; null like `video`.
    #[serde(default)]
    pub video_bytes: Option<usize>,
    /// Milliseconds since the Unix epoch.
    pub created_at: u64,
    /// Milliseconds since the Unix epoch; the clip is gone from then on.
    pub expires_at: u64,
}

impl Clip {
    pub fn url(key: Uuid) -> String {
        Rendition::Gif.url(key)
    }

    pub fn video_url(key: Uuid) -> String {
        Rendition::Video.url(key)
    }

    pub fn poster_url(key: Uuid) -> String {
        Rendition::Poster.url(key)
    }

    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at <= now_ms
    }

    /// Whole seconds until the clip expires, for `Cache-Control: max-age`.
    pub fn seconds_left(&self, now_ms: u64) -> u64 {
        self.expires_at.saturating_sub(now_ms) / 1000
    }
}

/// One of the files a clip is kept and served as (SPEC §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rendition {
    /// The looping GIF: what "Save GIF", old clients and the fallback use.
    Gif,
    /// H.264 in an MP4: what the pages play.
    Video,
    /// The first frame as a JPEG: the video's poster, and the still for reduced motion.
    Poster,
}

impl Rendition {
    pub const ALL: [Self; 3] = [Self::Gif, Self::Video, Self::Poster];

    /// The file name extension it is served and kept under.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Gif => "gif",
            Self::Video => "mp4",
            Self::Poster => "jpg",
        }
    }

    pub fn from_extension(extension: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|rendition| rendition.extension() == extension)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Gif => "image/gif",
            Self::Video => "video/mp4",
            Self::Poster => "image/jpeg",
        }
    }

    pub fn url(self, key: Uuid) -> String {
        format!("/clips/{key}.{}", self.extension())
    }

    /// Whether `clip` has this file: clips stored before SPEC §12 have only the GIF.
    pub fn belongs_to(self, clip: &Clip) -> bool {
        match self {
            Self::Gif => true,
            Self::Video => clip.video.is_some(),
            Self::Poster => clip.poster.is_some(),
        }
    }
}

/// Milliseconds since the Unix epoch, the unit of every timestamp clients see.
pub fn now_ms() -> u64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}
