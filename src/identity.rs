//! Who is who (SPEC §10): a browser's token becomes a user id that stays the same for that
//! browser and that nobody can take without the token.
//!
//! The page keeps a random token in `localStorage` and sends it in the handshake. The user
//! id is HMAC-SHA256 of the token, keyed with a secret only the server knows, in base32: so
//! the id can be shown to everyone while the token, which is what proves it, goes nowhere
//! (not in a log, the store, an event or `/metrics`).

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::secret::Secret;

/// Characters of base32 a user id keeps: 100 bits, plenty against collisions and guesses.
const USER_ID_CHARS: usize = 20;
/// Token lengths SPEC §10 accepts: base64url of 16 to 48 bytes.
const TOKEN_CHARS: std::ops::RangeInclusive<usize> = 22..=64;
/// Where the secret made on first start is kept, inside the data dir.
const SECRET_FILE: &str = "id-secret";
/// Random bytes in a secret made here.
const SECRET_BYTES: usize = 32;

const BASE32: base32::Alphabet = base32::Alphabet::Rfc4648Lower { padding: false };

/// A user id: 20 lower-case base32 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// A user id given by a client (the moderation API, a report), if it is spelt as the
    /// server spells them.
    pub fn parse(text: &str) -> Option<Self> {
        let well_formed = text.len() == USER_ID_CHARS
            && text
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || (b'2'..=b'7').contains(&byte));
        well_formed.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Socket.IO room every socket of this user is in, on any node: how a moderator's
    /// ban finds the addresses they are connected from.
    pub fn room(&self) -> String {
        format!("user:{}", self.0)
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        let mut encoded = base32::encode(BASE32, bytes);
        encoded.truncate(USER_ID_CHARS);
        Self(encoded)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Turns tokens into user ids; cheap to clone.
#[derive(Clone)]
pub struct Identities {
    /// The HMAC with the secret already keyed in, cloned for each token.
    keyed: Hmac<Sha256>,
}

impl Identities {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            keyed: Hmac::new_from_slice(secret).expect("HMAC takes a key of any length"),
        }
    }

    /// The secret from `--id-secret`, else the one kept in `data_dir`, made on first start.
    pub fn load(configured: Option<&Secret>, data_dir: &Path) -> io::Result<Self> {
        if let Some(secret) = configured {
            return Ok(Self::new(secret.expose().as_bytes()));
        }
        Ok(Self::new(&kept_secret(&data_dir.join(SECRET_FILE))?))
    }

    /// HMAC-SHA256 of `bytes` under `domain`, keyed with the id secret: for what must be
    /// recognised again but never kept in the clear (a client's address, SPEC §13). The
    /// domain keeps it from ever equalling a user id's hash of the same bytes.
    pub fn keyed_hash(&self, domain: &str, bytes: &[u8]) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(bytes);
        mac.finalize().into_bytes().into()
    }

    /// The user id for `token`, or a fresh random one when there is no valid token.
    pub fn user_id(&self, token: Option<&str>) -> UserId {
        match token.filter(|token| is_token(token)) {
            Some(token) => {
                let mut mac = self.keyed.clone();
                mac.update(token.as_bytes());
                UserId::from_bytes(&mac.finalize().into_bytes())
            }
            None => {
                let mut random = [0; 16];
                getrandom::fill(&mut random).expect("the OS has no random numbers to give");
                UserId::from_bytes(&random)
            }
        }
    }
}

/// base64url (no padding), 22 to 64 characters.
fn is_token(text: &str) -> bool {
    TOKEN_CHARS.contains(&text.len())
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// Reads the secret at `path`, or makes one there readable by this user only.
fn kept_secret(path: &Path) -> io::Result<Vec<u8>> {
    match fs::read(path) {
        Ok(secret) if !secret.is_empty() => return Ok(secret),
        Ok(_) => return Err(io::Error::other(format!("{} is empty", path.display()))),
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        Err(_) => {}
    }
    let mut secret = vec![0; SECRET_BYTES];
    getrandom::fill(&mut secret).map_err(|error| io::Error::other(error.to_string()))?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(&secret)?;
    file.sync_all()?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_id_is_hmac_sha256_in_base32_cut_to_20() {
        // RFC 4231 test case 2 (HMAC-SHA256 5bdcc146bf60754e…), in lower-case base32.
        let identities = Identities::new(b"Jefe");
        let mut mac = identities.keyed.clone();
        mac.update(b"what do ya want for nothing?");
        let digest = mac.finalize().into_bytes();
        assert_eq!(digest[..4], [0x5b, 0xdc, 0xc1, 0x46], "the RFC 4231 vector");
        assert_eq!(UserId::from_bytes(&digest).as_str(), "lpomcrv7mb2u42qeeqta");
    }

    #[test]
    fn a_token_gives_the_same_id_every_time_and_another_secret_another_id() {
        let token = "A".repeat(43);
        let identities = Identities::new(b"loopchat-test-secret");
        // Python: base64.b32encode(hmac.new(secret, token, sha256).digest()).lower()[:20]
        assert_eq!(
            identities.user_id(Some(&token)).as_str(),
            "6u3dm2ox7ojnm3bmc6n2"
        );
        assert_eq!(
            identities.user_id(Some(&token)),
            identities.user_id(Some(&token))
        );
        let other_secret = Identities::new(b"another-secret");
        assert_ne!(
            other_secret.user_id(Some(&token)),
            identities.user_id(Some(&token))
        );
    }

    #[test]
    fn an_invalid_or_missing_token_gets_a_fresh_id_each_time() {
        let identities = Identities::new(b"secret");
        for token in [
            None,
            Some("short"),
            Some(&*"A".repeat(65)),
            Some(&*format!("{}=", "A".repeat(42))),
        ] {
            let first = identities.user_id(token);
            assert_ne!(first, identities.user_id(token), "{token:?}");
            assert!(UserId::parse(first.as_str()).is_some(), "{first}");
        }
    }

    #[test]
    fn user_ids_parse_only_as_the_server_spells_them() {
        assert!(UserId::parse("lpomcrv7mb2u42qeeqta").is_some());
        for text in [
            "LPOMCRV7MB2U42QEEQTA",
            "lpomcrv7mb2u42qeeqt",
            "lpomcrv7mb2u42qeeqta1",
            "lpomcrv7mb2u42qeeqt0",
        ] {
            assert!(UserId::parse(text).is_none(), "{text}");
        }
    }

    #[test]
    fn the_secret_is_made_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let token = "b".repeat(43);
        let first = Identities::load(None, dir.path())
            .unwrap()
            .user_id(Some(&token));
        let again = Identities::load(None, dir.path())
            .unwrap()
            .user_id(Some(&token));
        assert_eq!(first, again, "the kept secret is reused");
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.path().join(SECRET_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        let configured = Secret::for_tests("configured");
        let other = Identities::load(Some(&configured), dir.path())
            .unwrap()
            .user_id(Some(&token));
        assert_ne!(first, other, "--id-secret wins over the kept one");
    }
}
