//! The clip's poster (SPEC §12): its first frame as a JPEG the server encoded itself, so
//! nothing the client put in its file (metadata, comments, extra segments) is passed on.
//! Pages show it while the video loads, and as the still a reader who wants no motion sees.

use jpeg_encoder::{ColorType, Encoder, EncodingError};

use super::decode::{Rgb, Size};

/// Visually the same as the webcam's own quality-0.4 frames, at a fraction of a GIF frame:
/// it is downloaded with every clip a page shows.
const QUALITY: u8 = 75;

pub(super) fn encode_poster(first_frame: &[Rgb], size: Size) -> Result<Vec<u8>, EncodingError> {
    let mut jpeg = Vec::new();
    Encoder::new(&mut jpeg, QUALITY).encode(
        first_frame.as_flattened(),
        size.width_u16(),
        size.height_u16(),
        ColorType::Rgb,
    )?;
    Ok(jpeg)
}
