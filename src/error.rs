//! Why a clip was refused (SPEC §5).
//!
//! Every failure of the clip path ends as a [`ClipError`], a [`Refusal`]: its code is the
//! stable machine-readable string; its `Display` text is a sentence a person can act on.
//! Internal causes are logged where they happen and never sent.

use crate::refusal::Refusal;

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

impl Refusal for ClipError {
    fn code(&self) -> &'static str {
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

    fn message(&self) -> String {
        self.to_string()
    }
}

impl ClipError {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes of SPEC §5, written out: each variant answers its own, and `CODES` (the
    /// zeros `/metrics` starts with) holds exactly these.
    #[test]
    fn every_variant_has_the_code_the_spec_gives_it() {
        let expected = [
            (ClipError::InvalidPayload, "invalid_payload"),
            (
                ClipError::BadFrameCount { got: 0, max: 10 },
                "bad_frame_count",
            ),
            (ClipError::FrameTooLarge(String::new()), "frame_too_large"),
            (ClipError::BadFrame(String::new()), "bad_frame"),
            (ClipError::BadDimensions(String::new()), "bad_dimensions"),
            (
                ClipError::TextTooLong { got: 251, max: 250 },
                "text_too_long",
            ),
            (ClipError::RateLimited, "rate_limited"),
            (ClipError::Busy, "busy"),
            (ClipError::Profanity, "profanity"),
            (ClipError::Banned { until_ms: 0 }, "banned"),
            (ClipError::Unavailable, "unavailable"),
            (ClipError::Internal, "internal"),
        ];
        for (error, code) in &expected {
            assert_eq!(error.code(), *code, "{error:?}");
        }
        let mut listed = ClipError::CODES.to_vec();
        let mut spec: Vec<&str> = expected.iter().map(|(_, code)| *code).collect();
        listed.sort_unstable();
        spec.sort_unstable();
        assert_eq!(listed, spec);
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
