//! The clip encoder against the naive way (a NeuQuant palette per frame, what
//! `gif::Frame::from_rgba_speed` does) on the ten fixture frames: criterion's timings, then
//! a table of time, size, fidelity and flicker for both.
//!
//! `cargo bench --bench encoder`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group};
use gif::{Encoder, Frame, Repeat};
use loopchat::encoder::{encode_gif, quality};
use zune_jpeg::JpegDecoder;

const FRAMES: [&[u8]; 10] = include!("../tests/fixtures/clip_synth.rs");

const DELAY: Duration = Duration::from_millis(200);
/// `DELAY` as a GIF counts it, in hundredths of a second.
const DELAY_CENTISECONDS: u16 = 20;

/// Runs per path for the table's median.
const TABLE_RUNS: usize = 50;

fn clip_encoder(jpegs: &[&[u8]]) -> Vec<u8> {
    encode_gif(jpegs, DELAY).expect("the fixtures encode").bytes
}

/// Every frame decoded, then quantised and compressed on its own.
fn naive(jpegs: &[&[u8]]) -> Vec<u8> {
    let mut decoded = jpegs.iter().map(|&jpeg| {
        let mut decoder = JpegDecoder::new(jpeg);
        let rgb = decoder.decode().expect("the fixtures decode");
        let (width, height) = decoder.dimensions().expect("headers were read");
        let side = |length| u16::try_from(length).expect("fixtures are small");
        (side(width), side(height), rgb)
    });
    let Some((width, height, first)) = decoded.next() else {
        return Vec::new();
    };
    let mut gif = Encoder::new(Vec::new(), width, height, &[]).expect("a GIF header");
    gif.set_repeat(Repeat::Infinite).expect("a loop extension");
    for rgb in std::iter::once(first).chain(decoded.map(|(_, _, rgb)| rgb)) {
        let mut rgba: Vec<u8> = rgb
            .chunks_exact(3)
            .flat_map(|pixel| [pixel[0], pixel[1], pixel[2], u8::MAX])
            .collect();
        let mut frame = Frame::from_rgba_speed(width, height, &mut rgba, 10);
        frame.delay = DELAY_CENTISECONDS;
        gif.write_frame(&frame).expect("a frame");
    }
    gif.into_inner().expect("a finished GIF")
}

/// A way to make a GIF from JPEG frames.
type Encode = fn(&[&[u8]]) -> Vec<u8>;

const PATHS: [(&str, Encode); 2] = [
    ("encode_gif", clip_encoder),
    ("naive from_rgba_speed(10)", naive),
];

fn encoders(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("clip of 10 frames 200x200");
    // The naive path takes ~90 ms a clip: flat sampling keeps the run short.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (name, encode) in PATHS {
        group.bench_function(name, |bencher| bencher.iter(|| encode(black_box(&FRAMES))));
    }
    group.finish();
}

criterion_group!(benches, encoders);

fn median_milliseconds(encode: Encode) -> f64 {
    let mut times: Vec<Duration> = (0..TABLE_RUNS)
        .map(|_| {
            let started = Instant::now();
            black_box(encode(black_box(&FRAMES)));
            started.elapsed()
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2].as_secs_f64() * 1000.0
}

fn print_table() {
    let input = quality::decode_jpegs(&FRAMES).expect("the fixtures decode");
    println!();
    println!("| path | ms / clip (median of {TABLE_RUNS}) | KB | PSNR dB | flicker |");
    println!("|---|---|---|---|---|");
    for (name, encode) in PATHS {
        let gif = encode(&FRAMES);
        let output = quality::composite(&gif).expect("the GIF decodes");
        println!(
            "| {name} | {:.2} | {:.1} | {:.2} | {:.3} |",
            median_milliseconds(encode),
            gif.len() as f64 / 1000.0,
            quality::psnr(&output.frames, &input),
            quality::flicker(&output.frames, &input),
        );
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    print_table();
}
