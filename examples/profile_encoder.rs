//! Encodes the clip-synth fixture a fixed number of times, for profilers that count
//! instructions rather than time (timings on a shared 2-core machine wander by ±20 %):
//!
//! ```sh
//! cargo build --release --example profile_encoder
//! valgrind --tool=callgrind --callgrind-out-file=callgrind.out target/release/examples/profile_encoder
//! callgrind_annotate callgrind.out | head -30
//! ```

use std::hint::black_box;
use std::time::Duration;

const FRAMES: [&[u8]; 10] = include!("../tests/fixtures/clip_synth.rs");

/// Clips encoded per run: divide the total instruction count by this.
const CLIPS: usize = 10;

fn main() {
    for _ in 0..CLIPS {
        let gif = loopchat::encoder::encode_gif(black_box(&FRAMES), Duration::from_millis(200))
            .expect("the fixtures encode");
        black_box(gif);
    }
}
