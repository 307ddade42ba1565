//! The call rooms on this node: which call each of this node's sockets is in. No I/O.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};

use socketioxide::socket::Sid;

use super::room::{Census, Joined, RoomFull, RoomName};
use crate::identity::UserId;
use crate::member::Member;

#[derive(Default)]
struct Calls {
    /// Each call's participants, in the order they joined; a call with nobody is removed.
    members: HashMap<RoomName, Vec<(Sid, Member)>>,
    /// The call each socket is in: at most one.
    call_of: HashMap<Sid, RoomName>,
}

impl Calls {
    fn remove(&mut self, sid: Sid) -> Option<RoomName> {
        let room = self.call_of.remove(&sid)?;
        if let Some(members) = self.members.get_mut(&room) {
            members.retain(|(member, _)| *member != sid);
            if members.is_empty() {
                self.members.remove(&room);
            }
        }
        Some(room)
    }
}

/// Who of this node's sockets is in which call. Cloning shares the calls.
#[derive(Clone)]
pub struct LocalCalls {
    /// `--call-max`.
    max: NonZeroUsize,
    /// A std mutex: every critical section is a few map operations and never awaits.
    calls: Arc<Mutex<Calls>>,
}

impl LocalCalls {
    pub fn new(max: NonZeroUsize) -> Self {
        Self {
            max,
            calls: Arc::default(),
        }
    }

    fn calls(&self) -> MutexGuard<'_, Calls> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing the calls, so a poisoned lock is used as is.
        self.calls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Puts `sid` in `room`, leaving the call it was in, unless `room` is full; a full
    /// room leaves the socket where it was.
    pub fn join(&self, sid: Sid, member: Member, room: &RoomName) -> Result<Joined, RoomFull> {
        let mut calls = self.calls();
        let already = calls.call_of.get(&sid) == Some(room);
        if !already
            && calls
                .members
                .get(room)
                .is_some_and(|members| members.len() >= self.max.get())
        {
            return Err(RoomFull);
        }
        let left = if already { None } else { calls.remove(sid) };
        let members = calls.members.entry(room.clone()).or_default();
        let peers = members
            .iter()
            .filter(|(other, _)| *other != sid)
            .map(|(_, member)| member.clone())
            .collect();
        if !already {
            members.push((sid, member));
            calls.call_of.insert(sid, room.clone());
        }
        Ok(Joined {
            is_new: !already,
            peers,
            left,
        })
    }

    /// Takes `sid` out of its call; returns the call it was in.
    pub fn leave(&self, sid: Sid) -> Option<RoomName> {
        self.calls().remove(sid)
    }

    /// The call `sid` is in.
    pub fn room_of(&self, sid: Sid) -> Option<RoomName> {
        self.calls().call_of.get(&sid).cloned()
    }

    /// Whether `a` and `b` are two participants of one call.
    pub fn same_call(&self, a: Sid, b: Sid) -> bool {
        let calls = self.calls();
        a != b
            && calls
                .call_of
                .get(&a)
                .is_some_and(|room| calls.call_of.get(&b) == Some(room))
    }

    /// Every socket in a call, with its user.
    pub fn participants(&self) -> Vec<(Sid, UserId)> {
        let calls = self.calls();
        calls
            .members
            .values()
            .flatten()
            .map(|(sid, member)| (*sid, member.user.clone()))
            .collect()
    }

