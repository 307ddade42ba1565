//! Why frames could not be encoded: the client's fault (a refusal with its code, SPEC §5) or
//! the server's (`internal`). In a module of their own so that every step of the encoder
//! can name them without the steps depending on each other.

use super::limits::MAX_SIDE;

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
    /// The frames decoded but the video could not be made: a fault of ours, `internal`.
    #[error("the video could not be made: {0}")]
    Video(#[from] VideoError),
    /// The frames decoded but the poster could not be made: a fault of ours, `internal`.
    #[error("the poster could not be made: {0}")]
    Poster(#[from] jpeg_encoder::EncodingError),
}

/// Why the MP4 could not be made from frames that decoded.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("H.264: {0}")]
    H264(#[from] openh264::Error),
    #[error("MP4: {0}")]
    Mp4(#[from] muxide::api::MuxerError),
    #[error("the H.264 encoder gave no picture for frame {0}")]
    NoPicture(usize),
}
