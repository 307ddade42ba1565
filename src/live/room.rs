//! [`LiveRoom`]: the one type the live room's handlers use, on one node or many. This
//! node's own participants are always in [`LocalRoom`]; in a cluster, [`RedisLive`] adds
//! everyone else's for newcomers, and keeps this node's for theirs. With Redis away, a
//! node's room is its own sockets, as on a single node.

use std::time::Instant;

use bytes::Bytes;
use socketioxide::socket::Sid;

use super::frame::{Dropped, FrameMeta};
use super::local::{Joined, LocalRoom};
use super::redis::RedisLive;
use crate::member::Member;

/// Who is in the live room, and each one's latest frame. Cloning shares the room.
#[derive(Clone, Default)]
pub struct LiveRoom {
    local: LocalRoom,
    /// The other nodes' participants: none on a single node.
    redis: Option<RedisLive>,
}

impl LiveRoom {
    pub fn new(redis: Option<RedisLive>) -> Self {
        Self {
            local: LocalRoom::default(),
            redis,
        }
    }

    /// Puts `sid` in the room; the others are everyone else in it, on every node that can
    /// be reached, with their latest frames.
    pub async fn join(&self, sid: Sid, me: &Member) -> Joined {
        let mut joined = self.local.join(sid, me.clone(), Instant::now());
        if let Some(redis) = &self.redis {
            match redis.join(me).await {
                Ok(elsewhere) => {
                    joined.others.extend(elsewhere.members);
                    joined.frames.extend(elsewhere.frames);
                }
                Err(error) => {
                    tracing::debug!(%error, "the other nodes' live participants are unknown")
                }
            }
        }
        joined
    }

    /// Checks a frame and, if it is to be relayed, records it as the sender's latest.
    pub fn accept_frame(&self, sid: Sid, frame: &Bytes) -> Result<FrameMeta, Dropped> {
        self.local.accept_frame(sid, frame, Instant::now())
    }

    /// Keeps a relayed frame for the other nodes' newcomers (nothing to do alone).
    pub async fn keep_for_elsewhere(&self, meta: &FrameMeta, jpeg: &Bytes) {
        if let Some(redis) = &self.redis
            && let Err(error) = redis.keep_frame(meta, jpeg).await
        {
            tracing::debug!(%error, "a live frame could not be kept for other nodes' newcomers");
        }
    }

    /// Takes `sid` out of the room; returns whether it was in it.
    pub async fn leave(&self, sid: Sid) -> bool {
        if !self.local.leave(sid) {
            return false;
        }
        if let Some(redis) = &self.redis
            && let Err(error) = redis.leave(sid.as_str()).await
        {
            tracing::debug!(%error, "a live participant could not be taken out on the other nodes");
        }
        true
    }
}
