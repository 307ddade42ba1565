//! Writing the GIF: each frame's patch as LZW data of our own ([`super::lzw`]), and the
//! gif crate around them for the file's structure.

use std::borrow::Cow;
use std::time::Duration;

use gif::{DisposalMethod, Encoder, EncodingError, Frame, Repeat};

use super::decode::{Rgb, Size};
use super::difference::{Patch, Screen};
use super::lzw;
use super::palette::ColourMap;

/// GIF delays are in hundredths of a second; a zero delay makes browsers pick their own.
pub(super) fn centiseconds(delay: Duration) -> u16 {
    let rounded = (delay.as_micros() + 5_000) / 10_000;
    u16::try_from(rounded.max(1)).unwrap_or(u16::MAX)
}

pub(super) fn write_gif(
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
        gif.write_lzw_pre_encoded_frame(&frame(&screen.first(first), delay))?;
    }
    for next in frames {
        gif.write_lzw_pre_encoded_frame(&frame(&screen.next(next), delay))?;
    }
    gif.into_inner()
}

/// The patch as a GIF frame whose buffer is already LZW data, led by its code size.
fn frame(patch: &Patch, delay: u16) -> Frame<'static> {
    let side = |length: usize| u16::try_from(length).unwrap_or(u16::MAX);
    let mut data = Vec::with_capacity(patch.indices.len() / 2);
    data.push(lzw::MIN_CODE_SIZE);
    lzw::encode(&patch.indices, &mut data);
    Frame {
        delay,
        dispose: DisposalMethod::Keep,
        transparent: Some(patch.transparent),
        left: side(patch.left),
        top: side(patch.top),
        width: side(patch.width),
        height: side(patch.height),
        buffer: Cow::Owned(data),
        ..Frame::default()
    }
}
