//! JPEG frames in, one looping GIF out: pure and synchronous, so the caller runs it on a
//! blocking worker (see [`crate::encode_queue`]).
//!
//! How, and why (measured in `PERF.md`):
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

use std::borrow::Cow;
use std::cell::Cell;
use std::hint::select_unpredictable;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;
use std::time::Duration;

use gif::{DisposalMethod, Encoder, EncodingError, Frame, Repeat};
use quantette::PaletteSize;
use quantette::color_map::IndexedColorMap as _;
use quantette::deps::palette::{Srgb, cast};
use quantette::wu::{BinnerU8x3, WuU8x3, WuU8x3ColorMap};
use zune_jpeg::JpegDecoder;
use zune_jpeg::errors::DecodeErrors;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

mod lzw;
#[doc(hidden)]
pub mod quality;

/// The longest side a frame may have, in pixels.
pub const MAX_SIDE: usize = 640;

/// The marker that ends every complete JPEG.
const END_OF_IMAGE: [u8; 2] = [0xFF, 0xD9];

/// Colours in the clip's palette: a GIF has 256 indices and one is kept for "unchanged",
/// the transparent index just after the colours.
const COLOURS: u8 = 255;

/// How much nearer (as a distance in RGB) a pixel's new palette colour must be to its
/// source than the colour on screen before it is redrawn. Webcam noise and JPEG at the
/// quality the page sends move flat areas by a few levels; anything that really moved is
/// much further away.
const NOISE: u32 = 12;

/// How many pixels, at most, the palette is made from. Wu's histogram has settled long
/// before this, and counting every pixel of a clip costs as much as decoding it.
const PALETTE_SAMPLE: usize = 150_000;

/// Wu's histogram over 16 × 32 × 16 levels of red, green and blue: quantette's choice for
/// sRGB (the eye tells greens apart best). Its colour lookup table is then 8 KiB, small
/// enough to stay in L1 cache while every pixel is mapped.
type ColourMap = WuU8x3ColorMap<Srgb<u8>, 16, 32, 16>;

type Rgb = [u8; 3];

/// A frame's decoder, once its header has been read.
type Decoder<'a> = JpegDecoder<&'a [u8]>;

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

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// A frame that is not a JPEG this decoder can read: the client code `bad_frame`.
    #[error("frame {index} could not be decoded: {reason}")]
    Undecodable { index: usize, reason: String },
    /// A frame with a side of zero or over [`MAX_SIDE`], or not the size of the first
    /// frame: the client code `bad_dimensions`.
    #[error(
        "frame {index} is {width}×{height}; frames must be at most {MAX_SIDE}×{MAX_SIDE} and all the same size"
    )]
    BadDimensions {
        index: usize,
        width: usize,
        height: usize,
    },
    #[error("a clip needs at least one frame")]
    NoFrames,
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
    let colour_map = clip_palette(&pixels)?;
    let delay = centiseconds(frame_delay);
    let bytes = write_gif(&colour_map, &pixels, size, delay)
        .expect("frames are built to fit the GIF and writing to a Vec cannot fail");
    Ok(Gif {
        bytes,
        width: size.width_u16(),
        height: size.height_u16(),
        frames: jpegs.len(),
        delay_ms: u64::from(delay) * 10,
    })
}

/// The size every frame of a clip shares, with both sides in `1..=MAX_SIDE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Size {
    width: usize,
    height: usize,
}

impl Size {
    fn checked(index: usize, (width, height): (usize, usize)) -> Result<Self, EncodeError> {
        let fits = |side| (1..=MAX_SIDE).contains(&side);
        if fits(width) && fits(height) {
            Ok(Self { width, height })
        } else {
            Err(EncodeError::BadDimensions {
                index,
                width,
                height,
            })
        }
    }

    fn pixels(self) -> usize {
        self.width * self.height
    }

    fn width_u16(self) -> u16 {
        u16::try_from(self.width).unwrap_or(u16::MAX)
    }

    fn height_u16(self) -> u16 {
        u16::try_from(self.height).unwrap_or(u16::MAX)
    }
}

