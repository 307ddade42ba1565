//! What a client sends with `message`, turned into types that cannot hold invalid values
//! ("parse, don't validate"). Handlers only see a [`ClipDraft`].

mod frames;
mod text;

pub use frames::{Frames, MAX_FRAME_BYTES, MAX_FRAMES, MAX_MESSAGE_BYTES, WireFrame};
pub use text::{MAX_CHARS, MessageText};

use serde::Deserialize;

use crate::error::ClipError;

/// The longest correlation id a client may attach; it is echoed back verbatim, so it is
/// kept short enough not to bloat every broadcast.
pub const MAX_CLIENT_ID_CHARS: usize = 128;

/// The `message` payload exactly as it is on the wire. A payload that does not fit this
/// shape is an `invalid_payload`.
#[derive(Debug, Deserialize)]
pub struct ClipRequest {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub message: String,
    pub frames: Vec<WireFrame>,
}

/// A clip request that passed every check that does not need decoding pixels.
#[derive(Debug)]
pub struct ClipDraft {
    pub client_id: Option<String>,
    pub text: MessageText,
    pub frames: Frames,
}

impl ClipDraft {
    /// Checks run cheapest first, so an obviously bad request costs the least work.
    pub fn parse(request: ClipRequest) -> Result<Self, ClipError> {
        if request
            .id
            .as_ref()
            .is_some_and(|id| id.chars().count() > MAX_CLIENT_ID_CHARS)
        {
            return Err(ClipError::InvalidPayload);
        }
        let frames = Frames::parse(request.frames, request.message.len())?;
        let text = MessageText::parse(&request.message)?;
        Ok(Self {
            client_id: request.id,
            text,
            frames,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refusal::Refusal;

    const JPEG_URI: &str = "data:image/jpeg;base64,/9j/4AAQ";

    fn request(json: &str) -> Result<ClipRequest, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn a_well_formed_request_parses() {
        let request = request(&format!(
            r#"{{"id":"c1","message":" hi ","frames":["{JPEG_URI}"]}}"#
        ))
        .unwrap();
        let draft = ClipDraft::parse(request).unwrap();
        assert_eq!(draft.client_id.as_deref(), Some("c1"));
        assert_eq!(draft.text.as_str(), "hi");
        assert_eq!(draft.frames.len(), 1);
    }

    #[test]
    fn id_and_message_are_optional() {
        let draft = ClipDraft::parse(request(&format!(r#"{{"frames":["{JPEG_URI}"]}}"#)).unwrap());
        assert_eq!(draft.unwrap().text.as_str(), "");
    }

    #[test]
    fn wrong_shapes_do_not_deserialize() {
        for bad in [
            r#""just a string""#,
            "42",
            "[]",
            r#"{"message":"no frames"}"#,
            r#"{"frames":"not an array"}"#,
            r#"{"frames":[],"message":7}"#,
            r#"{"frames":[],"id":7}"#,
            r#"{"frames":[7]}"#,
        ] {
            assert!(request(bad).is_err(), "{bad} should not deserialize");
        }
    }

    #[test]
    fn an_overlong_client_id_is_an_invalid_payload() {
        let id = "x".repeat(MAX_CLIENT_ID_CHARS + 1);
        let request = request(&format!(r#"{{"id":"{id}","frames":["{JPEG_URI}"]}}"#)).unwrap();
        assert_eq!(
            ClipDraft::parse(request).unwrap_err(),
            ClipError::InvalidPayload
        );
    }

    #[test]
    fn frame_count_is_checked_before_text() {
        let long = "a".repeat(MAX_CHARS + 1);
        let request = request(&format!(r#"{{"message":"{long}","frames":[]}}"#)).unwrap();
        assert_eq!(
            ClipDraft::parse(request).unwrap_err().code(),
            "bad_frame_count"
        );
    }
}
