//! The clip's one palette: Wu's method over a sample of every frame's pixels, so a still
//! background keeps its colours from frame to frame.

use quantette::PaletteSize;
use quantette::deps::palette::{Srgb, cast};
use quantette::wu::{BinnerU8x3, WuU8x3, WuU8x3ColorMap};

use super::decode::Rgb;
use super::error::EncodeError;

/// Colours in the clip's palette: a GIF has 256 indices and one is kept for "unchanged",
/// the transparent index just after the colours.
pub(super) const COLOURS: u8 = 255;

/// How many pixels, at most, the palette is made from. Wu's histogram has settled long
/// before this, and counting every pixel of a clip costs as much as decoding it.
const PALETTE_SAMPLE: usize = 150_000;

/// Wu's histogram over 16 × 32 × 16 levels of red, green and blue: quantette's choice for
/// sRGB (the eye tells greens apart best). Its colour lookup table is then 8 KiB, small
/// enough to stay in L1 cache while every pixel is mapped.
pub(super) type ColourMap = WuU8x3ColorMap<Srgb<u8>, 16, 32, 16>;

/// One palette for the whole clip, so a still background keeps its colours from frame to
/// frame.
pub(super) fn clip_palette(pixels: &[Rgb]) -> Result<ColourMap, EncodeError> {
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