/// Reads every frame's header, and refuses the clip before any pixels are decoded if one
/// is unreadable, too large, or not the size of the first.
fn read_headers<'a>(jpegs: &[&'a [u8]]) -> Result<(Vec<Decoder<'a>>, Size), EncodeError> {
    let mut decoders = Vec::with_capacity(jpegs.len());
    let mut clip_size = None;
    for (index, &jpeg) in jpegs.iter().enumerate() {
        let (decoder, size) = read_header(index, jpeg)?;
        let first = *clip_size.get_or_insert(size);
        if size != first {
            return Err(EncodeError::BadDimensions {
                index,
                width: size.width,
                height: size.height,
            });
        }
        decoders.push(decoder);
    }
    let size = clip_size.ok_or(EncodeError::NoFrames)?;
    Ok((decoders, size))
}

fn read_header(index: usize, jpeg: &[u8]) -> Result<(Decoder<'_>, Size), EncodeError> {
    // zune-jpeg 0.4 fills a cut-off scan with grey instead of failing; every encoder ends
    // a JPEG with this marker.
    if !jpeg.ends_with(&END_OF_IMAGE) {
        return Err(undecodable(index, "the JPEG is truncated"));
    }
    // The limit makes the decoder itself refuse a large frame, whatever path reaches it.
    let options = DecoderOptions::default()
        .set_max_width(MAX_SIDE)
        .set_max_height(MAX_SIDE);
    let mut decoder = JpegDecoder::new_with_options(jpeg, options);
    if let Err(error) = without_panics(|| decoder.decode_headers()) {
        return Err(header_refusal(index, jpeg, error));
    }
    let Some(dimensions) = decoder.dimensions() else {
        return Err(undecodable(index, "the JPEG has no frame header"));
    };
    Ok((decoder, Size::checked(index, dimensions)?))
}

/// Why a header was refused, as the client should hear it. The decoder reports its size
/// limit as a generic format error, so the header is read again without the limit to tell
/// an oversized frame (`bad_dimensions`) from a broken one (`bad_frame`).
fn header_refusal(index: usize, jpeg: &[u8], error: DecodeErrors) -> EncodeError {
    if matches!(error, DecodeErrors::ZeroError) {
        // The decoder refuses a zero side without saying which one.
        return EncodeError::BadDimensions {
            index,
            width: 0,
            height: 0,
        };
    }
    let unlimited = DecoderOptions::default()
        .set_max_width(usize::from(u16::MAX))
        .set_max_height(usize::from(u16::MAX));
    let mut decoder = JpegDecoder::new_with_options(jpeg, unlimited);
    let claimed = without_panics(|| decoder.decode_headers())
        .ok()
        .and(decoder.dimensions());
    match claimed.map(|dimensions| Size::checked(index, dimensions)) {
        Some(Err(bad_dimensions)) => bad_dimensions,
        Some(Ok(_)) | None => undecodable(index, error),
    }
}

fn undecodable(index: usize, reason: impl ToString) -> EncodeError {
    EncodeError::Undecodable {
        index,
        // zune-jpeg 0.4 prints most of its messages in quotes.
        reason: reason.to_string().trim_matches('"').to_owned(),
    }
}

/// Every frame's pixels, one frame after another.
fn decode_all(decoders: Vec<Decoder<'_>>, size: Size) -> Result<Vec<Rgb>, EncodeError> {
    let mut pixels = vec![[0; 3]; decoders.len() * size.pixels()];
    for (index, (mut decoder, frame)) in decoders
        .into_iter()
        .zip(pixels.chunks_exact_mut(size.pixels()))
        .enumerate()
    {
        decode_frame(&mut decoder, frame).map_err(|error| undecodable(index, error))?;
    }
    Ok(pixels)
}

fn decode_frame(decoder: &mut Decoder<'_>, frame: &mut [Rgb]) -> Result<(), DecodeErrors> {
    match decoder.get_output_colorspace() {
        Some(ColorSpace::RGB) => without_panics(|| decoder.decode_into(frame.as_flattened_mut())),
        // zune-jpeg 0.4 decodes a greyscale JPEG to one channel whatever it is asked for.
        Some(ColorSpace::Luma) => {
            let mut levels = vec![0; frame.len()];
            without_panics(|| decoder.decode_into(&mut levels))?;
            for (pixel, level) in frame.iter_mut().zip(levels) {
                *pixel = [level; 3];
            }
            Ok(())
        }
        other => Err(DecodeErrors::Format(format!(
            "cannot convert the colour space {other:?} to RGB"
        ))),
    }
}

