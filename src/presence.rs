//! Who is connected, and the coalesced `presence` broadcast (SPEC §2).
//!
//! Connects and disconnects only update the tally and wake the broadcaster; the broadcaster
//! sends at most one `presence` a second, with the tally as it is then. A thousand clients
//! connecting cost about one event each, not a million.
//!
//! In a cluster each node keeps the tally of its own sockets and, once a second, swaps it
//! for the other nodes' through Redis ([`crate::cluster::presence`]); what a socket is told
//! is the sum, and each node tells only its own sockets.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use serde::{Deserialize, Serialize};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::identity::UserId;

/// The shortest gap between two `presence` broadcasts.
const COALESCE: Duration = Duration::from_secs(1);
/// The most people one `presence` lists: the most recently arrived.
pub const MAX_PEOPLE: usize = 50;

/// The `presence` payload, also part of `welcome`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Online {
    /// Connections, however many per person.
    pub online: i64,
    pub people: Vec<Person>,
}

/// One entry of `people`: one per user, however many tabs it has open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    pub id: UserId,
    pub name: String,
}

/// One node's tally as the other nodes of a cluster read it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeTally {
    pub online: i64,
    /// The node's most recent arrivals, newest first.
    pub people: Vec<Arrival>,
}

/// A user and when (ms since the epoch) they last arrived on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arrival {
    pub id: UserId,
    pub name: String,
    pub since: u64,
}

struct Here {
    name: String,
    /// When it last arrived, for ordering arrivals across nodes.
    since: u64,
    /// Connections this user has open.
    tabs: usize,
    /// Its place in `Tally::arrivals`.
    arrival: u64,
}

#[derive(Default)]
struct Tally {
    here: HashMap<UserId, Here>,
    /// Arrival order → user, so the most recent arrivals are the last entries.
    arrivals: BTreeMap<u64, UserId>,
    next_arrival: u64,
}

impl Tally {
    /// The most recent arrivals, newest first.
    fn arrivals(&self) -> impl Iterator<Item = Arrival> + '_ {
        self.arrivals
            .values()
            .rev()
            .take(MAX_PEOPLE)
            .map(|id| Arrival {
                id: id.clone(),
                name: self.here[id].name.clone(),
                since: self.here[id].since,
            })
    }
}

/// `people` from this node's arrivals and the other nodes': each user once, at their most
/// recent arrival anywhere, newest first. `mine` and each of `others` are newest first.
fn merge_people(mine: Vec<Arrival>, others: &[NodeTally]) -> Vec<Person> {
    if others.is_empty() {
        return mine.into_iter().map(Arrival::into_person).collect();
    }
    let mut all: Vec<Arrival> = mine;
    all.extend(others.iter().flat_map(|node| node.people.iter().cloned()));
    // Newest first; a stable sort keeps this node's entry first on a tie.
    all.sort_by_key(|arrival| std::cmp::Reverse(arrival.since));
    let mut seen = std::collections::HashSet::new();
    all.into_iter()
        .filter(|arrival| seen.insert(arrival.id.clone()))
        .take(MAX_PEOPLE)
        .map(Arrival::into_person)
        .collect()
}

impl Arrival {
    fn into_person(self) -> Person {
        Person {
            id: self.id,
            name: self.name,
        }
    }
}

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
}

impl Presence {
    pub fn new(connections: Gauge) -> Self {
        Self {
            connections,
            tally: Arc::default(),
            changed: Arc::new(Notify::new()),
            others: Arc::default(),
        }
    }

    fn tally(&self) -> MutexGuard<'_, Tally> {
        // Losing the tally to a panic elsewhere would be worse than using it as it is.
        self.tally
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a new connection of `user` (arriving again, with `name`, if it already had
    /// one).
    pub fn connected(&self, user: &UserId, name: &str) {
        let mut tally = self.tally();
        tally.next_arrival += 1;
        let arrival = tally.next_arrival;
        let earlier = tally.here.get(user).map(|here| here.arrival);
        if let Some(earlier) = earlier {
            tally.arrivals.remove(&earlier);
        }
        tally.arrivals.insert(arrival, user.clone());
        let here = tally.here.entry(user.clone()).or_insert(Here {
            name: String::new(),
            since: 0,
            tabs: 0,
            arrival,
        });
        here.name = name.to_owned();
        here.since = crate::clip::now_ms();
        here.tabs += 1;
        here.arrival = arrival;
        self.connections.inc();
        drop(tally);
        self.changed.notify_one();
    }

    pub fn disconnected(&self, user: &UserId) {
        let mut tally = self.tally();
        if let Some(here) = tally.here.get_mut(user) {
            here.tabs -= 1;
            if here.tabs == 0 {
                let arrival = here.arrival;
                tally.here.remove(user);
                tally.arrivals.remove(&arrival);
            }
        }
        self.connections.dec();
        drop(tally);
        self.changed.notify_one();
    }

    /// Who is here, on every node.
    pub fn online(&self) -> Online {
        let mine: Vec<Arrival> = self.tally().arrivals().collect();
        let others = self
            .others
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Online {
            online: self.connections.get() + others.iter().map(|node| node.online).sum::<i64>(),
            people: merge_people(mine, &others),
        }
    }

    /// This node's own tally, for the other nodes.
    pub fn mine(&self) -> NodeTally {
        NodeTally {
            online: self.connections.get(),
            people: self.tally().arrivals().collect(),
        }
    }

    /// Takes the other nodes' tallies as read from Redis.
    pub fn set_others(&self, others: Vec<NodeTally>) {
        *self
            .others
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = others;
    }

    /// Broadcasts `presence` to this node's sockets when who is here has changed, at most
    /// once per `COALESCE`, until `shutdown` is cancelled. In a cluster it also swaps
    /// tallies with the other nodes every `COALESCE`, whether or not anything changed here.
    pub async fn broadcast<A: Adapter>(
        self,
        io: SocketIo<A>,
        cluster: Option<crate::cluster::Cluster>,
        shutdown: CancellationToken,
    ) {
        let mut last_sent = None;
        loop {
            let tick = async {
                match cluster {
                    Some(_) => tokio::time::sleep(Duration::ZERO).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.changed.notified() => {}
                () = tick => {}
            }
            if let Some(cluster) = &cluster {
                match crate::cluster::presence::exchange(cluster, &self.mine()).await {
                    Ok(others) => self.set_others(others),
                    // Alone until Redis is back: the others' counts would only go stale.
                    Err(error) => {
                        tracing::debug!(%error, "could not swap presence with the other nodes");
                        self.set_others(Vec::new());
                    }
                }
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
        if let Some(cluster) = &cluster {
            crate::cluster::presence::leave(cluster).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(online: &Online) -> Vec<&str> {
        online
            .people
            .iter()
            .map(|person| person.id.as_str())
            .collect()
    }

    #[test]
    fn people_lists_each_user_once_newest_first_and_counts_every_tab() {
        let presence = Presence::new(Gauge::default());
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
        let presence = Presence::new(Gauge::default());
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
