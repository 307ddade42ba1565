//! A call room's name, and what joining one tells: below the call rooms' local state,
//! their Redis side and the handlers, which all pass them around.

use crate::member::Member;

/// The name of a call room: 1 to 64 of `a-z`, `0-9` and `-`, so it reads well in a link.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomName(String);

impl RoomName {
    const MAX_CHARS: usize = 64;
    /// Random bytes in a fresh name: 80 bits, beyond guessing (SPEC §9 asks for 64).
    const RANDOM_BYTES: usize = 10;

    pub fn parse(text: &str) -> Option<Self> {
        let well_formed = (1..=Self::MAX_CHARS).contains(&text.len())
            && text
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
        well_formed.then(|| Self(text.to_owned()))
    }

    /// A fresh name nobody can guess: whoever has the link can join, so the link is the key.
    pub fn random() -> Self {
        let mut random = [0; Self::RANDOM_BYTES];
        getrandom::fill(&mut random).expect("the OS has no random numbers to give");
        Self(base32::encode(
            base32::Alphabet::Rfc4648Lower { padding: false },
            &random,
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Socket.IO room of this call.
    pub fn broadcast_room(&self) -> String {
        format!("call:{}", self.0)
    }
}

/// What joining a call did.
#[derive(Debug, PartialEq, Eq)]
pub struct Joined {
    /// False when the socket was already in this call (joining twice changes nothing).
    pub is_new: bool,
    /// Everyone else in the call, in the order they joined.
    pub peers: Vec<Member>,
    /// The call the socket was in before and has left for this one.
    pub left: Option<RoomName>,
}

/// The call is full: it already has `--call-max` participants.
#[derive(Debug, PartialEq, Eq)]
pub struct RoomFull;

/// How many calls are in progress and how many people are in them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Census {
    /// Calls with at least one participant.
    pub calls: usize,
    pub participants: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use socketioxide::socket::Sid;

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).unwrap()
    }

    #[test]
    fn room_names_are_short_lower_case_letters_digits_and_hyphens() {
        for good in ["a", "team-standup", "0-9", &"x".repeat(64)] {
            assert!(RoomName::parse(good).is_some(), "{good:?}");
        }
        for bad in ["", "Team", "a b", "a_b", "ä", "a/b", "a.b", &"x".repeat(65)] {
            assert!(RoomName::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_random_name_is_a_valid_one_of_80_bits_and_fresh() {
        let name = RoomName::random();
        assert_eq!(name.as_str().len(), 16, "10 bytes in base32");
        assert!(RoomName::parse(name.as_str()).is_some(), "{name:?}");
        assert_ne!(RoomName::random(), name);
    }

    #[test]
    fn a_call_room_is_never_a_connection_id() {
        let name = room("abcdefghijklmnop");
        assert!(name.broadcast_room().parse::<Sid>().is_err());
    }
}