/// Runs a zune-jpeg call, with a panic turned into an error: zune-jpeg 0.4 still asserts
/// instead of failing on some corrupt frames (4×4 chroma subsampling, for one). The
/// decoder that panicked is never used again.
fn without_panics(call: impl FnOnce() -> Result<(), DecodeErrors>) -> Result<(), DecodeErrors> {
    QUIET_DECODER_PANICS.call_once(install_quiet_hook);
    IN_DECODER.set(true);
    let outcome = panic::catch_unwind(AssertUnwindSafe(call));
    IN_DECODER.set(false);
    outcome.unwrap_or(Err(DecodeErrors::FormatStatic(
        "the decoder gave up on this frame",
    )))
}

thread_local! {
    /// Whether this thread is inside [`without_panics`].
    static IN_DECODER: Cell<bool> = const { Cell::new(false) };
}

static QUIET_DECODER_PANICS: Once = Once::new();

/// A decoder panic is a refused frame, not a bug of ours, and anyone can send one: the
/// default hook would print a message (and, with `RUST_BACKTRACE` set, a backtrace) to
/// stderr for each. Those become one debug line; every other panic still goes to the hook
/// that was there before.
fn install_quiet_hook() {
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if IN_DECODER.get() {
            tracing::debug!(%info, "the JPEG decoder panicked; the frame is refused");
        } else {
            previous(info);
        }
    }));
}

/// One palette for the whole clip, so a still background keeps its colours from frame to
/// frame.
fn clip_palette(pixels: &[Rgb]) -> Result<ColourMap, EncodeError> {
    let step = pixels.len().div_ceil(PALETTE_SAMPLE).max(1);
    let sample: Vec<Srgb<u8>> = cast::from_array_slice(pixels)
        .iter()
        .step_by(step)
        .copied()
        .collect();
    // The quantiser refuses only an empty sample, which only a clip without frames gives.
    let wu = WuU8x3::run_slice(&sample, BinnerU8x3::rgb()).map_err(|_| EncodeError::NoFrames)?;
    Ok(wu.color_map(PaletteSize::from_u8_clamped(COLOURS)))
}

/// GIF delays are in hundredths of a second; a zero delay makes browsers pick their own.
fn centiseconds(delay: Duration) -> u16 {
    let rounded = (delay.as_micros() + 5_000) / 10_000;
    u16::try_from(rounded.max(1)).unwrap_or(u16::MAX)
}

fn write_gif(
    colour_map: &ColourMap,
    pixels: &[Rgb],
    size: Size,
    delay: u16,
) -> Result<Vec<u8>, EncodingError> {
    let mut screen = Screen::new(colour_map, size);
    // The "unchanged" index needs an entry too, though its colour is never shown.
    let table = screen.palette[..=usize::from(screen.unchanged)].as_flattened();
    let mut gif = Encoder::new(Vec::new(), size.width_u16(), size.height_u16(), table)?;
    gif.set_repeat(Repeat::Infinite)?;
    let mut frames = pixels.chunks_exact(size.pixels());
    if let Some(first) = frames.next() {
        gif.write_lzw_pre_encoded_frame(&screen.first(first).frame(delay))?;
    }
    for next in frames {
        gif.write_lzw_pre_encoded_frame(&screen.next(next).frame(delay))?;
    }
    gif.into_inner()
}

/// What a viewer sees after each frame so far, to tell which pixels the next one changes.
struct Screen<'a> {
    colour_map: &'a ColourMap,
    /// The palette's colours, then black: a full 256 so that any `u8` index is in range
    /// without a check in the per-pixel loop.
    palette: [Rgb; 256],
    /// The transparent index, just past the palette's colours.
    unchanged: u8,
    size: Size,
    /// The palette index on screen at each pixel.
    shown: Vec<u8>,
    /// The next frame's indices, over the whole screen before it is cropped.
    changes: Vec<u8>,
}

/// The part of a frame that is drawn over the screen.
struct Patch {
    transparent: u8,
    left: usize,
    top: usize,
    width: usize,
    height: usize,
    indices: Vec<u8>,
}

impl<'a> Screen<'a> {
    fn new(colour_map: &'a ColourMap, size: Size) -> Self {
        let colours = cast::into_array_slice(colour_map.palette().as_slice());
        let mut palette = [[0; 3]; 256];
        for (entry, colour) in palette.iter_mut().zip(colours) {
            *entry = *colour;
        }
        Self {
            colour_map,
            palette,
            unchanged: u8::try_from(colours.len()).unwrap_or(COLOURS),
            size,
            shown: Vec::with_capacity(size.pixels()),
            changes: Vec::with_capacity(size.pixels()),
        }
    }

