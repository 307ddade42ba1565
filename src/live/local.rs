//! The live room on this node: who of this node's sockets is in it, and each one's latest
//! frame. No I/O: the clock is passed in, so the tests can move it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use socketioxide::socket::Sid;

use super::frame::{Dropped, FrameMeta, MAX_FRAME_BYTES, MAX_SIDE, STALE_AFTER};
use crate::clip::now_ms;
use crate::jpeg;
use crate::member::Member;

/// Frames closer together than this are dropped: the room is one frame a second, with
/// some slack for timer jitter in the sender's browser.
const MIN_GAP: Duration = Duration::from_millis(900);

struct Participant {
    member: Member,
    /// Relayed frames so far; the next one gets `seq + 1`.
    seq: u64,
    last_relayed: Option<Instant>,
    latest: Option<CachedFrame>,
}

struct CachedFrame {
    meta: FrameMeta,
    jpeg: Bytes,
    received: Instant,
}

/// What a newcomer is told when joining.
pub struct Joined {
    /// False when the socket was already in the room (joining twice changes nothing).
    pub is_new: bool,
    /// Everyone else in the room.
    pub others: Vec<Member>,
    /// The latest frame of everyone else who is streaming.
    pub frames: Vec<(FrameMeta, Bytes)>,
}

/// Who of this node's sockets is in the live room, and each one's latest frame. Cloning
/// shares the room.
#[derive(Clone, Default)]
pub struct LocalRoom {
    /// A std mutex: every critical section is a few map operations and never awaits.
    participants: Arc<Mutex<HashMap<Sid, Participant>>>,
}

impl LocalRoom {
    fn participants(&self) -> MutexGuard<'_, HashMap<Sid, Participant>> {
        // A panic while holding the lock cannot leave the map half-updated in a way that
        // matters more than losing the room, so a poisoned lock is used as is.
        self.participants
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn join(&self, sid: Sid, member: Member, now: Instant) -> Joined {
        let mut participants = self.participants();
        let is_new = !participants.contains_key(&sid);
        if is_new {
            participants.insert(
                sid,
                Participant {
                    member,
                    seq: 0,
                    last_relayed: None,
                    latest: None,
                },
            );
        }
        let mut others = Vec::new();
        let mut frames = Vec::new();
        for (_, participant) in participants.iter_mut().filter(|(other, _)| **other != sid) {
            others.push(participant.member.clone());
            if participant
                .latest
                .as_ref()
                .is_some_and(|frame| now.duration_since(frame.received) >= STALE_AFTER)
            {
                participant.latest = None;
            }
            if let Some(frame) = &participant.latest {
                frames.push((frame.meta.clone(), frame.jpeg.clone()));
            }
        }
        Joined {
            is_new,
            others,
            frames,
        }
    }

    /// Removes a participant; returns whether they were in the room.
    pub fn leave(&self, sid: Sid) -> bool {
        self.participants().remove(&sid).is_some()
    }

