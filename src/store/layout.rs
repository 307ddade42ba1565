//! The embedded store's layout in `--data-dir`: its sled trees, how their keys are made,
//! and the folder of clip files beside them. The readers ([`super::embedded`]) and the one
//! writer ([`super::writer`]) both work on it.
//!
//! - sled tree `clips`:  key → the [`Clip`](crate::clip::Clip) as JSON (what replay reads);
//! - sled tree `expiry`: expires_at (big-endian ms) ‖ key → nothing, so the sweep finds
//!   what is due with one range scan instead of reading every clip;
//! - `clips/<key>.gif`, `.mp4`, `.jpg`: the clip's files (what `/clips/{key}.gif` and the
//!   others serve; see [`super::files`] for why they are not in sled);
//! - sled tree `reports`: clip key ‖ user id → nothing, one per user per clip (SPEC §10);
//! - sled tree `bans`: user id → the [`Ban`](crate::moderation::Ban) as JSON.
//!
//! Keys are UUIDv7, so key order is creation order and replay is a reverse scan.

use std::path::Path;

use uuid::Uuid;

use super::StoreError;
use super::files::ClipFolder;
use crate::identity::UserId;

/// The sled database, its trees and the folder of clip files; cheap to clone, every clone is the
/// same store.
#[derive(Clone)]
pub(super) struct Parts {
    pub(super) db: sled::Db,
    pub(super) clips: sled::Tree,
    pub(super) expiry: sled::Tree,
    pub(super) reports: sled::Tree,
    pub(super) bans: sled::Tree,
    pub(super) files: ClipFolder,
}

impl Parts {
    /// Opens (or creates) the sled database in `path`, its trees and the clip files' folder.
    pub(super) fn open(path: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(path)
            // sled's own background flusher would be a second flusher beside the writer,
            // and concurrent flushes are what deadlock sled 0.34. The writer flushes every
            // batch anyway, so nothing stays unflushed for long.
            .flush_every_ms(None)
            .open()?;
        Ok(Self {
            clips: db.open_tree("clips")?,
            expiry: db.open_tree("expiry")?,
            reports: db.open_tree("reports")?,
            bans: db.open_tree("bans")?,
            files: ClipFolder::open(path)?,
            db,
        })
    }
}

/// Clip key first, so one clip's reports are one prefix of the `reports` tree.
pub(super) fn report_key(key: Uuid, user: &UserId) -> Vec<u8> {
    let mut report = key.as_bytes().to_vec();
    report.extend_from_slice(user.as_str().as_bytes());
    report
}

/// Big-endian expiry first, so byte order in the `expiry` tree is expiry order.
pub(super) fn expiry_key(expires_at: u64, key: Uuid) -> [u8; 24] {
    let mut due = [0; 24];
    due[..8].copy_from_slice(&expires_at.to_be_bytes());
    due[8..].copy_from_slice(key.as_bytes());
    due
}

/// The clip key at the end of an `expiry` key.
pub(super) fn key_of(due_key: &[u8]) -> Option<Uuid> {
    Uuid::from_slice(due_key.get(8..)?).ok()
}
