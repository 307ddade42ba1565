//! Reading a clip's JPEGs: every header first, checked, and only then the pixels. Frames
//! the decoder cannot use, even those that make zune-jpeg panic, become refusals.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use zune_jpeg::JpegDecoder;
use zune_jpeg::errors::DecodeErrors;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use super::error::EncodeError;
use super::limits::MAX_SIDE;

/// The marker that ends every complete JPEG.
const END_OF_IMAGE: [u8; 2] = [0xFF, 0xD9];

pub(super) type Rgb = [u8; 3];

/// A frame's decoder, once its header has been read.
type Decoder<'a> = JpegDecoder<&'a [u8]>;

/// The size every frame of a clip shares, with both sides in `1..=MAX_SIDE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Size {
    pub(super) width: usize,
    pub(super) height: usize,
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

    pub(super) fn pixels(self) -> usize {
        self.width * self.height
    }

    pub(super) fn width_u16(self) -> u16 {
        u16::try_from(self.width).unwrap_or(u16::MAX)
    }

    pub(super) fn height_u16(self) -> u16 {
        u16::try_from(self.height).unwrap_or(u16::MAX)
    }
}

/// Reads every frame's header, and refuses the clip before any pixels are decoded if one
/// is unreadable, too large, or not the size of the first.
pub(super) fn read_headers<'a>(
    jpegs: &[&'a [u8]],
) -> Result<(Vec<Decoder<'a>>, Size), EncodeError> {
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
pub(super) fn decode_all(decoders: Vec<Decoder<'_>>, size: Size) -> Result<Vec<Rgb>, EncodeError> {
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
