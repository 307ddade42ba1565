//! Bans across nodes (SPEC §8, §10): every node checks its own copy of the bans in force
//! ([`Bans`]), and the store keeps them; a node that changes them says so on a pub/sub
//! channel, and every node reads them again. Above both the store and the cluster's
//! plumbing, which it joins.

use std::time::Duration;

use futures_util::StreamExt;
use socketioxide_redis::drivers::Driver;
use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::moderation::Bans;
use crate::store::Store;

/// The pub/sub channel on which a node says that the bans changed.
const BANS_CHANNEL: &str = "loopchat:bans-changed";
/// How often every node reads the bans again anyway, in case it missed a notice while
/// Redis was away.
const BANS_REFRESH: Duration = Duration::from_secs(5);

/// Tells every node that the bans changed.
pub async fn announce_change(cluster: &Cluster) {
    if let Err(error) = cluster
        .pubsub
        .publish(BANS_CHANNEL.to_owned(), Vec::new())
        .await
    {
        tracing::warn!(%error, "could not tell the other nodes about a ban");
    }
}

/// Keeps `bans` equal to the store's: read again on every notice from another node, when
/// Redis comes back, and every [`BANS_REFRESH`] in case a notice was lost.
pub async fn follow_bans(cluster: Cluster, store: Store, bans: Bans, stop: CancellationToken) {
    let mut notices = match cluster.pubsub.subscribe(BANS_CHANNEL.to_owned(), 16).await {
        Ok(notices) => Some(notices),
        Err(error) => {
            tracing::error!(%error, "cannot follow ban changes; reading them every {BANS_REFRESH:?} only");
            None
        }
    };
    loop {
        let notice = async {
            match notices.as_mut() {
                Some(stream) => stream.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            _ = notice => {}
            () = cluster.store_health.recovered.notified() => {}
            () = tokio::time::sleep(BANS_REFRESH) => {}
        }
        match store.bans().await {
            Ok(kept) => bans.replace(kept, crate::clip::now_ms()),
            Err(error) => tracing::debug!(%error, "could not read the bans"),
        }
    }
}
