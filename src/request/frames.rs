//! The frames of a clip: what arrives on the wire, and the checked JPEG list the encoder
//! is given.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::de::{self, Deserialize, Deserializer, Visitor};

use crate::error::ClipError;

/// The most frames a clip may have; the web page always sends this many.
pub const MAX_FRAMES: usize = 10;
/// The largest single frame, in bytes of JPEG.
pub const MAX_FRAME_BYTES: usize = 256 * 1024;
/// The largest whole message: every frame as sent (a data URI counts with its base64
/// overhead) plus the text.
pub const MAX_MESSAGE_BYTES: usize = 3 * 1024 * 1024;

const DATA_URI_PREFIX: &str = "data:image/jpeg;base64,";

/// One frame as a client sent it.
///
/// It has its own `Deserialize` because a derived untagged enum cannot tell a Socket.IO
/// binary attachment from a string: `Bytes` happily deserializes from either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireFrame {
    /// A binary attachment (ArrayBuffer, Blob or Buffer): what the web page sends.
    Binary(Bytes),
    /// A `data:` URI string: what older clients send.
    DataUri(String),
}

impl WireFrame {
    /// Bytes this frame took in the message, for the whole-message limit.
    fn wire_len(&self) -> usize {
        match self {
            Self::Binary(bytes) => bytes.len(),
            Self::DataUri(text) => text.len(),
        }
    }
}

impl<'de> Deserialize<'de> for WireFrame {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(WireFrameVisitor)
    }
}

struct WireFrameVisitor;

