//! How good a GIF is against the JPEGs it was made from: shared by the encoder's tests and
//! its benchmark, not used by the server.

use std::io::Cursor;

use gif::{ColorOutput, DecodeOptions, DecodingError, Repeat};
use zune_jpeg::JpegDecoder;
use zune_jpeg::errors::DecodeErrors;

/// A clip as a viewer sees it: every frame whole, in RGB.
pub struct Clip {
    pub width: usize,
    pub height: usize,
    /// One `width × height × 3` buffer a frame.
    pub frames: Vec<Vec<u8>>,
    /// Each frame's delay, in hundredths of a second.
    pub delays: Vec<u16>,
    pub repeat: Repeat,
}

/// Decodes the JPEGs as the encoder sees them (RGB, grey expanded).
pub fn decode_jpegs(jpegs: &[&[u8]]) -> Result<Vec<Vec<u8>>, DecodeErrors> {
    jpegs
        .iter()
        .map(|&jpeg| {
            let mut decoder = JpegDecoder::new(jpeg);
            let pixels = decoder.decode()?;
            let area = decoder
                .dimensions()
                .map_or(1, |(width, height)| width * height);
            let channels = pixels.len() / area.max(1);
            Ok(if channels == 1 {
                pixels.iter().flat_map(|&level| [level; 3]).collect()
            } else {
                pixels
            })
        })
        .collect()
}

/// Decodes a GIF and draws each frame over the ones before, as a browser does for frames
/// that keep what is under their transparent pixels (the only disposal either encoder
/// measured here uses).
pub fn composite(gif: &[u8]) -> Result<Clip, DecodingError> {
    let mut options = DecodeOptions::new();
    options.set_color_output(ColorOutput::RGBA);
    let mut decoder = options.read_info(Cursor::new(gif))?;
    let width = usize::from(decoder.width());
    let height = usize::from(decoder.height());
    let mut canvas = vec![0; width * height * 3];
    let mut frames = Vec::new();
    let mut delays = Vec::new();
    while let Some(frame) = decoder.read_next_frame()? {
        let left = usize::from(frame.left);
        let top = usize::from(frame.top);
        let frame_width = usize::from(frame.width);
        for (row, line) in frame.buffer.chunks_exact(frame_width * 4).enumerate() {
            for (column, rgba) in line.chunks_exact(4).enumerate() {
                let (x, y) = (left + column, top + row);
                if rgba[3] != 0 && x < width && y < height {
                    let at = (y * width + x) * 3;
                    canvas[at..at + 3].copy_from_slice(&rgba[..3]);
                }
            }
        }
        frames.push(canvas.clone());
        delays.push(frame.delay);
    }
    Ok(Clip {
        width,
        height,
        frames,
        delays,
        repeat: decoder.repeat(),
    })
}

/// Peak signal-to-noise ratio of `output` against `input`, over every frame and channel.
pub fn psnr(output: &[Vec<u8>], input: &[Vec<u8>]) -> f64 {
    let (squared, count) = output
        .iter()
        .zip(input)
        .flat_map(|(out, expected)| out.iter().zip(expected))
        .fold((0.0, 0_u64), |(sum, count), (&out, &expected)| {
            let error = f64::from(out) - f64::from(expected);
            (sum + error * error, count + 1)
        });
    let mean = squared / count.max(1) as f64;
    10.0 * (255.0 * 255.0 / mean.max(f64::MIN_POSITIVE)).log10()
}

/// How much the output changes from frame to frame, against how much the input does:
/// above 1.0 the encoder adds shimmer of its own.
pub fn flicker(output: &[Vec<u8>], input: &[Vec<u8>]) -> f64 {
    change(output) / change(input).max(f64::MIN_POSITIVE)
}

/// Mean absolute difference between consecutive frames, per channel.
fn change(frames: &[Vec<u8>]) -> f64 {
    let (total, count) = frames
        .windows(2)
        .flat_map(|pair| pair[0].iter().zip(&pair[1]))
        .fold((0_u64, 0_u64), |(total, count), (&before, &after)| {
            (total + u64::from(before.abs_diff(after)), count + 1)
        });
    total as f64 / count.max(1) as f64
}
