//! The whole inbound path of a clip: payload parsing, frame checks, JPEG decode and GIF
//! encode (see `loopchat::fuzzing`). The first byte picks JSON (even) or binary frames
//! (odd); `scripts/fuzz` runs it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| loopchat::fuzzing::inbound(data));
