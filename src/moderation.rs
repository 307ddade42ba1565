//! Keeping people and words out (SPEC §10): bans and the profanity filter.
//!
//! Bans are checked on every clip and every live frame, so they are held in memory; every
//! change goes through the store first, so they outlive a restart. The moderation API
//! ([`crate::admin`]) is the only writer. In a cluster (SPEC §8) a change made on one node
//! is announced to the others, which read the bans again ([`crate::ban_sync`]).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use rustrict::CensorStr;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::address::key::AddressKey;
use crate::identity::UserId;

/// A user kept from sending clips, live frames and calls until `until`; with `addresses`,
/// every connection from those is refused too (SPEC §10, §13).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    pub user: UserId,
    /// Milliseconds since the Unix epoch.
    pub until: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The keyed hashes of the addresses banned with the user; never the addresses. Bans
    /// kept before address bans existed have none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<AddressKey>,
}

/// A ban as the moderation API shows it: whether it covers addresses, not which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BanView {
    pub user: UserId,
    pub until: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub address: bool,
}

impl From<Ban> for BanView {
    fn from(ban: Ban) -> Self {
        Self {
            address: !ban.addresses.is_empty(),
            user: ban.user,
            until: ban.until,
            reason: ban.reason,
        }
    }
}

/// The bans in force, in memory; cheap to clone, every clone is the same set.
#[derive(Clone, Default)]
pub struct Bans {
    /// A std lock: read on every clip and frame, written only by a moderator, never held
    /// across an await.
    by_user: Arc<RwLock<HashMap<UserId, Ban>>>,
    /// Marked on every change, for what must act on a new ban (a call in progress ends).
    changes: Arc<watch::Sender<()>>,
}

impl Bans {
    /// The bans read from the store at start; those whose time is up are left out.
    pub fn new(kept: Vec<Ban>, now_ms: u64) -> Self {
        let by_user = kept
            .into_iter()
            .filter(|ban| ban.until > now_ms)
            .map(|ban| (ban.user.clone(), ban))
            .collect();
        Self {
            by_user: Arc::new(RwLock::new(by_user)),
            changes: Arc::new(watch::Sender::new(())),
        }
    }

    /// Changes every time bans are put or replaced (after the change): await
    /// `changed()` on it, then read the bans.
    pub fn changes(&self) -> watch::Receiver<()> {
        self.changes.subscribe()
    }

    /// The ban that keeps `user` out at `now_ms`, if any.
    pub fn of(&self, user: &UserId, now_ms: u64) -> Option<Ban> {
        let by_user = self.by_user.read().unwrap_or_else(PoisonError::into_inner);
        by_user.get(user).filter(|ban| ban.until > now_ms).cloned()
    }

    /// The ban that keeps the address `key` out at `now_ms`, if any. Bans are few (a
    /// moderator makes each), so a look through all of them is cheaper than an index.
    pub fn of_address(&self, key: &AddressKey, now_ms: u64) -> Option<Ban> {
        let by_user = self.by_user.read().unwrap_or_else(PoisonError::into_inner);
        by_user
            .values()
            .find(|ban| ban.until > now_ms && ban.addresses.contains(key))
            .cloned()
    }

    /// Puts `ban` in force (after the store has kept it).
    pub fn put(&self, ban: Ban) {
        let mut by_user = self.by_user.write().unwrap_or_else(PoisonError::into_inner);
        by_user.insert(ban.user.clone(), ban);
        drop(by_user);
        self.changes.send_replace(());
    }

    /// Lifts the ban of `user` (after the store has forgotten it).
    pub fn lift(&self, user: &UserId) {
        let mut by_user = self.by_user.write().unwrap_or_else(PoisonError::into_inner);
        by_user.remove(user);
    }

    /// Replaces every ban with `kept` (the store's, as another node left them).
    pub fn replace(&self, kept: Vec<Ban>, now_ms: u64) {
        let fresh = Self::new(kept, now_ms);
        let fresh = std::mem::take(
            &mut *fresh
                .by_user
                .write()
                .unwrap_or_else(PoisonError::into_inner),
        );
        *self.by_user.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        self.changes.send_replace(());
    }

