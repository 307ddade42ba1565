//! The background task that deletes expired clips (SPEC §6), in the shape of
//! mini-redis's purge task: purge what is due, sleep until the next period or shutdown.
//!
//! Reads already hide expired clips; the sweep is what keeps the store's size bounded by
//! what the last `--clip-ttl` produced.

use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::clip::now_ms;
use crate::store::Store;

/// Runs until `shutdown` is cancelled.
pub async fn run(store: Store, every: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    // After a stall one sweep catches up with everything; a burst of sweeps would not
    // remove anything more.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        // The removals go through the store's writer, like every other write.
        match store.purge_expired(now_ms()).await {
            Ok(0) => {}
            Ok(removed) => tracing::debug!(removed, "swept expired clips"),
            Err(error) => tracing::error!(%error, "sweeping expired clips failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clip::{Author, Clip};
    use uuid::Uuid;

    fn expired_clip() -> Clip {
        let key = Uuid::now_v7();
        let created_at = now_ms() - 5_000;
        Clip {
            key,
            id: None,
            author: Author {
                id: crate::identity::UserId::parse("aaaaaaaaaaaaaaaaaaaa").unwrap(),
                name: "b".into(),
            },
            message: String::new(),
            clip: Clip::url(key),
            video: None,
            poster: None,
            width: 1,
            height: 1,
            frames: 1,
            delay_ms: 200,
            bytes: 3,
            video_bytes: None,
            created_at,
            expires_at: created_at + 1_000,
        }
    }

    #[tokio::test]
    async fn removes_expired_clips_and_stops_on_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), crate::metrics::CommitMetrics::default()).unwrap();
        store.insert(&expired_clip(), crate::store::ClipFiles { gif: b"GIF", video: b"MP4", poster: b"JPG" }).await.unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(
            store.clone(),
            Duration::from_millis(10),
            shutdown.clone(),
        ));

        let emptied = tokio::time::timeout(Duration::from_secs(10), async {
            while !store.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        assert!(
            emptied.await.is_ok(),
            "the sweep never removed the expired clip"
        );
        shutdown.cancel();
        task.await.unwrap();
    }
}
