//! What the encoder promises, shown through [`encode_gif`] on real JPEGs: a faithful
//! looping GIF, and a refusal (before any large allocation) of every frame it cannot use.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Cursor;

use gif::{ColorOutput, DecodeOptions, Repeat};

use super::*;

const CLIP: [&[u8]; 10] = include!("../../tests/fixtures/clip_synth.rs");

/// An 8×8 greyscale JPEG, a ramp from black to light grey (jpeg-encoder 0.6, quality 50).
const GREY: &[u8] = &[
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x02, 0x00, 0x00, 0x01,
    0x00, 0x01, 0x00, 0x00, 0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x08, 0x00, 0x08, 0x01, 0x00, 0x11,
    0x00, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x10, 0x0b, 0x0c, 0x0e, 0x0c, 0x0a, 0x10, 0x0e, 0x0d, 0x0e,
    0x12, 0x11, 0x10, 0x13, 0x18, 0x28, 0x1a, 0x18, 0x16, 0x16, 0x18, 0x31, 0x23, 0x25, 0x1d, 0x28,
    0x3a, 0x33, 0x3d, 0x3c, 0x39, 0x33, 0x38, 0x37, 0x40, 0x48, 0x5c, 0x4e, 0x40, 0x44, 0x57, 0x45,
    0x37, 0x38, 0x50, 0x6d, 0x51, 0x57, 0x5f, 0x62, 0x67, 0x68, 0x67, 0x3e, 0x4d, 0x71, 0x79, 0x70,
    0x64, 0x78, 0x5c, 0x65, 0x67, 0x63, 0xff, 0xdb, 0x00, 0x43, 0x01, 0x11, 0x12, 0x12, 0x18, 0x15,
    0x18, 0x2f, 0x1a, 0x1a, 0x2f, 0x63, 0x42, 0x38, 0x42, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63,
    0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63,
    0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63,
    0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0xff, 0xc4, 0x00, 0x1f, 0x00,
    0x00, 0x01, 0x05, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0xff, 0xc4, 0x00, 0xb5,
    0x10, 0x00, 0x02, 0x01, 0x03, 0x03, 0x02, 0x04, 0x03, 0x05, 0x05, 0x04, 0x04, 0x00, 0x00, 0x01,
    0x7d, 0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61,
    0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1,
    0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27,
    0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
    0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88,
    0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6,
    0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4,
    0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1,
    0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7,
    0xf8, 0xf9, 0xfa, 0xff, 0xda, 0x00, 0x08, 0x01, 0x00, 0x00, 0x00, 0x3f, 0x00, 0xaf, 0xe0, 0xaf,
    0xf9, 0x67, 0x5f, 0xff, 0xd9,
];

const DELAY: Duration = Duration::from_millis(200);

#[test]
fn encodes_the_clip_as_a_looping_gif_faithful_to_its_frames() {
    let gif = encode_gif(&CLIP, DELAY).unwrap();

    assert_eq!((gif.width, gif.height, gif.frames), (200, 200, 10));
    let shown = quality::composite(&gif.bytes).unwrap();
    assert_eq!((shown.width, shown.height), (200, 200));
    assert_eq!(shown.frames.len(), 10);
    assert_eq!(shown.delays, [20; 10]);
    assert_eq!(shown.repeat, Repeat::Infinite);
    let input = quality::decode_jpegs(&CLIP).unwrap();
    let psnr = quality::psnr(&shown.frames, &input);
    assert!(psnr >= 30.0, "PSNR {psnr:.2} dB");
}

#[test]
fn encodes_a_single_frame() {
    let gif = encode_gif(&CLIP[..1], DELAY).unwrap();

    assert_eq!(gif.frames, 1);
    let shown = quality::composite(&gif.bytes).unwrap();
    assert_eq!(shown.frames.len(), 1);
    let input = quality::decode_jpegs(&CLIP[..1]).unwrap();
    assert!(quality::psnr(&shown.frames, &input) >= 30.0);
}

#[test]
fn keeps_a_frame_that_changes_nothing_as_one_transparent_pixel() {
    let gif = encode_gif(&[CLIP[0], CLIP[0]], DELAY).unwrap();

    let sizes = frame_sizes(&gif.bytes);
    assert_eq!(sizes, [(200, 200), (1, 1)]);
    let shown = quality::composite(&gif.bytes).unwrap();
    assert_eq!(shown.frames[0], shown.frames[1]);
    assert_eq!(shown.delays, [20, 20]);
}

#[test]
fn expands_a_greyscale_frame_to_grey_rgb() {
    let gif = encode_gif(&[GREY], DELAY).unwrap();

    assert_eq!((gif.width, gif.height), (8, 8));
    let shown = quality::composite(&gif.bytes).unwrap();
    let frame = &shown.frames[0];
    assert!(
        frame
            .chunks_exact(3)
            .all(|pixel| pixel[0] == pixel[1] && pixel[1] == pixel[2])
    );
    let input = quality::decode_jpegs(&[GREY]).unwrap();
    assert!(quality::psnr(&shown.frames, &input) >= 30.0);
}

#[test]
fn refuses_bytes_that_are_not_a_jpeg() {
    let error = encode_gif(&[CLIP[0], b"GIF89a, not a JPEG"], DELAY).unwrap_err();

    assert!(
        matches!(error, EncodeError::Undecodable { index: 1, .. }),
        "{error}"
    );
}

#[test]
fn refuses_a_truncated_jpeg() {
    let half = &CLIP[3][..CLIP[3].len() / 2];

    let error = encode_gif(&[CLIP[0], half], DELAY).unwrap_err();

    assert!(
        matches!(error, EncodeError::Undecodable { index: 1, .. }),
        "{error}"
    );
}

