//! Frame differencing: each frame against what the viewer already sees, as a patch of
//! the pixels that really changed (webcam noise left out), cropped to where they are.

use std::hint::select_unpredictable;

use quantette::color_map::IndexedColorMap as _;
use quantette::deps::palette::{Srgb, cast};

use super::decode::{Rgb, Size};
use super::palette::{COLOURS, ColourMap};

/// How much nearer (as a distance in RGB) a pixel's new palette colour must be to its
/// source than the colour on screen before it is redrawn. Webcam noise and JPEG at the
/// quality the page sends move flat areas by a few levels; anything that really moved is
/// much further away.
const NOISE: u32 = 12;

/// What a viewer sees after each frame so far, to tell which pixels the next one changes.
pub(super) struct Screen<'a> {
    colour_map: &'a ColourMap,
    /// The palette's colours, then black: a full 256 so that any `u8` index is in range
    /// without a check in the per-pixel loop.
    pub(super) palette: [Rgb; 256],
    /// The transparent index, just past the palette's colours.
    pub(super) unchanged: u8,
    size: Size,
    /// The palette index on screen at each pixel.
    shown: Vec<u8>,
    /// The next frame's indices, over the whole screen before it is cropped.
    changes: Vec<u8>,
}

/// The part of a frame that is drawn over the screen.
pub(super) struct Patch {
    pub(super) transparent: u8,
    pub(super) left: usize,
    pub(super) top: usize,
    pub(super) width: usize,
    pub(super) height: usize,
    pub(super) indices: Vec<u8>,
}

impl<'a> Screen<'a> {
    pub(super) fn new(colour_map: &'a ColourMap, size: Size) -> Self {
        let colours = cast::into_array_slice(colour_map.palette().as_slice());
        let mut palette = [[0; 3]; 256];
        for (entry, colour) in palette.iter_mut().zip(colours) {
            *entry = *colour;
        }
        Self {
            colour_map,
            palette,
            unchanged: u8::try_from(colours.len()).unwrap_or(COLOURS),
            size,
            shown: Vec::with_capacity(size.pixels()),
            changes: Vec::with_capacity(size.pixels()),
        }
    }

    pub(super) fn first(&mut self, frame: &[Rgb]) -> Patch {
        self.shown.clear();
        self.shown.extend(
            cast::from_array_slice::<Srgb<u8>>(frame)
                .iter()
                .map(|colour| self.colour_map.palette_index(colour)),
        );
        Patch {
            transparent: self.unchanged,
            left: 0,
            top: 0,
            width: self.size.width,
            height: self.size.height,
            indices: self.shown.clone(),
        }
    }

    pub(super) fn next(&mut self, frame: &[Rgb]) -> Patch {
        let width = self.size.width;
        self.changes.resize(self.size.pixels(), self.unchanged);
        let mut bounds = Bounds::EMPTY;
        let rows = frame
            .chunks_exact(width)
            .zip(self.shown.chunks_exact_mut(width))
            .zip(self.changes.chunks_exact_mut(width));
        for (y, ((colours, shown), changes)) in rows.enumerate() {
            let (left, right) = difference_row(
                self.colour_map,
                &self.palette,
                self.unchanged,
                colours,
                shown,
                changes,
            );
            bounds.include_row(y, left, right);
        }
        self.crop(&bounds)
    }

    fn crop(&self, bounds: &Bounds) -> Patch {
        let Some((left, top, width, height)) = bounds.rectangle() else {
            // Nothing changed; a frame still has to be there to keep its place in time.
            return Patch {
                transparent: self.unchanged,
                left: 0,
                top: 0,
                width: 1,
                height: 1,
                indices: vec![self.unchanged],
            };
        };
        let mut indices = Vec::with_capacity(width * height);
        for row in self
            .changes
            .chunks_exact(self.size.width)
            .skip(top)
            .take(height)
        {
            indices.extend_from_slice(&row[left..left + width]);
        }
        Patch {
            transparent: self.unchanged,
            left,
            top,
            width,
            height,
            indices,
        }
    }
}

/// Marks which pixels of a row must change, updates `shown` to match, and returns the
/// span `left..right` of the changed ones (empty if none did).
fn difference_row(
    colour_map: &ColourMap,
    palette: &[Rgb; 256],
    unchanged: u8,
    colours: &[Rgb],
    shown: &mut [u8],
    changes: &mut [u8],
) -> (usize, usize) {
    let (mut left, mut right) = (usize::MAX, 0);
    let colours = cast::from_array_slice::<Srgb<u8>>(colours);
    for (x, ((colour, shown), change)) in colours.iter().zip(shown).zip(changes).enumerate() {
        let index = colour_map.palette_index(colour);
        let source = cast::into_array(*colour);
        let redraw = !keeps(
            palette[usize::from(*shown)],
            palette[usize::from(index)],
            source,
        );
        // Whether a pixel changed is as random as the noise: a branch would be
        // mispredicted often enough to cost more than the work.
        *change = select_unpredictable(redraw, index, unchanged);
        *shown = select_unpredictable(redraw, index, *shown);
        left = select_unpredictable(redraw, left.min(x), left);
        right = select_unpredictable(redraw, x + 1, right);
    }
    (left, right)
}

/// Whether to leave `shown` on screen rather than draw `new`, the palette's colour for
/// `source`: yes unless `new` is nearer the source by more than the noise. Keeping a colour
/// that is about as near costs no fidelity, and saves both shimmer and LZW work.
fn keeps(shown: Rgb, new: Rgb, source: Rgb) -> bool {
    squared_distance(shown, source) <= squared_distance(new, source) + NOISE * NOISE
}

fn squared_distance(one: Rgb, other: Rgb) -> u32 {
    one.iter()
        .zip(other)
        .map(|(&mine, theirs)| u32::from(mine.abs_diff(theirs)).pow(2))
        .sum()
}

/// The smallest rectangle holding every changed pixel.
struct Bounds {
    left: usize,
    top: usize,
    right: usize,
    bottom: usize,
}

impl Bounds {
    const EMPTY: Self = Self {
        left: usize::MAX,
        top: usize::MAX,
        right: 0,
        bottom: 0,
    };

    /// Takes in row `y`, whose changed pixels span `left..right` (empty if none did).
    fn include_row(&mut self, y: usize, left: usize, right: usize) {
        if left < right {
            self.left = self.left.min(left);
            self.right = self.right.max(right);
            self.top = self.top.min(y);
            self.bottom = y + 1;
        }
    }

    /// Left, top, width and height, or `None` if nothing changed.
    fn rectangle(&self) -> Option<(usize, usize, usize, usize)> {
        (self.right > self.left).then(|| {
            (
                self.left,
                self.top,
                self.right - self.left,
                self.bottom - self.top,
            )
        })
    }
}
