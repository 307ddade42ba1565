//! [`CallRooms`]: the one type the call handlers use, on one node or many. This node's own
//! sockets' calls are always in [`LocalCalls`], which is what is checked first; in a
//! cluster, [`RedisCalls`] holds every node's, which is what decides a call's places and
//! its peers. With Redis away, a node's calls are its own sockets', as on a single node.

use std::num::NonZeroUsize;

use socketioxide::socket::Sid;

use super::local::LocalCalls;
use super::redis::RedisCalls;
use super::room::{Census, Joined, RoomFull, RoomName};
use crate::identity::UserId;
use crate::member::Member;

/// Who is in which call. Cloning shares the calls.
#[derive(Clone)]
pub struct CallRooms {
    /// `--call-max`.
    max: NonZeroUsize,
    local: LocalCalls,
    /// Every node's participants: none on a single node.
    redis: Option<RedisCalls>,
}

impl CallRooms {
    pub fn new(max: NonZeroUsize, redis: Option<RedisCalls>) -> Self {
        Self {
            max,
            local: LocalCalls::new(max),
            redis,
        }
    }

    /// Puts `sid` in `room`, leaving the call it was in, unless `room` is full; a full
    /// room leaves the socket where it was.
    pub async fn join(&self, sid: Sid, me: &Member, room: &RoomName) -> Result<Joined, RoomFull> {
        let Some(redis) = &self.redis else {
            return self.local.join(sid, me.clone(), room);
        };
        // The call's places and its peers on every node are Redis's to give; this node's
        // own record follows.
        let leaving = self.local.room_of(sid).filter(|current| current != room);
        match redis.join(room, leaving.as_ref(), me, self.max.get()).await {
            Ok(Some(peers)) => {
                let here = self.local.join(sid, me.clone(), room)?;
                Ok(Joined { peers, ..here })
            }
            Ok(None) => Err(RoomFull),
            Err(error) => {
                tracing::warn!(%error, "the other nodes' calls are unknown; joining with this node's only");
                self.local.join(sid, me.clone(), room)
            }
        }
    }

    /// Takes `sid` out of its call; returns the call it was in.
    pub async fn leave(&self, sid: Sid) -> Option<RoomName> {
        let room = self.local.leave(sid)?;
        if let Some(redis) = &self.redis
            && let Err(error) = redis.leave(&room, sid.as_str()).await
        {
            tracing::debug!(%error, "a call participant could not be taken out on the other nodes");
        }
        Some(room)
    }

    /// The call `sid` is in.
    pub fn room_of(&self, sid: Sid) -> Option<RoomName> {
        self.local.room_of(sid)
    }

    /// Whether `to` may be a peer of `from`, as far as can be told at once: another
    /// socket of `from`'s call on this node, or, in a cluster, any other socket, which
    /// [`Self::are_peers`] checks when its signal's turn to be relayed comes.
    pub fn may_be_peers(&self, from: Sid, to: Sid) -> bool {
        from != to && (self.redis.is_some() || self.local.same_call(from, to))
    }

    /// Whether `from` and `to` are two participants of one call, on whichever node.
    pub async fn are_peers(&self, from: Sid, to: Sid) -> bool {
        if self.local.same_call(from, to) {
            return true;
        }
        let (Some(redis), Some(room)) = (&self.redis, self.local.room_of(from)) else {
            return false;
        };
        redis
            .is_in(&room, to.as_str())
            .await
            .unwrap_or_else(|error| {
                tracing::debug!(%error, "a call signal's target could not be checked");
                false
            })
    }

    /// Every socket of this node in a call, with its user.
    pub fn participants(&self) -> Vec<(Sid, UserId)> {
        self.local.participants()
    }

    /// This node's calls and participants.
    pub fn census(&self) -> Census {
        self.local.census()
    }
}