#[test]
fn refuses_a_forged_huge_frame_before_allocating_for_it() {
    let forged = with_size(CLIP[0], 65535, 65535);

    let (result, largest) = largest_allocation_during(|| encode_gif(&[&forged], DELAY));

    assert!(matches!(
        result,
        Err(EncodeError::BadDimensions {
            index: 0,
            width: 65535,
            height: 65535
        })
    ));
    // A pixel buffer for that frame would be 12 GiB; even one of 200×200 is 117 KiB.
    assert!(largest < 64 * 1024, "allocated {largest} bytes at once");
}

#[test]
fn refuses_a_frame_over_the_largest_side() {
    let wide = with_size(CLIP[0], 641, 200);

    let error = encode_gif(&[&wide], DELAY).unwrap_err();

    assert!(matches!(
        error,
        EncodeError::BadDimensions {
            index: 0,
            width: 641,
            height: 200
        }
    ));
}

#[test]
fn refuses_a_frame_with_a_side_of_zero() {
    let flat = with_size(CLIP[0], 200, 0);

    let error = encode_gif(&[&flat], DELAY).unwrap_err();

    assert!(
        matches!(error, EncodeError::BadDimensions { index: 0, .. }),
        "{error}"
    );
}

#[test]
fn refuses_frames_of_different_sizes_before_decoding_them() {
    let smaller = with_size(CLIP[1], 100, 100);

    let error = encode_gif(&[CLIP[0], &smaller, CLIP[2]], DELAY).unwrap_err();

    assert!(matches!(
        error,
        EncodeError::BadDimensions {
            index: 1,
            width: 100,
            height: 100
        }
    ));
}

#[test]
fn refuses_a_clip_without_frames() {
    assert!(matches!(encode_gif(&[], DELAY), Err(EncodeError::NoFrames)));
}

#[test]
fn survives_corrupt_headers() {
    let original = CLIP[4];
    let frame_header = original
        .windows(2)
        .position(|pair| pair == [0xFF, 0xC0])
        .unwrap();
    let scan = original
        .windows(2)
        .position(|pair| pair == [0xFF, 0xDA])
        .unwrap();
    // Every byte of the frame header (where 0x44, 4×4 chroma subsampling, made
    // zune-jpeg 0.4 panic), and a sample of the other headers: a frame that still
    // decodes costs a debug build tens of milliseconds.
    let positions = (frame_header..frame_header + 19).chain((0..scan + 16).step_by(13));
    for position in positions {
        for value in [0x00, 0x44, 0xFF] {
            let mut corrupt = original.to_vec();
            corrupt[position] = value;
            let _outcome = encode_gif(&[&corrupt], DELAY);
        }
    }
}

#[test]
fn refuses_a_jpeg_cut_anywhere() {
    let original = CLIP[4];
    for length in 0..original.len() {
        let error = encode_gif(&[&original[..length]], DELAY).unwrap_err();
        assert!(
            matches!(error, EncodeError::Undecodable { index: 0, .. }),
            "{error}"
        );
    }
}

#[test]
fn rounds_the_delay_to_hundredths_of_a_second() {
    assert_eq!(centiseconds(Duration::from_millis(200)), 20);
    assert_eq!(centiseconds(Duration::from_millis(205)), 21);
    assert_eq!(centiseconds(Duration::from_millis(204)), 20);
    assert_eq!(centiseconds(Duration::ZERO), 1);
    assert_eq!(centiseconds(Duration::from_secs(1_000)), u16::MAX);
    let gif = encode_gif(&CLIP[..1], Duration::from_millis(205)).unwrap();
    assert_eq!(
        gif.delay_ms, 210,
        "the clip reports the delay the GIF really has"
    );
}

/// `jpeg` with the size in its baseline frame header (SOF0) replaced.
fn with_size(jpeg: &[u8], width: u16, height: u16) -> Vec<u8> {
    let mut patched = jpeg.to_vec();
    let sof = patched
        .windows(2)
        .position(|pair| pair == [0xFF, 0xC0])
        .unwrap();
    patched[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    patched[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    patched
}

/// Width and height of each frame as stored, before compositing.
fn frame_sizes(gif: &[u8]) -> Vec<(u16, u16)> {
    let mut options = DecodeOptions::new();
    options.set_color_output(ColorOutput::Indexed);
    let mut decoder = options.read_info(Cursor::new(gif)).unwrap();
    let mut sizes = Vec::new();
    while let Some(frame) = decoder.read_next_frame().unwrap() {
        sizes.push((frame.width, frame.height));
    }
    sizes
}

/// Counts the largest single allocation on a thread while it watches, to show that a
/// forged header is refused before a buffer is allocated for its pixels.
struct WatchingAllocator;

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: a thread that is shutting down may allocate after its locals are gone.
    if WATCHING.try_with(Cell::get).unwrap_or(false) {
        LARGEST.with(|largest| largest.set(largest.get().max(size)));
    }
}

// SAFETY: every call is passed on unchanged to the system allocator.
unsafe impl GlobalAlloc for WatchingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller upholds `alloc`'s contract, which is `System`'s too.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: `pointer` came from this allocator, that is from `System`.
        unsafe { System.realloc(pointer, layout, new_size) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: as for `realloc`.
        unsafe { System.dealloc(pointer, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: WatchingAllocator = WatchingAllocator;

fn largest_allocation_during<T>(work: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|largest| largest.set(0));
    WATCHING.with(|watching| watching.set(true));
    let result = work();
    WATCHING.with(|watching| watching.set(false));
    (result, LARGEST.with(Cell::get))
}
