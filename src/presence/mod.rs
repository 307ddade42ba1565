//! Who is connected, and the coalesced `presence` broadcast (SPEC §2).
//!
//! Connects and disconnects only update the tally and wake the broadcaster; the broadcaster
//! sends at most one `presence` a second, with the tally as it is then. A thousand clients
//! connecting cost about one event each, not a million.
//!
//! [`Presence`] is the one type the handlers use, on one node or many. In a cluster each
//! node keeps the tally of its own sockets ([`tally`]) and, once a second, swaps it for the
//! other nodes' through Redis ([`redis`]); what a socket is told is the sum, and each node
//! tells only its own sockets.

pub mod redis;
pub mod tally;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use self::redis::RedisPresence;
use self::tally::{Arrival, NodeTally, Online, Tally, merge_people};
use crate::clip::now_ms;
use crate::identity::UserId;

/// The shortest gap between two `presence` broadcasts.
const COALESCE: Duration = Duration::from_secs(1);

/// Who is here, on this node and (in a cluster) every other. Cloning shares it.
#[derive(Clone)]
pub struct Presence {
    /// The `connections` metric doubles as the count, so the two can never disagree.
    connections: Gauge,
    /// A std mutex: every critical section is a few map operations and never awaits.
    tally: Arc<Mutex<Tally>>,
    /// Set by every change, taken by the broadcaster; a change while it sleeps is kept.
    changed: Arc<Notify>,
    /// The other nodes' tallies as last read (empty on a single node).
    others: Arc<Mutex<Vec<NodeTally>>>,
    /// Where the other nodes' tallies come from: none on a single node.
    redis: Option<RedisPresence>,
}

impl Presence {
    pub fn new(connections: Gauge, redis: Option<RedisPresence>) -> Self {
        Self {
            connections,
            tally: Arc::default(),
            changed: Arc::new(Notify::new()),
            others: Arc::default(),
            redis,
        }
    }

    fn tally(&self) -> MutexGuard<'_, Tally> {
        // Losing the tally to a panic elsewhere would be worse than using it as it is.
        self.tally
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn others(&self) -> MutexGuard<'_, Vec<NodeTally>> {
        self.others
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a new connection of `user` (arriving again, with `name`, if it already had
    /// one).
    pub fn connected(&self, user: &UserId, name: &str) {
        self.tally().arrive(user, name, now_ms());
        self.connections.inc();
        self.changed.notify_one();
    }

    pub fn disconnected(&self, user: &UserId) {
        self.tally().depart(user);
        self.connections.dec();
        self.changed.notify_one();
    }

    /// Who is here, on every node.
    pub fn online(&self) -> Online {
        let mine: Vec<Arrival> = self.tally().arrivals().collect();
        let others = self.others();
        Online {
            online: self.connections.get() + others.iter().map(|node| node.online).sum::<i64>(),
            people: merge_people(mine, &others),
        }
    }

    /// This node's own tally, for the other nodes.
    fn mine(&self) -> NodeTally {
        NodeTally {
            online: self.connections.get(),
            people: self.tally().arrivals().collect(),
        }
    }

    /// Reads the other nodes' tallies as they are now, not as of the last second's swap,
    /// so that a newcomer's count is right from its first event. Nothing to read alone.
    pub async fn read_others(&self) {
        let Some(redis) = &self.redis else {
            return;
        };
        match redis.others().await {
            Ok(others) => *self.others() = others,
            Err(error) => tracing::debug!(%error, "the other nodes' presence is unknown"),
        }
    }

    /// Broadcasts `presence` to this node's sockets when who is here has changed, at most
    /// once per `COALESCE`, until `shutdown` is cancelled. In a cluster it also swaps
    /// tallies with the other nodes every `COALESCE`, whether or not anything changed here.
    pub async fn broadcast<A: Adapter>(self, io: SocketIo<A>, shutdown: CancellationToken) {
        let mut last_sent = None;
        loop {
            let tick = async {
                match self.redis {
                    Some(_) => tokio::time::sleep(Duration::ZERO).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.changed.notified() => {}
                () = tick => {}
            }
            if let Some(redis) = &self.redis {
                let others = redis.exchange(&self.mine()).await.unwrap_or_else(|error| {
                    // Alone until Redis is back: the others' counts would only go stale.
                    tracing::debug!(%error, "could not swap presence with the other nodes");
                    Vec::new()
                });
                *self.others() = others;
            }
            let now = self.online();
            if last_sent.as_ref() != Some(&now) {
                if let Err(error) = io.local().emit("presence", &now).await {
                    tracing::warn!(%error, "broadcasting presence failed");
                }
                last_sent = Some(now);
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(COALESCE) => {}
            }
        }
        if let Some(redis) = &self.redis {
            redis.leave().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::tally::MAX_PEOPLE;

    fn ids(online: &Online) -> Vec<&str> {
        online
            .people
            .iter()
            .map(|person| person.id.as_str())
            .collect()
    }

    #[test]
    fn people_lists_each_user_once_newest_first_and_counts_every_tab() {
        let presence = Presence::new(Gauge::default(), None);
        let (amber, basil) = (
            UserId::parse("aaaaaaaaaaaaaaaaaaaa").unwrap(),
            UserId::parse("bbbbbbbbbbbbbbbbbbbb").unwrap(),
        );
        presence.connected(&amber, "amber");
        presence.connected(&basil, "basil");
        let both = presence.online();
        assert_eq!(ids(&both), [basil.as_str(), amber.as_str()]);
        presence.connected(&amber, "amber");
        let second_tab = presence.online();
        assert_eq!(second_tab.online, 3);
        assert_eq!(
            ids(&second_tab),
            [amber.as_str(), basil.as_str()],
            "amber arrived again"
        );

        presence.disconnected(&amber);
        assert_eq!(
            ids(&presence.online()),
            [amber.as_str(), basil.as_str()],
            "one tab is left"
        );
        presence.disconnected(&amber);
        let left = presence.online();
        assert_eq!(left.online, 1);
        assert_eq!(ids(&left), [basil.as_str()]);
    }

    #[test]
    fn people_keeps_the_most_recent_fifty() {
        let presence = Presence::new(Gauge::default(), None);
        let alphabet = "abcdefghijklmnopqrstuvwxyz234567";
        let users: Vec<UserId> = (0..MAX_PEOPLE + 5)
            .map(|n| {
                let letter = |k: usize| alphabet.as_bytes()[k % 32] as char;
                let text: String = std::iter::repeat_n(letter(n / 32), 10)
                    .chain(std::iter::repeat_n(letter(n), 10))
                    .collect();
                UserId::parse(&text).unwrap()
            })
            .collect();
        for user in &users {
            presence.connected(user, "someone");
        }
        let online = presence.online();
        assert_eq!(online.online, (MAX_PEOPLE + 5) as i64);
        assert_eq!(online.people.len(), MAX_PEOPLE);
        assert_eq!(
            online.people[0].id,
            users[MAX_PEOPLE + 4],
            "the newest first"
        );
        assert!(
            !online.people.iter().any(|person| person.id == users[0]),
            "the oldest dropped"
        );
    }
}