    /// Every ban in force at `now_ms`, the one that ends first first.
    pub fn in_force(&self, now_ms: u64) -> Vec<Ban> {
        let by_user = self.by_user.read().unwrap_or_else(PoisonError::into_inner);
        let mut bans: Vec<Ban> = by_user
            .values()
            .filter(|ban| ban.until > now_ms)
            .cloned()
            .collect();
        bans.sort_by(|a, b| a.until.cmp(&b.until).then_with(|| a.user.cmp(&b.user)));
        bans
    }
}

/// Whether `text` holds words unfit for a general audience: profane, offensive, sexual or
/// severely mean, by `rustrict`'s word lists and its handling of disguised spellings.
pub fn is_profane(text: &str) -> bool {
    text.is_inappropriate()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(letter: char) -> UserId {
        UserId::parse(&letter.to_string().repeat(20)).unwrap()
    }

    fn ban(letter: char, until: u64) -> Ban {
        Ban {
            user: user(letter),
            until,
            reason: None,
            addresses: Vec::new(),
        }
    }

    #[test]
    fn a_ban_by_address_keeps_the_address_out_until_its_time() {
        use crate::address::client::ClientAddress;
        use crate::identity::Identities;
        let identities = Identities::new(b"test");
        let key =
            |last: u8| AddressKey::of(&ClientAddress::of([192, 0, 2, last].into()), &identities);
        let bans = Bans::new(
            vec![
                Ban {
                    addresses: vec![key(1)],
                    ..ban('a', 2_000)
                },
                ban('b', 3_000),
            ],
            1_000,
        );
        assert_eq!(
            bans.of_address(&key(1), 1_500).map(|ban| ban.user),
            Some(user('a'))
        );
        assert!(bans.of_address(&key(2), 1_500).is_none());
        assert!(
            bans.of_address(&key(1), 2_000).is_none(),
            "over with the ban"
        );
        let shown =
            serde_json::to_value(BanView::from(bans.of(&user('a'), 1_500).unwrap())).unwrap();
        assert_eq!(shown["address"], true);
        assert!(!shown.to_string().contains(key(1).as_str()), "{shown}");
        bans.lift(&user('a'));
        assert!(
            bans.of_address(&key(1), 1_500).is_none(),
            "lifted with the user's ban"
        );
    }

    #[test]
    fn a_ban_holds_until_its_time_and_can_be_lifted() {
        let bans = Bans::new(vec![ban('a', 2_000), ban('b', 500)], 1_000);
        assert_eq!(bans.of(&user('a'), 1_999).map(|ban| ban.until), Some(2_000));
        assert!(bans.of(&user('a'), 2_000).is_none(), "over at its time");
        assert!(
            bans.of(&user('b'), 1_000).is_none(),
            "an expired ban is not loaded"
        );
        bans.put(ban('c', 5_000));
        assert_eq!(bans.in_force(1_000).len(), 2);
        bans.lift(&user('c'));
        assert!(bans.of(&user('c'), 1_000).is_none());
    }

    #[tokio::test]
    async fn putting_or_replacing_bans_is_announced_after_the_change() {
        let bans = Bans::default();
        let mut changes = bans.changes();
        bans.put(ban('a', 5_000));
        changes.changed().await.unwrap();
        assert!(bans.of(&user('a'), 1_000).is_some());
        bans.replace(vec![ban('b', 5_000)], 1_000);
        changes.changed().await.unwrap();
        assert!(bans.of(&user('b'), 1_000).is_some());
        assert!(!changes.has_changed().unwrap(), "one mark per change");
    }

    #[test]
    fn profanity_is_found_and_ordinary_text_is_not() {
        assert!(is_profane("what the fuck"));
        assert!(is_profane("you are a sh1t"), "a disguised spelling");
        assert!(!is_profane(
            "hello from the kitchen, the scunthorpe office says hi"
        ));
        assert!(!is_profane(""));
    }
}
