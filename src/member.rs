//! Someone in a room — the live room or a call — as the others in it are told. Below both
//! rooms and their Redis sides, which all pass it around.

use serde::{Deserialize, Serialize};

use crate::identity::UserId;

/// A participant of the live room (`participants`, `live:joined`) or of a call (`peers`,
/// `call:joined`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The connection's socket id: what `live:left`, `live:frame`'s `from` and a call
    /// signal's `to` refer to.
    pub id: String,
    /// The user id of SPEC §10, the same for every tab of one browser.
    pub user: UserId,
    pub name: String,
}
