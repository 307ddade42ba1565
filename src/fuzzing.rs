//! The whole inbound path as one function over bytes, for the fuzz targets in `fuzz/` and
//! for `tests/fuzz_regressions.rs`, which replays their corpus and every finding in plain
//! `cargo test`. Not part of the server.

use std::time::Duration;

use bytes::Bytes;

use crate::encoder::encode_clip;
use crate::jpeg;
use crate::request::{ClipDraft, ClipRequest, WireFrame};

/// Separates frames in a [`Input::Frames`] input. Any byte string would do; this one is
/// short, and unlikely inside a JPEG, so the fuzzer's splices keep frames whole.
pub const FRAME_SEPARATOR: &[u8] = b"\x00NEXTFRAME\x00";

/// The most frames of one input that are decoded and encoded. Every frame is still parsed
/// and checked (count, sizes, magic), but ten 640×640 frames take over a second to decode
/// and quantise under AddressSanitizer, which would slow the fuzzer to a crawl; what the
/// encoder does with frames after the second is what it does with the second.
pub const MAX_ENCODED_FRAMES: usize = 3;

/// How an input's first byte says to read the rest.
pub enum Input<'a> {
    /// A `message` payload as JSON, frames as `data:` URIs: the text path.
    Json(&'a [u8]),
    /// Binary frames joined by [`FRAME_SEPARATOR`]: the path the web page takes.
    Frames(&'a [u8]),
}

impl<'a> Input<'a> {
    pub fn read(data: &'a [u8]) -> Option<Self> {
        let (&kind, rest) = data.split_first()?;
        Some(if kind % 2 == 0 {
            Self::Json(rest)
        } else {
            Self::Frames(rest)
        })
    }
}

/// Parses, checks, decodes and encodes `data` as the server does a `message` (and checks
/// each binary frame as the live room does), encoding at most [`MAX_ENCODED_FRAMES`] of
/// them. Whatever the input, it must return: a panic, a hang or a huge allocation is a
/// finding.
pub fn inbound(data: &[u8]) {
    let request = match Input::read(data) {
        None => return,
        Some(Input::Json(json)) => match serde_json::from_slice::<ClipRequest>(json) {
            Ok(request) => request,
            Err(_) => return,
        },
        Some(Input::Frames(joined)) => {
            let frames: Vec<WireFrame> = split(joined, FRAME_SEPARATOR)
                .map(|frame| WireFrame::Binary(Bytes::copy_from_slice(frame)))
                .collect();
            for frame in &frames {
                if let WireFrame::Binary(bytes) = frame {
                    let _ = jpeg::dimensions(bytes);
                }
            }
            ClipRequest {
                id: None,
                message: String::new(),
                frames,
            }
        }
    };
    let Ok(draft) = ClipDraft::parse(request) else {
        return;
    };
    let frames = draft.frames.as_slices();
    let encoded = &frames[..frames.len().min(MAX_ENCODED_FRAMES)];
    let _ = encode_clip(encoded, Duration::from_millis(200));
}

/// `haystack` cut at every `separator`.
fn split<'a>(haystack: &'a [u8], separator: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    let mut rest = Some(haystack);
    std::iter::from_fn(move || {
        let current = rest?;
        match current
            .windows(separator.len())
            .position(|window| window == separator)
        {
            Some(at) => {
                rest = Some(&current[at + separator.len()..]);
                Some(&current[..at])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_every_separator() {
        let joined = [
            b"a".as_slice(),
            FRAME_SEPARATOR,
            b"",
            FRAME_SEPARATOR,
            b"bc",
        ]
        .concat();
        let parts: Vec<&[u8]> = split(&joined, FRAME_SEPARATOR).collect();
        assert_eq!(parts, [b"a".as_slice(), b"", b"bc"]);
        assert_eq!(split(b"", FRAME_SEPARATOR).count(), 1);
    }
}
