//! The one error type a client can be told about (SPEC §5).
//!
//! Every failure of the clip path ends as a [`ClipError`]. Its [`code`](ClipError::code) is
//! the stable machine-readable string; its `Display` text is a sentence a person can act
//! on. Internal causes are logged where they happen and never sent.

use serde::Serialize;

/// Why a `message` was refused. The variants are exactly the codes of SPEC §5.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClipError {
    #[error("the message must be an object with a `frames` array and a `message` string")]
    InvalidPayload,
    #[error("a clip needs between 1 and {max} frames, got {got}")]
    BadFrameCount { got: usize, max: usize },
    #[error("{0}")]
    FrameTooLarge(String),
    #[error("{0}")]
    BadFrame(String),
    #[error("{0}")]
    BadDimensions(String),
    #[error("the text is {got} characters long; the limit is {max}")]
    TextTooLong { got: usize, max: usize },
    #[error("too many messages; wait a few seconds and try again")]
    RateLimited,
    #[error("the server is busy making other clips; try again")]
    Busy,
    #[error("the text contains words this server does not allow; please rephrase it")]
    Profanity,
    #[error("a moderator has blocked you from sending clips until {}", until_text(*until_ms))]
    Banned { until_ms: u64 },
    #[error("the clip store cannot be reached just now; nothing was stored; try again")]
    Unavailable,
    #[error("something went wrong on the server; try again")]
    Internal,
}

/// A time in milliseconds since the epoch as people read it: `2025-12-01 18:00:00 UTC`.
pub fn until_text(until_ms: u64) -> String {
    let until = std::time::UNIX_EPOCH + std::time::Duration::from_millis(until_ms);
    let rfc3339 = humantime::format_rfc3339_seconds(until).to_string();
    format!("{} UTC", rfc3339.replace('T', " ").trim_end_matches('Z'))
}

impl ClipError {
    /// The stable code clients and metrics key on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidPayload => "invalid_payload",
            Self::BadFrameCount { .. } => "bad_frame_count",
            Self::FrameTooLarge(_) => "frame_too_large",
            Self::BadFrame(_) => "bad_frame",
            Self::BadDimensions(_) => "bad_dimensions",
            Self::TextTooLong { .. } => "text_too_long",
            Self::RateLimited => "rate_limited",
            Self::Busy => "busy",
            Self::Profanity => "profanity",
            Self::Banned { .. } => "banned",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// Every code, so metrics can show a zero for codes that never happened.
    pub const CODES: [&'static str; 12] = [
        "invalid_payload",
        "bad_frame_count",
        "frame_too_large",
        "bad_frame",
        "bad_dimensions",
        "text_too_long",
        "rate_limited",
        "busy",
        "profanity",
        "banned",
        "unavailable",
        "internal",
    ];

    /// The `{ code, message }` object sent to the client.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code(),
            message: self.to_string(),
        }
    }
}

/// What a client is told about a failure.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    pub code: &'static str,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_lists_every_variant() {
        let all = [
            ClipError::InvalidPayload,
            ClipError::BadFrameCount { got: 0, max: 10 },
            ClipError::FrameTooLarge(String::new()),
            ClipError::BadFrame(String::new()),
            ClipError::BadDimensions(String::new()),
            ClipError::TextTooLong { got: 251, max: 250 },
            ClipError::RateLimited,
            ClipError::Busy,
            ClipError::Profanity,
            ClipError::Banned { until_ms: 0 },
            ClipError::Unavailable,
            ClipError::Internal,
        ];
        let codes: Vec<_> = all.iter().map(ClipError::code).collect();
        assert_eq!(codes, ClipError::CODES);
    }

    #[test]
    fn a_ban_says_until_when() {
        let message = ClipError::Banned {
            until_ms: 1_764_612_000_000,
        }
        .body()
        .message;
        assert_eq!(
            message,
            "a moderator has blocked you from sending clips until 2025-12-01 18:00:00 UTC"
        );
    }

    #[test]
    fn internal_says_nothing_about_the_cause() {
        assert_eq!(
            ClipError::Internal.body().message,
            "something went wrong on the server; try again"
        );
    }
}