    pub fn census(&self) -> Census {
        let calls = self.calls();
        Census {
            calls: calls.members.len(),
            participants: calls.call_of.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str) -> Member {
        Member {
            id: name.into(),
            user: UserId::parse(&"u".repeat(20)).unwrap(),
            name: name.into(),
        }
    }

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).unwrap()
    }

    fn rooms(max: usize) -> LocalCalls {
        LocalCalls::new(NonZeroUsize::new(max).unwrap())
    }

    fn names(members: &[Member]) -> Vec<&str> {
        members.iter().map(|member| member.name.as_str()).collect()
    }

    #[test]
    fn a_newcomer_gets_the_others_in_the_order_they_joined() {
        let calls = rooms(8);
        let (first, second, newcomer) = (Sid::new(), Sid::new(), Sid::new());
        calls.join(first, member("first"), &room("r")).unwrap();
        calls.join(second, member("second"), &room("r")).unwrap();
        calls
            .join(Sid::new(), member("elsewhere"), &room("other"))
            .unwrap();

        let joined = calls
            .join(newcomer, member("newcomer"), &room("r"))
            .unwrap();
        assert!(joined.is_new);
        assert_eq!(names(&joined.peers), ["first", "second"]);
        assert_eq!(joined.left, None);
        assert_eq!(
            calls.census(),
            Census {
                calls: 2,
                participants: 4
            }
        );
    }

    #[test]
    fn joining_the_same_call_twice_is_not_news() {
        let calls = rooms(2);
        let (sid, other) = (Sid::new(), Sid::new());
        calls.join(other, member("other"), &room("r")).unwrap();
        calls.join(sid, member("me"), &room("r")).unwrap();
        let again = calls.join(sid, member("me"), &room("r")).unwrap();
        assert!(
            !again.is_new,
            "not new, and not refused although the call is full"
        );
        assert_eq!(names(&again.peers), ["other"]);
        assert_eq!(calls.census().participants, 2);
    }

    #[test]
    fn a_full_call_refuses_and_the_socket_stays_where_it_was() {
        let calls = rooms(2);
        calls.join(Sid::new(), member("a"), &room("full")).unwrap();
        calls.join(Sid::new(), member("b"), &room("full")).unwrap();
        let sid = Sid::new();
        calls.join(sid, member("me"), &room("mine")).unwrap();
        assert_eq!(calls.join(sid, member("me"), &room("full")), Err(RoomFull));
        assert_eq!(calls.room_of(sid), Some(room("mine")));
    }

    #[test]
    fn joining_another_call_leaves_the_first() {
        let calls = rooms(8);
        let (sid, stays) = (Sid::new(), Sid::new());
        calls.join(sid, member("me"), &room("one")).unwrap();
        calls.join(stays, member("stays"), &room("one")).unwrap();
        let joined = calls.join(sid, member("me"), &room("two")).unwrap();
        assert_eq!(joined.left, Some(room("one")));
        assert!(joined.peers.is_empty());
        assert_eq!(calls.room_of(sid), Some(room("two")));
        assert!(!calls.same_call(sid, stays));
        let late = calls
            .join(Sid::new(), member("late"), &room("one"))
            .unwrap();
        assert_eq!(names(&late.peers), ["stays"]);
    }

    #[test]
    fn same_call_holds_only_for_two_participants_of_one_call() {
        let calls = rooms(8);
        let (a, b, c, outsider) = (Sid::new(), Sid::new(), Sid::new(), Sid::new());
        calls.join(a, member("a"), &room("r")).unwrap();
        calls.join(b, member("b"), &room("r")).unwrap();
        calls.join(c, member("c"), &room("s")).unwrap();
        assert!(calls.same_call(a, b));
        assert!(calls.same_call(b, a));
        assert!(!calls.same_call(a, c), "another call");
        assert!(!calls.same_call(a, outsider), "in no call");
        assert!(!calls.same_call(outsider, a));
        assert!(!calls.same_call(a, a), "yourself");
    }

    #[test]
    fn leaving_removes_the_participant_and_an_empty_call() {
        let calls = rooms(8);
        let (a, b) = (Sid::new(), Sid::new());
        calls.join(a, member("a"), &room("r")).unwrap();
        calls.join(b, member("b"), &room("r")).unwrap();
        assert_eq!(calls.leave(a), Some(room("r")));
        assert_eq!(calls.leave(a), None);
        assert!(!calls.same_call(a, b));
        assert_eq!(
            calls.census(),
            Census {
                calls: 1,
                participants: 1
            }
        );
        calls.leave(b);
        assert_eq!(
            calls.census(),
            Census {
                calls: 0,
                participants: 0
            }
        );
    }

    #[test]
    fn participants_are_everyone_in_every_call_with_their_user() {
        let calls = rooms(8);
        let (a, b, c) = (Sid::new(), Sid::new(), Sid::new());
        calls.join(a, member("a"), &room("r")).unwrap();
        calls.join(b, member("b"), &room("r")).unwrap();
        calls.join(c, member("c"), &room("s")).unwrap();
        let sids = |calls: &LocalCalls| {
            let mut sids: Vec<String> = calls
                .participants()
                .into_iter()
                .map(|(sid, _)| sid.to_string())
                .collect();
            sids.sort();
            sids
        };
        let mut expected: Vec<String> = [a, b, c].iter().map(Sid::to_string).collect();
        expected.sort();
        assert_eq!(sids(&calls), expected);
        calls.leave(a);
        assert_eq!(sids(&calls).len(), 2);
        assert!(!sids(&calls).contains(&a.to_string()));
    }
}
