//! Reading a JPEG's size from its headers, without decoding (or allocating) any pixels.

use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::options::DecoderOptions;

/// Every JPEG starts with a start-of-image marker followed by another marker.
const MAGIC: [u8; 3] = [0xFF, 0xD8, 0xFF];

/// Whether `bytes` starts like a JPEG; a cheap first check before any parsing.
pub fn looks_like_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// Width and height from the JPEG's frame header, or why they could not be read.
pub fn dimensions(bytes: &[u8]) -> Result<(usize, usize), String> {
    if !looks_like_jpeg(bytes) {
        return Err("not a JPEG".into());
    }
    // The decoder's own size limit would turn a forged huge header into a vague format
    // error; lift it so the caller sees the claimed size and can refuse it by name.
    let options = DecoderOptions::default()
        .set_max_width(usize::from(u16::MAX))
        .set_max_height(usize::from(u16::MAX));
    let mut decoder = JpegDecoder::new_with_options(bytes, options);
    decoder
        .decode_headers()
        .map_err(|error| error.to_string())?;
    let info = decoder.info().ok_or("the JPEG has no frame header")?;
    Ok((usize::from(info.width), usize::from(info.height)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: &[u8] = include_bytes!("../tests/fixtures/clip-synth/f-1.jpg");

    #[test]
    fn reads_the_size_of_a_real_jpeg() {
        assert_eq!(dimensions(FRAME), Ok((200, 200)));
    }

    #[test]
    fn reports_a_forged_huge_size_instead_of_failing() {
        let mut forged = FRAME.to_vec();
        let sof = forged
            .windows(2)
            .position(|pair| pair == [0xFF, 0xC0])
            .unwrap();
        forged[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(dimensions(&forged), Ok((65535, 65535)));
    }

    #[test]
    fn refuses_what_is_not_a_jpeg() {
        assert!(dimensions(b"\x89PNG\r\n\x1a\n").is_err());
        assert!(dimensions(&FRAME[..3]).is_err());
    }
}