impl Visitor<'_> for WireFrameVisitor {
    type Value = WireFrame;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a binary JPEG or a data:image/jpeg;base64 string")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<WireFrame, E> {
        Ok(WireFrame::DataUri(text.to_owned()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<WireFrame, E> {
        Ok(WireFrame::DataUri(text))
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<WireFrame, E> {
        Ok(WireFrame::Binary(Bytes::copy_from_slice(bytes)))
    }

    fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<WireFrame, E> {
        Ok(WireFrame::Binary(Bytes::from(bytes)))
    }
}

/// Between 1 and [`MAX_FRAMES`] byte strings that each start like a JPEG and fit the size
/// limits. Whether they decode, and to what size, is the encoder's to find out: it reads
/// the headers before it allocates any pixels.
#[derive(Debug, Clone)]
pub struct Frames(Vec<Bytes>);

impl Frames {
    /// `text_bytes` is the length of the message text, which counts towards the
    /// whole-message limit.
    pub fn parse(wire: Vec<WireFrame>, text_bytes: usize) -> Result<Self, ClipError> {
        if wire.is_empty() || wire.len() > MAX_FRAMES {
            return Err(ClipError::BadFrameCount {
                got: wire.len(),
                max: MAX_FRAMES,
            });
        }
        let message_bytes = text_bytes + wire.iter().map(WireFrame::wire_len).sum::<usize>();
        if message_bytes > MAX_MESSAGE_BYTES {
            return Err(ClipError::FrameTooLarge(format!(
                "the message is {message_bytes} bytes; the limit is {MAX_MESSAGE_BYTES}"
            )));
        }
        let jpegs = wire
            .into_iter()
            .enumerate()
            .map(|(index, frame)| jpeg_bytes(index, frame))
            .collect::<Result<_, _>>()?;
        Ok(Self(jpegs))
    }

    pub fn as_slices(&self) -> Vec<&[u8]> {
        self.0.iter().map(|frame| frame.as_ref()).collect()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn jpeg_bytes(index: usize, frame: WireFrame) -> Result<Bytes, ClipError> {
    let bytes = match frame {
        WireFrame::Binary(bytes) => bytes,
        WireFrame::DataUri(uri) => decode_data_uri(index, &uri)?,
    };
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(too_large(index, bytes.len()));
    }
    if !crate::jpeg::looks_like_jpeg(&bytes) {
        return Err(ClipError::BadFrame(format!("frame {index} is not a JPEG")));
    }
    Ok(bytes)
}

fn decode_data_uri(index: usize, uri: &str) -> Result<Bytes, ClipError> {
    let Some(payload) = uri.strip_prefix(DATA_URI_PREFIX) else {
        return Err(ClipError::BadFrame(format!(
            "frame {index} is a string but not a {DATA_URI_PREFIX}… URI"
        )));
    };
    // Refuse an oversized frame before spending memory on decoding it.
    let estimated = base64::decoded_len_estimate(payload.len());
    if estimated > MAX_FRAME_BYTES + 3 {
        return Err(too_large(index, estimated));
    }
    BASE64
        .decode(payload)
        .map(Bytes::from)
        .map_err(|_| ClipError::BadFrame(format!("frame {index} is not valid base64")))
}

fn too_large(index: usize, bytes: usize) -> ClipError {
    ClipError::FrameTooLarge(format!(
        "frame {index} is {bytes} bytes; the limit is {MAX_FRAME_BYTES}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refusal::Refusal;

    const JPEG: &[u8] = include_bytes!("../../tests/fixtures/clip-synth/f-1.jpg");

    fn binary(bytes: &[u8]) -> WireFrame {
        WireFrame::Binary(Bytes::copy_from_slice(bytes))
    }

    fn data_uri(bytes: &[u8]) -> WireFrame {
        WireFrame::DataUri(format!("{DATA_URI_PREFIX}{}", BASE64.encode(bytes)))
    }

    fn code(result: Result<Frames, ClipError>) -> &'static str {
        result.map(|_| "ok").unwrap_or_else(|error| error.code())
    }

    #[test]
    fn accepts_binary_and_data_uri_frames_alike() {
        let frames = Frames::parse(vec![binary(JPEG), data_uri(JPEG)], 0).unwrap();
        assert_eq!(frames.as_slices(), vec![JPEG, JPEG]);
    }

    #[test]
    fn needs_one_to_ten_frames() {
        assert_eq!(code(Frames::parse(vec![], 0)), "bad_frame_count");
        assert_eq!(
            code(Frames::parse(vec![binary(JPEG); 11], 0)),
            "bad_frame_count"
        );
        assert_eq!(code(Frames::parse(vec![binary(JPEG); 10], 0)), "ok");
    }

    #[test]
    fn refuses_a_frame_one_byte_over_the_limit() {
        let mut big = JPEG.to_vec();
        big.resize(MAX_FRAME_BYTES + 1, 0);
        assert_eq!(
            code(Frames::parse(vec![binary(&big)], 0)),
            "frame_too_large"
        );
        big.truncate(MAX_FRAME_BYTES);
        assert_eq!(code(Frames::parse(vec![binary(&big)], 0)), "ok");
        big.push(0);
        assert_eq!(
            code(Frames::parse(vec![data_uri(&big)], 0)),
            "frame_too_large"
        );
    }

    #[test]
    fn counts_data_uris_with_their_base64_overhead_towards_the_message_limit() {
        let mut frame = JPEG.to_vec();
        frame.resize(240 * 1024, 0);
        assert_eq!(code(Frames::parse(vec![binary(&frame); 10], 0)), "ok");
        assert_eq!(
            code(Frames::parse(vec![data_uri(&frame); 10], 0)),
            "frame_too_large"
        );
    }

    #[test]
    fn refuses_what_is_not_a_jpeg() {
        let png = b"\x89PNG\r\n\x1a\n0000";
        assert_eq!(code(Frames::parse(vec![binary(png)], 0)), "bad_frame");
        let png_uri = WireFrame::DataUri(format!("data:image/png;base64,{}", BASE64.encode(JPEG)));
        assert_eq!(code(Frames::parse(vec![png_uri], 0)), "bad_frame");
        let not_base64 = WireFrame::DataUri(format!("{DATA_URI_PREFIX}!!!not base64!!!"));
        assert_eq!(code(Frames::parse(vec![not_base64], 0)), "bad_frame");
        assert_eq!(code(Frames::parse(vec![binary(&[])], 0)), "bad_frame");
    }

    #[test]
    fn deserializes_strings_as_data_uris_and_bytes_as_binary() {
        let from_string: WireFrame = serde_json::from_str("\"data:x\"").unwrap();
        assert_eq!(from_string, WireFrame::DataUri("data:x".into()));
        let not_a_frame = serde_json::from_str::<WireFrame>("42");
        assert!(not_a_frame.is_err());
    }
}
