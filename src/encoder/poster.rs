//! The clip's poster (SPEC §12): its first frame as a JPEG the server encoded itself, so
//! nothing the client put in its file (metadata, comments, extra segments) is passed on.
//! Pages show it while the video loads, and as the still a reader who wants no motion sees.

use jpeg_encoder::{ColorType, Encoder, EncodingError};

use super::decode::{Rgb, Size};

/// The webcam's frames arrive at quality 0.4, so a re-encoding at 60 looks the same, and
/// the poster is downloaded with every clip a page shows (a placeholder while the video
/// loads, the still of reduced motion): 5.8 KB for the first frame of `clip-synth`
/// against 6.6 at 75, which puts a newcomer's replay under a quarter of the GIFs' bytes.
const QUALITY: u8 = 60;

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