    /// Checks a frame and, if it is to be relayed, records it as the sender's latest.
    pub fn accept_frame(
        &self,
        sid: Sid,
        frame: &Bytes,
        now: Instant,
    ) -> Result<FrameMeta, Dropped> {
        // Cheap checks first, and all of them before taking the lock.
        if frame.len() > MAX_FRAME_BYTES {
            return Err(Dropped::TooLarge);
        }
        let (width, height) = jpeg::dimensions(frame).map_err(|_| Dropped::NotJpeg)?;
        if width > MAX_SIDE || height > MAX_SIDE || width == 0 || height == 0 {
            return Err(Dropped::BadDimensions);
        }

        let mut participants = self.participants();
        let participant = participants.get_mut(&sid).ok_or(Dropped::NotJoined)?;
        if participant
            .last_relayed
            .is_some_and(|last| now.duration_since(last) < MIN_GAP)
        {
            return Err(Dropped::TooSoon);
        }
        participant.seq += 1;
        participant.last_relayed = Some(now);
        let meta = FrameMeta {
            from: participant.member.id.clone(),
            user: participant.member.user.clone(),
            name: participant.member.name.clone(),
            at: now_ms(),
            seq: participant.seq,
        };
        participant.latest = Some(CachedFrame {
            meta: meta.clone(),
            jpeg: frame.clone(),
            received: now,
        });
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::UserId;

    const FRAME: &[u8] = include_bytes!("../../tests/fixtures/clip-synth/f-1.jpg");

    fn author(name: &str) -> Member {
        Member {
            id: name.into(),
            user: UserId::parse(&"u".repeat(20)).unwrap(),
            name: name.into(),
        }
    }

    fn frame() -> Bytes {
        Bytes::from_static(FRAME)
    }

    #[test]
    fn a_newcomer_gets_the_others_and_their_latest_frames() {
        let room = LocalRoom::default();
        let (streamer, watcher, newcomer) = (Sid::new(), Sid::new(), Sid::new());
        let start = Instant::now();
        room.join(streamer, author("streamer"), start);
        room.join(watcher, author("watcher"), start);
        room.accept_frame(streamer, &frame(), start).unwrap();

        let joined = room.join(newcomer, author("newcomer"), start);
        assert!(joined.is_new);
        let mut names: Vec<_> = joined.others.iter().map(|a| a.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["streamer", "watcher"]);
        assert_eq!(joined.frames.len(), 1);
        assert_eq!(joined.frames[0].0.name, "streamer");
        assert_eq!(joined.frames[0].1, frame());
    }

    #[test]
    fn joining_twice_is_not_news() {
        let room = LocalRoom::default();
        let sid = Sid::new();
        assert!(room.join(sid, author("a"), Instant::now()).is_new);
        assert!(!room.join(sid, author("a"), Instant::now()).is_new);
    }

    #[test]
    /// SPEC §3: a frame sooner than 900 ms after the sender's last relayed one is dropped.
    fn frames_closer_than_900_ms_are_dropped_and_seq_counts_relayed_ones() {
        let room = LocalRoom::default();
        let sid = Sid::new();
        let start = Instant::now();
        room.join(sid, author("a"), start);
        assert_eq!(room.accept_frame(sid, &frame(), start).unwrap().seq, 1);
        let early = start + Duration::from_millis(899);
        assert_eq!(
            room.accept_frame(sid, &frame(), early).unwrap_err(),
            Dropped::TooSoon
        );
        let later = start + Duration::from_millis(900);
        assert_eq!(room.accept_frame(sid, &frame(), later).unwrap().seq, 2);
        let too_soon_after_that = later + Duration::from_millis(899);
        assert_eq!(
            room.accept_frame(sid, &frame(), too_soon_after_that)
                .unwrap_err(),
            Dropped::TooSoon,
            "the gap counts from the last relayed frame"
        );
    }

    #[test]
    fn bad_frames_are_dropped_by_kind() {
        let room = LocalRoom::default();
        let sid = Sid::new();
        let now = Instant::now();
        assert_eq!(
            room.accept_frame(sid, &frame(), now).unwrap_err(),
            Dropped::NotJoined
        );
        room.join(sid, author("a"), now);
        let png = Bytes::from_static(b"\x89PNG\r\n\x1a\n");
        assert_eq!(
            room.accept_frame(sid, &png, now).unwrap_err(),
            Dropped::NotJpeg
        );
        // SPEC §3: larger than 64 KiB.
        let mut big = FRAME.to_vec();
        big.resize(64 * 1024 + 1, 0);
        assert_eq!(
            room.accept_frame(sid, &Bytes::from(big), now).unwrap_err(),
            Dropped::TooLarge
        );
        let mut wide = FRAME.to_vec();
        let sof = wide
            .windows(2)
            .position(|pair| pair == [0xFF, 0xC0])
            .unwrap();
        wide[sof + 7..sof + 9].copy_from_slice(&641u16.to_be_bytes());
        assert_eq!(
            room.accept_frame(sid, &Bytes::from(wide), now).unwrap_err(),
            Dropped::BadDimensions
        );
    }

    #[test]
    /// SPEC §3: a participant silent for 10 s has their cached frame dropped.
    fn a_silent_participants_frame_goes_stale_after_10_seconds() {
        let room = LocalRoom::default();
        let (streamer, watcher, newcomer) = (Sid::new(), Sid::new(), Sid::new());
        let start = Instant::now();
        room.join(streamer, author("streamer"), start);
        room.accept_frame(streamer, &frame(), start).unwrap();
        let before = room.join(
            watcher,
            author("watcher"),
            start + Duration::from_millis(9_999),
        );
        assert_eq!(before.frames.len(), 1, "still fresh just before 10 s");
        let joined = room.join(
            newcomer,
            author("newcomer"),
            start + Duration::from_secs(10),
        );
        assert_eq!(joined.others.len(), 2, "still in the room");
        assert!(joined.frames.is_empty(), "but no longer shown frozen");
    }

    #[test]
    fn leaving_removes_the_participant() {
        let room = LocalRoom::default();
        let sid = Sid::new();
        room.join(sid, author("a"), Instant::now());
        assert!(room.leave(sid));
        assert!(!room.leave(sid));
        assert!(
            room.join(Sid::new(), author("b"), Instant::now())
                .others
                .is_empty()
        );
    }
}
