//! Stores made before the GIFs moved to files (see [`super::files`]) kept them in a
//! sled tree of their own. The first start of a newer server moves them out, before it
//! serves anything, so the rest of the store knows only the files.

use uuid::Uuid;

use super::StoreError;
use super::layout::Parts;
use crate::clip::Rendition;

/// Where stores made before the GIFs moved to files kept them.
pub(super) const LEGACY_GIF_TREE: &str = "gifs";
/// GIFs moved out of [`LEGACY_GIF_TREE`] per fsync, so an upgrade holds few in memory.
pub(super) const MIGRATION_BATCH: usize = 64;

/// Moves the GIFs of a store made before they lived in files out of sled, each one on
/// disk before the tree that held them is dropped; returns how many.
pub(super) fn move_to_files(parts: &Parts) -> Result<usize, StoreError> {
    let has_legacy = parts
        .db
        .tree_names()
        .iter()
        .any(|name| name == LEGACY_GIF_TREE.as_bytes());
    if !has_legacy {
        return Ok(0);
    }
    let legacy = parts.db.open_tree(LEGACY_GIF_TREE)?;
    let mut moved = 0;
    let mut batch = Vec::with_capacity(MIGRATION_BATCH);
    let mut entries = legacy.iter();
    loop {
        batch.clear();
        for entry in entries.by_ref().take(MIGRATION_BATCH) {
            let (key, gif) = entry?;
            if let Ok(key) = Uuid::from_slice(&key) {
                batch.push((key, gif));
            }
        }
        if batch.is_empty() {
            break;
        }
        let gifs: Vec<_> = batch
            .iter()
            .map(|(key, gif)| (*key, Rendition::Gif, gif.as_ref()))
            .collect();
        parts.files.write_durably(&gifs)?;
        moved += gifs.len();
    }
    drop(legacy);
    parts.db.drop_tree(LEGACY_GIF_TREE)?;
    parts.db.flush()?;
    Ok(moved)
}
