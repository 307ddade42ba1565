//! JPEG frames in, a clip's three files out (SPEC §12): a looping GIF, an MP4 of the same
//! frames, and the first frame as a poster JPEG. Pure and synchronous, so the caller runs
//! it on a blocking worker (see [`crate::encode_queue`]). The frames are decoded once, and
//! all three are made from the same pixels.
//!
//! The GIF, how and why (measured in `PERF.md`):
//! - Every header is read and checked before any pixel is decoded, so a forged size is
//!   refused before a buffer is allocated for it.
//! - One palette for the whole clip, by Wu's method over sRGB: ten times faster than a
//!   NeuQuant palette per frame, and colours no longer jump between frames (the main
//!   cause of shimmer). No dithering: it adds a third to the size and visible noise.
//! - After the first frame, a pixel whose colour on screen is about as near its new value
//!   as the palette gets is left transparent over it, and each frame is cropped to the
//!   pixels that did change. That steadies the webcam noise, and leaves LZW less to do.
//! - LZW is our own hashed encoder (`lzw`), a third faster than the gif crate's; the gif
//!   crate still writes the file around it.
//!
//! One module a step: `decode` (headers, then pixels), `palette`, `difference` (what each
//! frame changes on screen), `write` (the frames as LZW, in the GIF); `video` (the MP4) and
//! `poster`; `error` and `limits` are what they all share; `quality` measures a GIF against
//! its JPEGs for the tests (`tests.rs`) and the benchmark.

use std::time::Duration;

mod decode;
mod difference;
mod error;
mod limits;
mod lzw;
mod palette;
mod poster;
#[doc(hidden)]
pub mod quality;
#[cfg(test)]
mod tests;
mod video;
mod write;

use decode::{decode_all, read_headers};
pub use error::{EncodeError, VideoError};
pub use limits::MAX_SIDE;
use palette::clip_palette;
use write::{centiseconds, write_gif};

/// An encoded clip.
#[derive(Debug, Clone)]
pub struct Gif {
    pub bytes: Vec<u8>,
    pub width: u16,
    pub height: u16,
    pub frames: usize,
    /// The delay the GIF really has: the requested one rounded to hundredths of a second.
    pub delay_ms: u64,
}

/// A clip's three files, made from the same decoded frames.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub gif: Gif,
    /// H.264 in an MP4, each frame shown as long as in the GIF.
    pub video: Vec<u8>,
    /// The first frame as a JPEG.
    pub poster: Vec<u8>,
}

/// Encodes `jpegs` as a GIF, an MP4 and a poster (see [`encode_gif`] for the GIF, and the
/// refusals, which are the same).
///
/// # Errors
///
/// As [`encode_gif`]; and [`EncodeError::Video`] or [`EncodeError::Poster`] when frames
/// that decoded could still not be encoded (a fault of the server's, not the client's).
pub fn encode_clip(jpegs: &[&[u8]], frame_delay: Duration) -> Result<Encoded, EncodeError> {
    let (decoders, size) = read_headers(jpegs)?;
    let pixels = decode_all(decoders, size)?;
    let gif = gif_from_pixels(&pixels, size, jpegs.len(), frame_delay)?;
    let video = video::encode_mp4(&pixels, size, gif.delay_ms)?;
    let poster = poster::encode_poster(&pixels[..size.pixels()], size)?;
    Ok(Encoded { gif, video, poster })
}

/// Encodes `jpegs` as an MP4 only: what the benchmark times against the GIF alone.
///
/// # Errors
///
/// As [`encode_clip`].
#[doc(hidden)]
pub fn encode_video(jpegs: &[&[u8]], frame_delay: Duration) -> Result<Vec<u8>, EncodeError> {
    let (decoders, size) = read_headers(jpegs)?;
    let pixels = decode_all(decoders, size)?;
    let delay_ms = u64::from(centiseconds(frame_delay)) * 10;
    Ok(video::encode_mp4(&pixels, size, delay_ms)?)
}

/// Encodes `jpegs` as a GIF that shows each for `frame_delay` and loops forever.
///
/// # Errors
///
/// [`EncodeError::NoFrames`] for an empty clip; otherwise the first frame, in order, whose
/// header is unreadable or gives a size the clip cannot have, and failing that the first
/// whose pixels do not decode.
pub fn encode_gif(jpegs: &[&[u8]], frame_delay: Duration) -> Result<Gif, EncodeError> {
    let (decoders, size) = read_headers(jpegs)?;
    let pixels = decode_all(decoders, size)?;
    gif_from_pixels(&pixels, size, jpegs.len(), frame_delay)
}

fn gif_from_pixels(
    pixels: &[decode::Rgb],
    size: decode::Size,
    frames: usize,
    frame_delay: Duration,
) -> Result<Gif, EncodeError> {
    let colour_map = clip_palette(pixels)?;
    let delay = centiseconds(frame_delay);
    let bytes = write_gif(&colour_map, pixels, size, delay)
        .expect("frames are built to fit the GIF and writing to a Vec cannot fail");
    Ok(Gif {
        bytes,
        width: size.width_u16(),
        height: size.height_u16(),
        frames,
        delay_ms: u64::from(delay) * 10,
    })
}
