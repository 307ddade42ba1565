//! Why a call event was refused (SPEC §9): `call:join`'s answer, and the `call:error`
//! of a signal that was not relayed.

use crate::error::until_text;
use crate::refusal::Refusal;

/// The largest `data` of one signal, as JSON: an SDP offer with many codecs and
/// candidates is 5–10 KB.
pub const MAX_SIGNAL_BYTES: usize = 32 * 1024;

/// Why `call:join` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinRefused {
    InvalidPayload,
    InvalidRoom,
    RoomFull { max: usize },
    Banned { until_ms: u64 },
}

impl Refusal for JoinRefused {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidPayload => "invalid_payload",
            Self::InvalidRoom => "invalid_room",
            Self::RoomFull { .. } => "room_full",
            Self::Banned { .. } => "banned",
        }
    }

    fn message(&self) -> String {
        match *self {
            Self::InvalidPayload => "call:join takes { room } with the room's name".into(),
            Self::InvalidRoom => {
                "a room's name is 1 to 64 lower-case letters, digits and hyphens".into()
            }
            Self::RoomFull { max } => {
                format!("this call is full: it already has {max} participants")
            }
            Self::Banned { until_ms } => banned_message(until_ms),
        }
    }
}

pub fn banned_message(until_ms: u64) -> String {
    format!(
        "a moderator has blocked you from calls until {}",
        until_text(until_ms)
    )
}

/// Why a signal was not relayed. Each kind is reported to its sender once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalRefused {
    NotInCall,
    NotInRoom,
    InvalidPayload,
    TooLarge,
    RateLimited,
}

impl SignalRefused {
    /// Every kind, so metrics can show a zero for those that never happened.
    pub const ALL: [Self; 5] = [
        Self::NotInCall,
        Self::NotInRoom,
        Self::InvalidPayload,
        Self::TooLarge,
        Self::RateLimited,
    ];
}

impl Refusal for SignalRefused {
    fn code(&self) -> &'static str {
        match self {
            Self::NotInCall => "not_in_call",
            Self::NotInRoom => "not_in_room",
            Self::InvalidPayload => "invalid_payload",
            Self::TooLarge => "signal_too_large",
            Self::RateLimited => "rate_limited",
        }
    }

    fn message(&self) -> String {
        match self {
            Self::NotInCall => "join a call before sending signals".into(),
            Self::NotInRoom => "that connection is not one of the peers in your call".into(),
            Self::InvalidPayload => {
                "call:signal takes { to, data } with a peer's connection id and an object".into()
            }
            Self::TooLarge => {
                format!("a signal's data may be at most {MAX_SIGNAL_BYTES} bytes as JSON")
            }
            Self::RateLimited => "too many signals; extra ones are dropped".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ban_says_until_when() {
        let message = JoinRefused::Banned {
            until_ms: 1_764_612_000_000,
        }
        .message();
        assert_eq!(
            message,
            "a moderator has blocked you from calls until 2025-12-01 18:00:00 UTC"
        );
    }

    /// SPEC §9's codes, written out.
    #[test]
    fn every_signal_refusal_has_the_code_the_spec_gives_it() {
        let codes: Vec<&str> = SignalRefused::ALL.iter().map(Refusal::code).collect();
        assert_eq!(
            codes,
            [
                "not_in_call",
                "not_in_room",
                "invalid_payload",
                "signal_too_large",
                "rate_limited"
            ]
        );
    }
}
