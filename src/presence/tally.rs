//! Who is here, as data: this node's tally of its own connections, and how the `people`
//! of `presence` are merged from every node's. No I/O and no clock but what is passed in.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::identity::UserId;

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

/// This node's connections, by user.
#[derive(Default)]
pub(super) struct Tally {
    here: HashMap<UserId, Here>,
    /// Arrival order → user, so the most recent arrivals are the last entries.
    arrivals: BTreeMap<u64, UserId>,
    next_arrival: u64,
}

impl Tally {
    /// Counts a new connection of `user` (arriving again, with `name`, if it already had
    /// one) at `now_ms`.
    pub(super) fn arrive(&mut self, user: &UserId, name: &str, now_ms: u64) {
        self.next_arrival += 1;
        let arrival = self.next_arrival;
        if let Some(earlier) = self.here.get(user).map(|here| here.arrival) {
            self.arrivals.remove(&earlier);
        }
        self.arrivals.insert(arrival, user.clone());
        let here = self.here.entry(user.clone()).or_insert(Here {
            name: String::new(),
            since: 0,
            tabs: 0,
            arrival,
        });
        here.name = name.to_owned();
        here.since = now_ms;
        here.tabs += 1;
        here.arrival = arrival;
    }

    /// Counts a closed connection of `user`; its last one takes it out.
    pub(super) fn depart(&mut self, user: &UserId) {
        if let Some(here) = self.here.get_mut(user) {
            here.tabs -= 1;
            if here.tabs == 0 {
                let arrival = here.arrival;
                self.here.remove(user);
                self.arrivals.remove(&arrival);
            }
        }
    }

    /// The most recent arrivals, newest first.
    pub(super) fn arrivals(&self) -> impl Iterator<Item = Arrival> + '_ {
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
pub(super) fn merge_people(mine: Vec<Arrival>, others: &[NodeTally]) -> Vec<Person> {
    if others.is_empty() {
        return mine.into_iter().map(Arrival::into_person).collect();
    }
    let mut all: Vec<Arrival> = mine;
    all.extend(others.iter().flat_map(|node| node.people.iter().cloned()));
    // Newest first; a stable sort keeps this node's entry first on a tie.
    all.sort_by_key(|arrival| std::cmp::Reverse(arrival.since));
    let mut seen = HashSet::new();
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
