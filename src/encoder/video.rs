//! The clip as H.264 in an MP4 (SPEC §12): a fifth to a ninth of the GIF's bytes at 1–3 dB
//! more PSNR (`cargo bench --bench renditions`), and what every browser plays in a `<video>`.
//!
//! - openh264 encodes in-process (the crate compiles Cisco's BSD-licensed sources), with
//!   its own RGB → YUV 4:2:0 conversion; muxide writes the MP4 around the Annex-B stream
//!   it gives, `moov` first so a page plays it before it has fully arrived.
//! - One encoder per worker thread, kept between clips, so its set-up is paid once per
//!   thread rather than once per clip. Each clip starts with a forced IDR frame that
//!   carries its SPS and PPS, so no clip depends on the one before it.
//! - One fixed quantiser for every frame ([`QP`]), so a clip's quality does not depend on
//!   how fast clips arrive, and no frame is ever skipped. openh264 has no constant-QP mode
//!   in this crate's API; its buffer-based mode held to a one-value QP range is one, and
//!   unlike the quality mode it does not warn that frames cannot be skipped.
//! - Built with `nasm` on the PATH, openh264 uses its SIMD assembly: 4 ms a clip instead of
//!   9 here. Without it the build silently falls back to plain C (see the README).
//! - H.264 needs even sides: an odd side loses its last row or column, in the video only.
//!   openh264 refuses a side under 16 pixels, so a smaller one has its last row or column
//!   repeated up to 16 (no webcam sends such frames, but a client may).

use std::cell::RefCell;

use muxide::api::{MuxerBuilder, VideoCodec};
use openh264::OpenH264API;
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, QpRange, RateControlMode,
};
use openh264::formats::{RgbSliceU8, YUVBuffer};

use super::decode::{Rgb, Size};
use super::error::VideoError;

/// The quantiser of every frame. Measured with `cargo bench --bench renditions` on both
/// fixture sets against the GIF (ffmpeg's PSNR over Y, U, V): 26, openh264's default, is a
/// sixth to a twelfth of the GIF's bytes at +0.1–1.8 dB; 22 is +2.3–4.1 dB at up to two
/// sevenths of the bytes; 25 keeps every clip within a fifth of its GIF (a ninth for the
/// photo-like set) at +0.8–2.6 dB. What a phone replaying ten clips feels first is bytes.
const QP: u8 = 25;

/// Far above anything ten small frames need, so the buffer never forces a coarser QP.
const UNLIMITED_BITRATE: BitRate = BitRate::from_bps(20_000_000);

/// An encoder and the picture buffer it reads, for one frame size.
struct Worker {
    size: (usize, usize),
    encoder: Encoder,
    picture: YUVBuffer,
}

thread_local! {
    /// This thread's encoder, made for the size of the last clip it encoded.
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
}

/// The frames (`size` each, one after another) as an MP4 that shows each for `delay_ms`.
pub(super) fn encode_mp4(pixels: &[Rgb], size: Size, delay_ms: u64) -> Result<Vec<u8>, VideoError> {
    let video_size = (even_side(size.width), even_side(size.height));
    let frames = pixels.chunks_exact(size.pixels());
    WORKER.with_borrow_mut(|worker| {
        let worker = match worker {
            Some(worker) if worker.size == video_size => worker,
            _ => worker.insert(Worker::new(video_size)?),
        };
        let mut mp4 = MuxerBuilder::new(Vec::new())
            .video(
                VideoCodec::H264,
                side_u32(video_size.0),
                side_u32(video_size.1),
                1000.0 / delay_ms as f64,
            )
            .with_fast_start(true)
            .build()?;
        let mut frame_rgb = Vec::with_capacity(video_size.0 * video_size.1 * 3);
        worker.encoder.force_intra_frame();
        for (index, frame) in frames.enumerate() {
            fit_frame(frame, size, video_size, &mut frame_rgb);
            worker
                .picture
                .read_rgb8(RgbSliceU8::new(&frame_rgb, video_size));
            let stream = worker.encoder.encode(&worker.picture)?;
            let is_key = matches!(stream.frame_type(), FrameType::IDR | FrameType::I);
            if matches!(stream.frame_type(), FrameType::Skip | FrameType::Invalid) {
                return Err(VideoError::NoPicture(index));
            }
            let shown_at = (index as u64 * delay_ms) as f64 / 1000.0;
            mp4.write_video(shown_at, &stream.to_vec(), is_key)?;
        }
        mp4.finish_in_place()?;
        Ok(mp4.into_writer())
    })
}

impl Worker {
    fn new(size: (usize, usize)) -> Result<Self, VideoError> {
        let config = EncoderConfig::new()
            .rate_control_mode(RateControlMode::Bufferbased)
            .bitrate(UNLIMITED_BITRATE)
            .qp(QpRange::new(QP, QP))
            .skip_frames(false)
            // Five frames a second: what the buffer model assumes; the MP4 has the real timing.
            .max_frame_rate(FrameRate::from_hz(5.0))
            // Every clip starts with an IDR anyway; a scene cut inside two seconds would
            // only cost bytes.
            .scene_change_detect(false)
            .complexity(Complexity::Low)
            // The encoder queue already runs one clip per core.
            .num_threads(1);
        Ok(Self {
            size,
            encoder: Encoder::with_api_config(OpenH264API::from_source(), config)?,
            picture: YUVBuffer::new(size.0, size.1),
        })
    }
}

/// The smallest side openh264 encodes.
const MIN_SIDE: usize = 16;

/// The side the video has for a frame side: the even one at or below it, at least 16.
fn even_side(side: usize) -> usize {
    (side & !1).max(MIN_SIDE)
}

fn side_u32(side: usize) -> u32 {
    u32::try_from(side).expect("sides are at most MAX_SIDE")
}

/// Copies `frame` into `out` at the video's size: cropped by a row or column where a
/// side is odd, its last row or column repeated where a side is under [`MIN_SIDE`].
fn fit_frame(frame: &[Rgb], size: Size, (width, height): (usize, usize), out: &mut Vec<u8>) {
    out.clear();
    for y in 0..height {
        let row = &frame[y.min(size.height - 1) * size.width..][..size.width];
        for x in 0..width {
            out.extend_from_slice(&row[x.min(size.width - 1)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_sides_lose_a_row_or_column_and_small_ones_grow_to_16() {
        assert_eq!(even_side(200), 200);
        assert_eq!(even_side(201), 200);
        assert_eq!(even_side(17), 16);
        assert_eq!(even_side(1), 16);
        assert_eq!(even_side(15), 16);
    }

    #[test]
    fn every_size_a_clip_may_have_encodes() {
        for (width, height) in [(1, 1), (1, 640), (640, 1), (15, 17), (640, 640), (201, 151)] {
            let size = Size { width, height };
            let pixels = vec![[90, 140, 200]; size.pixels() * 2];
            let mp4 = encode_mp4(&pixels, size, 200).unwrap();
            assert_eq!(&mp4[4..8], b"ftyp", "{width}×{height}");
        }
    }

    #[test]
    fn a_frame_is_cropped_or_repeated_to_the_video_size() {
        let size = Size {
            width: 3,
            height: 1,
        };
        let frame = [[1, 1, 1], [2, 2, 2], [3, 3, 3]];
        let mut out = Vec::new();
        fit_frame(&frame, size, (2, 2), &mut out);
        assert_eq!(out, [1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2]);
    }
}
