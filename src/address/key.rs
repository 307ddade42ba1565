//! A client address as it is kept and compared: a keyed hash, never the address itself
//! (SPEC §10, §13). Redis keys, bans in the store and Socket.IO rooms all name an address
//! by it, so nothing the server writes down says where anyone connects from.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::client::ClientAddress;
use crate::identity::Identities;

/// Hex characters kept of the HMAC: 128 bits, far beyond any collision among addresses.
const KEY_CHARS: usize = 32;
/// What every address's Socket.IO room name starts with.
const ROOM_PREFIX: &str = "address:";

/// The keyed hash of a [`ClientAddress`]: 32 lower-case hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AddressKey(String);

impl AddressKey {
    /// The key of `address`, with the id secret of `identities` (the same on every node).
    pub fn of(address: &ClientAddress, identities: &Identities) -> Self {
        let hash = identities.keyed_hash("client-address", &address.bytes());
        let mut hex = String::with_capacity(KEY_CHARS);
        for byte in &hash[..KEY_CHARS / 2] {
            hex.push_str(&format!("{byte:02x}"));
        }
        Self(hex)
    }

    /// The room every socket from this address is in, on any node: how a ban by address
    /// closes them all.
    pub fn room(&self) -> String {
        format!("{ROOM_PREFIX}{}", self.0)
    }

    /// The key a room of [`AddressKey::room`] names; `None` for any other room.
    pub fn from_room(room: &str) -> Option<Self> {
        room.strip_prefix(ROOM_PREFIX).and_then(Self::parse)
    }

    /// A key as [`AddressKey::as_str`] spells it, read back (from Redis).
    pub fn parse(hex: &str) -> Option<Self> {
        let well_formed = hex.len() == KEY_CHARS
            && hex
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
        well_formed.then(|| Self(hex.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AddressKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> ClientAddress {
        ClientAddress::of(text.parse().unwrap())
    }

    #[test]
    fn the_key_depends_on_the_secret_and_names_no_address() {
        let one = Identities::new(b"one secret");
        let other = Identities::new(b"another secret");
        let key = AddressKey::of(&address("192.0.2.1"), &one);
        assert_eq!(key, AddressKey::of(&address("192.0.2.1"), &one));
        assert_ne!(key, AddressKey::of(&address("192.0.2.2"), &one));
        assert_ne!(key, AddressKey::of(&address("192.0.2.1"), &other));
        assert_eq!(key.as_str().len(), KEY_CHARS);
        assert!(!key.as_str().contains("192"));
    }

    #[test]
    fn a_key_round_trips_through_its_room_and_nothing_else_parses() {
        let key = AddressKey::of(&address("2001:db8::1"), &Identities::new(b"s"));
        assert_eq!(AddressKey::from_room(&key.room()), Some(key));
        assert_eq!(AddressKey::from_room("user:abcdefghijklmnopqrst"), None);
        assert_eq!(AddressKey::from_room("address:xyz"), None);
    }
}