    fn first(&mut self, frame: &[Rgb]) -> Patch {
        self.shown.clear();
        self.shown.extend(
            cast::from_array_slice::<Srgb<u8>>(frame)
                .iter()
                .map(|colour| self.colour_map.palette_index(colour)),
        );
        Patch {
            transparent: self.unchanged,
            left: 0,
            top: 0,
            width: self.size.width,
            height: self.size.height,
            indices: self.shown.clone(),
        }
    }

    fn next(&mut self, frame: &[Rgb]) -> Patch {
        let width = self.size.width;
        self.changes.resize(self.size.pixels(), self.unchanged);
        let mut bounds = Bounds::EMPTY;
        let rows = frame
            .chunks_exact(width)
            .zip(self.shown.chunks_exact_mut(width))
            .zip(self.changes.chunks_exact_mut(width));
        for (y, ((colours, shown), changes)) in rows.enumerate() {
            let (left, right) = difference_row(
                self.colour_map,
                &self.palette,
                self.unchanged,
                colours,
                shown,
                changes,
            );
            bounds.include_row(y, left, right);
        }
        self.crop(&bounds)
    }

    fn crop(&self, bounds: &Bounds) -> Patch {
        let Some((left, top, width, height)) = bounds.rectangle() else {
            // Nothing changed; a frame still has to be there to keep its place in time.
            return Patch {
                transparent: self.unchanged,
                left: 0,
                top: 0,
                width: 1,
                height: 1,
                indices: vec![self.unchanged],
            };
        };
        let mut indices = Vec::with_capacity(width * height);
        for row in self
            .changes
            .chunks_exact(self.size.width)
            .skip(top)
            .take(height)
        {
            indices.extend_from_slice(&row[left..left + width]);
        }
        Patch {
            transparent: self.unchanged,
            left,
            top,
            width,
            height,
            indices,
        }
    }
}

impl Patch {
    /// The patch as a GIF frame whose buffer is already LZW data, led by its code size.
    fn frame(&self, delay: u16) -> Frame<'static> {
        let side = |length: usize| u16::try_from(length).unwrap_or(u16::MAX);
        let mut data = Vec::with_capacity(self.indices.len() / 2);
        data.push(lzw::MIN_CODE_SIZE);
        lzw::encode(&self.indices, &mut data);
        Frame {
            delay,
            dispose: DisposalMethod::Keep,
            transparent: Some(self.transparent),
            left: side(self.left),
            top: side(self.top),
            width: side(self.width),
            height: side(self.height),
            buffer: Cow::Owned(data),
            ..Frame::default()
        }
    }
}

/// Marks which pixels of a row must change, updates `shown` to match, and returns the
/// span `left..right` of the changed ones (empty if none did).
fn difference_row(
    colour_map: &ColourMap,
    palette: &[Rgb; 256],
    unchanged: u8,
    colours: &[Rgb],
    shown: &mut [u8],
    changes: &mut [u8],
) -> (usize, usize) {
    let (mut left, mut right) = (usize::MAX, 0);
    let colours = cast::from_array_slice::<Srgb<u8>>(colours);
    for (x, ((colour, shown), change)) in colours.iter().zip(shown).zip(changes).enumerate() {
        let index = colour_map.palette_index(colour);
        let source = cast::into_array(*colour);
        let redraw = !keeps(
            palette[usize::from(*shown)],
            palette[usize::from(index)],
            source,
        );
        // Whether a pixel changed is as random as the noise: a branch would be
        // mispredicted often enough to cost more than the work.
        *change = select_unpredictable(redraw, index, unchanged);
        *shown = select_unpredictable(redraw, index, *shown);
        left = select_unpredictable(redraw, left.min(x), left);
        right = select_unpredictable(redraw, x + 1, right);
    }
    (left, right)
}

/// Whether to leave `shown` on screen rather than draw `new`, the palette's colour for
/// `source`: yes unless `new` is nearer the source by more than the noise. Keeping a colour
/// that is about as near costs no fidelity, and saves both shimmer and LZW work.
fn keeps(shown: Rgb, new: Rgb, source: Rgb) -> bool {
    squared_distance(shown, source) <= squared_distance(new, source) + NOISE * NOISE
}

