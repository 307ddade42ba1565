//! A clip's renditions (SPEC §12) on two sets of ten 200×200 frames, the synthetic
//! `clip-synth` and the webcam-like `clip-photo`: time on one core, bytes and PSNR of the GIF,
//! our MP4 and poster, against an anchor measured in the same run (ffmpeg's libx264
//! `-preset veryfast -crf 23`, what the chats this one descends from would have used).
//!
//! `cargo bench --bench renditions`
//!
//! Two PSNRs, because they differ by 4–5 dB for the same GIF: "YUV" is ffmpeg's `psnr`
//! filter, the average over Y, U and V of every frame against the source JPEGs, both as
//! yuv420p; "RGB" is the encoder benchmark's own (`quality::psnr`, every RGB channel of
//! every frame). Compare renditions within one column only. Without ffmpeg on the PATH the
//! table has times and bytes only. The anchor's time is ffmpeg's whole run, process start
//! included, so it is an upper bound.

use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group};
use loopchat::encoder::{encode_clip, encode_gif, encode_video, quality};

const SYNTH: [&[u8]; 10] = include!("../tests/fixtures/clip_synth.rs");
const PHOTO: [&[u8]; 10] = include!("../tests/fixtures/clip_photo.rs");
const SETS: [(&str, &[&[u8]; 10]); 2] = [("clip-synth", &SYNTH), ("clip-photo", &PHOTO)];

const DELAY: Duration = Duration::from_millis(200);
/// Runs per path for the table's medians.
const TABLE_RUNS: usize = 40;

type Encode = fn(&[&[u8]]) -> usize;

const PATHS: [(&str, Encode); 3] = [
    ("GIF (encode_gif)", |jpegs| encode_gif(jpegs, DELAY).unwrap().bytes.len()),
    ("MP4 (encode_video)", |jpegs| encode_video(jpegs, DELAY).unwrap().len()),
    ("GIF + MP4 + poster (encode_clip)", |jpegs| {
        let clip = encode_clip(jpegs, DELAY).unwrap();
        clip.gif.bytes.len() + clip.video.len() + clip.poster.len()
    }),
];

fn renditions(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("renditions of 10 frames 200x200");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (set, frames) in SETS {
        for (name, encode) in PATHS {
            group.bench_function(format!("{set}: {name}"), |bencher| {
                bencher.iter(|| encode(black_box(frames)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, renditions);

fn median_ms(mut run: impl FnMut()) -> f64 {
    let mut times: Vec<Duration> = (0..TABLE_RUNS)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed()
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2].as_secs_f64() * 1000.0
}

/// ffmpeg's PSNR (average of Y, U, V) of `rendition` against the frames in `sources`.
fn psnr(rendition: &Path, sources: &Path) -> Option<f64> {
    let output = Command::new("ffmpeg")
        .args(["-v", "info", "-i"])
        .arg(rendition)
        .args(["-framerate", "5", "-start_number", "1", "-i"])
        .arg(sources.join("f-%d.jpg"))
        .args([
            "-lavfi",
            "[0:v]format=yuv420p[a];[1:v]format=yuv420p[b];[a][b]psnr",
            "-f",
            "null",
            "-",
        ])
        .output()
        .ok()?;
    let log = String::from_utf8_lossy(&output.stderr);
    let average = log.rsplit("average:").next()?.split_whitespace().next()?;
    average.parse().ok()
}

/// Every frame of a video, decoded by ffmpeg to RGB.
fn decoded_rgb(video: &Path, frame_bytes: usize) -> Option<Vec<Vec<u8>>> {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(video)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .ok()?;
    Some(output.stdout.chunks_exact(frame_bytes).map(<[u8]>::to_vec).collect())
}

/// The anchor: libx264 on the same frames; its MP4's path and ffmpeg's median wall time.
fn x264(sources: &Path, out: &Path) -> Option<(std::path::PathBuf, f64)> {
    let mp4 = out.join("x264.mp4");
    let encode = || {
        Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-framerate", "5", "-start_number", "1", "-i"])
            .arg(sources.join("f-%d.jpg"))
            .args([
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
                "-threads", "1", "-movflags", "+faststart",
            ])
            .arg(&mp4)
            .status()
            .is_ok_and(|status| status.success())
    };
    if !encode() {
        return None;
    }
    let ms = median_ms(|| {
        encode();
    });
    Some((mp4, ms))
}

fn print_table() {
    let has_ffmpeg = Command::new("ffmpeg").arg("-version").output().is_ok();
    let out = tempfile::tempdir().expect("a temporary folder");
    println!();
    if !has_ffmpeg {
        println!("(ffmpeg is not on the PATH: no PSNR and no x264 anchor)");
    }
    println!(
        "| set | rendition | ms / clip (median of {TABLE_RUNS}, one core) | KB | PSNR dB, YUV | PSNR dB, RGB |"
    );
    println!("|---|---|---|---|---|---|");
    for (set, frames) in SETS {
        let sources = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(set);
        let clip = encode_clip(frames, DELAY).expect("the fixtures encode");
        let gif_path = out.path().join(format!("{set}.gif"));
        let mp4_path = out.path().join(format!("{set}.mp4"));
        std::fs::write(&gif_path, &clip.gif.bytes).expect("written");
        std::fs::write(&mp4_path, &clip.video).expect("written");
        let input = quality::decode_jpegs(frames).expect("the fixtures decode");
        let yuv = |path: &Path| {
            has_ffmpeg
                .then(|| psnr(path, &sources))
                .flatten()
                .map_or("–".to_owned(), |db| format!("{db:.2}"))
        };
        let rgb = |path: &Path| {
            has_ffmpeg
                .then(|| decoded_rgb(path, input[0].len()))
                .flatten()
                .map_or("–".to_owned(), |frames| format!("{:.2}", quality::psnr(&frames, &input)))
        };
        let gif_rgb = quality::composite(&clip.gif.bytes).expect("the GIF decodes");
        let rows = [
            (PATHS[0], clip.gif.bytes.len(), yuv(&gif_path), format!("{:.2}", quality::psnr(&gif_rgb.frames, &input))),
            (PATHS[1], clip.video.len(), yuv(&mp4_path), rgb(&mp4_path)),
            (PATHS[2], clip.gif.bytes.len() + clip.video.len() + clip.poster.len(), "–".to_owned(), "–".to_owned()),
        ];
        for ((name, encode), bytes, yuv_db, rgb_db) in rows {
            let ms = median_ms(|| {
                black_box(encode(black_box(frames)));
            });
            println!("| {set} | {name} | {ms:.2} | {:.1} | {yuv_db} | {rgb_db} |", bytes as f64 / 1000.0);
        }
        println!("| {set} | poster JPEG | – | {:.1} | – | – |", clip.poster.len() as f64 / 1000.0);
        if let Some((anchor, ms)) = has_ffmpeg.then(|| x264(&sources, out.path())).flatten() {
            let bytes = std::fs::metadata(&anchor).map_or(0, |meta| meta.len());
            println!(
                "| {set} | anchor: ffmpeg libx264 veryfast crf 23 (whole process) | {ms:.2} | {:.1} | {} | {} |",
                bytes as f64 / 1000.0,
                yuv(&anchor),
                rgb(&anchor)
            );
        }
        println!(
            "| {set} | MP4 ÷ GIF bytes: 1/{:.1} | | | | |",
            clip.gif.bytes.len() as f64 / clip.video.len() as f64
        );
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    print_table();
}
