//! Runs the clip encoder off the async runtime, with a bounded queue (SPEC §5 `busy`).
//!
//! Encoding is pure CPU work, so at most one clip per core is encoded at a time; more
//! would only make every clip slower. Clips beyond that wait, up to a fixed number per
//! core; past that the sender is told `busy` at once instead of waiting behind a backlog
//! that would make every ack late.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::encoder::{self, EncodeError, Encoded};
use crate::error::ClipError;
use crate::metrics::Metrics;
use crate::request::Frames;

/// How many clips may wait per core. At a few ms a clip, a full queue still drains in
/// well under a second.
const WAITING_PER_CORE: usize = 32;

#[derive(Clone)]
pub struct EncodeQueue {
    /// One permit per clip between admission and its reply, encoding or not. Draining all
    /// of them is how shutdown waits for clips in flight.
    slots: Arc<Semaphore>,
    capacity: u32,
    /// One permit per core: how many clips are encoded at once.
    cores: Arc<Semaphore>,
    frame_delay: Duration,
    metrics: Metrics,
}

/// A clip's place in the queue; held until the clip has been stored and announced.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    queue: EncodeQueue,
}

impl EncodeQueue {
    pub fn new(frame_delay: Duration, metrics: Metrics) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::with_sizes(cores, cores * WAITING_PER_CORE, frame_delay, metrics)
    }

    fn with_sizes(cores: usize, capacity: usize, frame_delay: Duration, metrics: Metrics) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(capacity)),
            capacity: u32::try_from(capacity).unwrap_or(u32::MAX),
            cores: Arc::new(Semaphore::new(cores)),
            frame_delay,
            metrics,
        }
    }

    /// A place in the queue, or `busy` if it is full or the server is shutting down.
    pub fn reserve(&self) -> Result<Slot, ClipError> {
        let permit = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| ClipError::Busy)?;
        self.metrics.clips_in_flight.inc();
        Ok(Slot {
            _permit: permit,
            queue: self.clone(),
        })
    }

    /// Waits for every reserved slot to be released, then refuses new ones: used at
    /// shutdown so no acked-to-be clip is cut off halfway.
    pub async fn drain(&self) {
        if let Ok(all) = self.slots.acquire_many(self.capacity).await {
            all.forget();
        }
        self.slots.close();
    }
}

impl Slot {
    /// The clip's GIF, MP4 and poster (SPEC §12), or why the frames were refused.
    pub async fn encode(&self, frames: Frames) -> Result<Encoded, ClipError> {
        let queue = &self.queue;
        let _core = queue.cores.acquire().await.map_err(|_| ClipError::Busy)?;
        let frame_delay = queue.frame_delay;
        let started = Instant::now();
        let encoded = tokio::task::spawn_blocking(move || {
            encoder::encode_clip(&frames.as_slices(), frame_delay)
        })
        .await;
        queue
            .metrics
            .encode_seconds
            .observe(started.elapsed().as_secs_f64());
        match encoded {
            Ok(result) => result.map_err(ClipError::from),
            Err(panic) => {
                tracing::error!(error = %panic, "the encoder panicked");
                Err(ClipError::Internal)
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.queue.metrics.clips_in_flight.dec();
    }
}

impl From<EncodeError> for ClipError {
    fn from(error: EncodeError) -> Self {
        match error {
            EncodeError::Undecodable { .. } => Self::BadFrame(error.to_string()),
            EncodeError::BadDimensions { .. } => Self::BadDimensions(error.to_string()),
            EncodeError::NoFrames => Self::BadFrameCount {
                got: 0,
                max: crate::request::MAX_FRAMES,
            },
            EncodeError::Video(_) | EncodeError::Poster(_) => {
                tracing::error!(%error, "frames that decoded could not be encoded");
                Self::Internal
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(capacity: usize) -> EncodeQueue {
        EncodeQueue::with_sizes(1, capacity, Duration::from_millis(200), Metrics::new())
    }

    #[test]
    fn is_busy_when_every_slot_is_taken() {
        let queue = queue(2);
        let _first = queue.reserve().unwrap();
        let second = queue.reserve().unwrap();
        assert_eq!(queue.reserve().err(), Some(ClipError::Busy));
        drop(second);
        assert!(queue.reserve().is_ok());
    }

    #[test]
    fn counts_the_clips_in_flight_until_their_slots_go() {
        let queue = queue(2);
        let in_flight = || queue.metrics.clips_in_flight.get();
        let first = queue.reserve().unwrap();
        let second = queue.reserve().unwrap();
        assert!(queue.reserve().is_err());
        assert_eq!(in_flight(), 2, "a refused clip is not in flight");
        drop(first);
        assert_eq!(in_flight(), 1);
        drop(second);
        assert_eq!(in_flight(), 0);
    }

    #[tokio::test]
    async fn drain_waits_for_slots_in_flight_then_refuses_new_ones() {
        let queue = queue(2);
        let in_flight = queue.reserve().unwrap();
        let draining = tokio::spawn({
            let queue = queue.clone();
            async move { queue.drain().await }
        });
        tokio::task::yield_now().await;
        assert!(!draining.is_finished());
        drop(in_flight);
        draining.await.unwrap();
        assert_eq!(queue.reserve().err(), Some(ClipError::Busy));
    }
}