fn squared_distance(one: Rgb, other: Rgb) -> u32 {
    one.iter()
        .zip(other)
        .map(|(&mine, theirs)| u32::from(mine.abs_diff(theirs)).pow(2))
        .sum()
}

/// The smallest rectangle holding every changed pixel.
struct Bounds {
    left: usize,
    top: usize,
    right: usize,
    bottom: usize,
}

impl Bounds {
    const EMPTY: Self = Self {
        left: usize::MAX,
        top: usize::MAX,
        right: 0,
        bottom: 0,
    };

    /// Takes in row `y`, whose changed pixels span `left..right` (empty if none did).
    fn include_row(&mut self, y: usize, left: usize, right: usize) {
        if left < right {
            self.left = self.left.min(left);
            self.right = self.right.max(right);
            self.top = self.top.min(y);
            self.bottom = y + 1;
        }
    }

    /// Left, top, width and height, or `None` if nothing changed.
    fn rectangle(&self) -> Option<(usize, usize, usize, usize)> {
        (self.right > self.left).then(|| {
            (
                self.left,
                self.top,
                self.right - self.left,
                self.bottom - self.top,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;
    use std::io::Cursor;

    use gif::{ColorOutput, DecodeOptions};

    use super::*;

    const CLIP: [&[u8]; 10] = include!("../tests/fixtures/clip_synth.rs");

    /// An 8×8 greyscale JPEG, a ramp from black to light grey (jpeg-encoder 0.6, quality 50).
    const GREY: &[u8] = &[
        0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x02, 0x00, 0x00,
        0x01, 0x00, 0x01, 0x00, 0x00, 0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x08, 0x00, 0x08, 0x01,
        0x00, 0x11, 0x00, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x10, 0x0b, 0x0c, 0x0e, 0x0c, 0x0a, 0x10,
        0x0e, 0x0d, 0x0e, 0x12, 0x11, 0x10, 0x13, 0x18, 0x28, 0x1a, 0x18, 0x16, 0x16, 0x18, 0x31,
        0x23, 0x25, 0x1d, 0x28, 0x3a, 0x33, 0x3d, 0x3c, 0x39, 0x33, 0x38, 0x37, 0x40, 0x48, 0x5c,
        0x4e, 0x40, 0x44, 0x57, 0x45, 0x37, 0x38, 0x50, 0x6d, 0x51, 0x57, 0x5f, 0x62, 0x67, 0x68,
        0x67, 0x3e, 0x4d, 0x71, 0x79, 0x70, 0x64, 0x78, 0x5c, 0x65, 0x67, 0x63, 0xff, 0xdb, 0x00,
        0x43, 0x01, 0x11, 0x12, 0x12, 0x18, 0x15, 0x18, 0x2f, 0x1a, 0x1a, 0x2f, 0x63, 0x42, 0x38,
        0x42, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63,
        0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63,
        0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63,
        0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0xff, 0xc4, 0x00, 0x1f, 0x00, 0x00, 0x01, 0x05, 0x01,
        0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02,
        0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0xff, 0xc4, 0x00, 0xb5, 0x10, 0x00,
        0x02, 0x01, 0x03, 0x03, 0x02, 0x04, 0x03, 0x05, 0x05, 0x04, 0x04, 0x00, 0x00, 0x01, 0x7d,
        0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61,
        0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52,
        0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25,
        0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45,
        0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64,
        0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83,
        0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
        0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
        0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3,
        0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8,
        0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xff, 0xda, 0x00,
        0x08, 0x01, 0x00, 0x00, 0x00, 0x3f, 0x00, 0xaf, 0xe0, 0xaf, 0xf9, 0x67, 0x5f, 0xff, 0xd9,
    ];

    const DELAY: Duration = Duration::from_millis(200);

    #[test]
    fn encodes_the_clip_as_a_looping_gif_faithful_to_its_frames() {
        let gif = encode_gif(&CLIP, DELAY).unwrap();

        assert_eq!((gif.width, gif.height, gif.frames), (200, 200, 10));
        let shown = quality::composite(&gif.bytes).unwrap();
        assert_eq!((shown.width, shown.height), (200, 200));
        assert_eq!(shown.frames.len(), 10);
        assert_eq!(shown.delays, [20; 10]);
        assert_eq!(shown.repeat, Repeat::Infinite);
        let input = quality::decode_jpegs(&CLIP).unwrap();
        let psnr = quality::psnr(&shown.frames, &input);
        assert!(psnr >= 30.0, "PSNR {psnr:.2} dB");
    }

    #[test]
    fn encodes_a_single_frame() {
        let gif = encode_gif(&CLIP[..1], DELAY).unwrap();

        assert_eq!(gif.frames, 1);
        let shown = quality::composite(&gif.bytes).unwrap();
        assert_eq!(shown.frames.len(), 1);
        let input = quality::decode_jpegs(&CLIP[..1]).unwrap();
        assert!(quality::psnr(&shown.frames, &input) >= 30.0);
    }

    #[test]
    fn keeps_a_frame_that_changes_nothing_as_one_transparent_pixel() {
        let gif = encode_gif(&[CLIP[0], CLIP[0]], DELAY).unwrap();

        let sizes = frame_sizes(&gif.bytes);
        assert_eq!(sizes, [(200, 200), (1, 1)]);
        let shown = quality::composite(&gif.bytes).unwrap();
        assert_eq!(shown.frames[0], shown.frames[1]);
        assert_eq!(shown.delays, [20, 20]);
    }

    #[test]
    fn expands_a_greyscale_frame_to_grey_rgb() {
        let gif = encode_gif(&[GREY], DELAY).unwrap();

        assert_eq!((gif.width, gif.height), (8, 8));
        let shown = quality::composite(&gif.bytes).unwrap();
        let frame = &shown.frames[0];
        assert!(
            frame
                .chunks_exact(3)
                .all(|pixel| pixel[0] == pixel[1] && pixel[1] == pixel[2])
        );
        let input = quality::decode_jpegs(&[GREY]).unwrap();
        assert!(quality::psnr(&shown.frames, &input) >= 30.0);
    }

    #[test]
    fn refuses_bytes_that_are_not_a_jpeg() {
        let error = encode_gif(&[CLIP[0], b"GIF89a, not a JPEG"], DELAY).unwrap_err();

        assert!(
            matches!(error, EncodeError::Undecodable { index: 1, .. }),
            "{error}"
        );
    }

    #[test]
    fn refuses_a_truncated_jpeg() {
        let half = &CLIP[3][..CLIP[3].len() / 2];

        let error = encode_gif(&[CLIP[0], half], DELAY).unwrap_err();

        assert!(
            matches!(error, EncodeError::Undecodable { index: 1, .. }),
            "{error}"
        );
    }

    #[test]
    fn refuses_a_forged_huge_frame_before_allocating_for_it() {
        let forged = with_size(CLIP[0], 65535, 65535);

        let (result, largest) = largest_allocation_during(|| encode_gif(&[&forged], DELAY));

        assert!(matches!(
            result,
            Err(EncodeError::BadDimensions {
                index: 0,
                width: 65535,
                height: 65535
            })
        ));
        // A pixel buffer for that frame would be 12 GiB; even one of 200×200 is 117 KiB.
        assert!(largest < 64 * 1024, "allocated {largest} bytes at once");
    }

    #[test]
    fn refuses_a_frame_over_the_largest_side() {
        let wide = with_size(CLIP[0], 641, 200);

        let error = encode_gif(&[&wide], DELAY).unwrap_err();

        assert!(matches!(
            error,
            EncodeError::BadDimensions {
                index: 0,
                width: 641,
                height: 200
            }
        ));
    }

    #[test]
    fn refuses_a_frame_with_a_side_of_zero() {
        let flat = with_size(CLIP[0], 200, 0);

        let error = encode_gif(&[&flat], DELAY).unwrap_err();

        assert!(
            matches!(error, EncodeError::BadDimensions { index: 0, .. }),
            "{error}"
        );
    }

    #[test]
    fn refuses_frames_of_different_sizes_before_decoding_them() {
        let smaller = with_size(CLIP[1], 100, 100);

        let error = encode_gif(&[CLIP[0], &smaller, CLIP[2]], DELAY).unwrap_err();

        assert!(matches!(
            error,
            EncodeError::BadDimensions {
                index: 1,
                width: 100,
                height: 100
            }
        ));
    }

    #[test]
    fn refuses_a_clip_without_frames() {
        assert!(matches!(encode_gif(&[], DELAY), Err(EncodeError::NoFrames)));
    }

    #[test]
    fn survives_corrupt_headers() {
        let original = CLIP[4];
        let frame_header = original
            .windows(2)
            .position(|pair| pair == [0xFF, 0xC0])
            .unwrap();
        let scan = original
            .windows(2)
            .position(|pair| pair == [0xFF, 0xDA])
            .unwrap();
        // Every byte of the frame header (where 0x44, 4×4 chroma subsampling, made
        // zune-jpeg 0.4 panic), and a sample of the other headers: a frame that still
        // decodes costs a debug build tens of milliseconds.
        let positions = (frame_header..frame_header + 19).chain((0..scan + 16).step_by(13));
        for position in positions {
            for value in [0x00, 0x44, 0xFF] {
                let mut corrupt = original.to_vec();
                corrupt[position] = value;
                let _outcome = encode_gif(&[&corrupt], DELAY);
            }
        }
    }

    #[test]
    fn refuses_a_jpeg_cut_anywhere() {
        let original = CLIP[4];
        for length in 0..original.len() {
            let error = encode_gif(&[&original[..length]], DELAY).unwrap_err();
            assert!(
                matches!(error, EncodeError::Undecodable { index: 0, .. }),
                "{error}"
            );
        }
    }

    #[test]
    fn rounds_the_delay_to_hundredths_of_a_second() {
        assert_eq!(centiseconds(Duration::from_millis(200)), 20);
        assert_eq!(centiseconds(Duration::from_millis(205)), 21);
        assert_eq!(centiseconds(Duration::from_millis(204)), 20);
        assert_eq!(centiseconds(Duration::ZERO), 1);
        assert_eq!(centiseconds(Duration::from_secs(1_000)), u16::MAX);
        let gif = encode_gif(&CLIP[..1], Duration::from_millis(205)).unwrap();
        assert_eq!(
            gif.delay_ms, 210,
            "the clip reports the delay the GIF really has"
        );
    }

    /// `jpeg` with the size in its baseline frame header (SOF0) replaced.
    fn with_size(jpeg: &[u8], width: u16, height: u16) -> Vec<u8> {
        let mut patched = jpeg.to_vec();
        let sof = patched
            .windows(2)
            .position(|pair| pair == [0xFF, 0xC0])
            .unwrap();
        patched[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
        patched[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
        patched
    }

    /// Width and height of each frame as stored, before compositing.
    fn frame_sizes(gif: &[u8]) -> Vec<(u16, u16)> {
        let mut options = DecodeOptions::new();
        options.set_color_output(ColorOutput::Indexed);
        let mut decoder = options.read_info(Cursor::new(gif)).unwrap();
        let mut sizes = Vec::new();
        while let Some(frame) = decoder.read_next_frame().unwrap() {
            sizes.push((frame.width, frame.height));
        }
        sizes
    }

    /// Counts the largest single allocation on a thread while it watches, to show that a
    /// forged header is refused before a buffer is allocated for its pixels.
    struct WatchingAllocator;

    thread_local! {
        static WATCHING: Cell<bool> = const { Cell::new(false) };
        static LARGEST: Cell<usize> = const { Cell::new(0) };
    }

    fn note(size: usize) {
        // `try_with`: a thread that is shutting down may allocate after its locals are gone.
        if WATCHING.try_with(Cell::get).unwrap_or(false) {
            LARGEST.with(|largest| largest.set(largest.get().max(size)));
        }
    }

    // SAFETY: every call is passed on unchanged to the system allocator.
    unsafe impl GlobalAlloc for WatchingAllocator {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            note(layout.size());
            // SAFETY: the caller upholds `alloc`'s contract, which is `System`'s too.
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            note(layout.size());
            // SAFETY: as for `alloc`.
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            note(new_size);
            // SAFETY: `pointer` came from this allocator, that is from `System`.
            unsafe { System.realloc(pointer, layout, new_size) }
        }

        unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
            // SAFETY: as for `realloc`.
            unsafe { System.dealloc(pointer, layout) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: WatchingAllocator = WatchingAllocator;

    fn largest_allocation_during<T>(work: impl FnOnce() -> T) -> (T, usize) {
        LARGEST.with(|largest| largest.set(0));
        WATCHING.with(|watching| watching.set(true));
        let result = work();
        WATCHING.with(|watching| watching.set(false));
        (result, LARGEST.with(Cell::get))
    }
}
