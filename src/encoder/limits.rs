//! What a clip's frames may be, shared by the decoder that checks it and the errors that
//! say it.

/// The longest side a frame may have, in pixels.
pub const MAX_SIDE: usize = 640;
