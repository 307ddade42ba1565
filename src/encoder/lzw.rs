//! GIF's flavour of LZW, with a hashed dictionary.
//!
//! Why not the gif crate's own (weezl's): on a clip's 400,000 palette indices weezl's
//! encoder took 5.5 ms, over half of the whole encode, because it walks a tree of child
//! nodes for every pixel. A flat, open-addressed table of 8,192 four-byte entries (32 KiB,
//! in L1 cache) does the same lookups in 2.9 ms and gives the same output size (measured
//! on the clip-synth fixture; PERF.md saw the same). The gif crate takes the result
//! through `Encoder::write_lzw_pre_encoded_frame`, which exists for exactly this.
//!
//! The format (GIF89a, appendix F): codes of `min_code_size + 1` bits at first, packed
//! least significant bit first; code `1 << min_code_size` clears the dictionary and the
//! next one ends the data. Each code the encoder writes adds one dictionary entry; once
//! the next entry would not fit the current width the width grows by a bit, up to 12.

/// Codes are at most 12 bits wide in a GIF.
const MAX_WIDTH: u32 = 12;
/// The dictionary is cleared just before its last code would be taken, as giflib does, so
/// that every decoder (some treat a full table as an error) reads the stream.
const LAST_CODE: u32 = (1 << MAX_WIDTH) - 1;
/// Twice the most entries the dictionary holds, so a lookup ends after a probe or two.
const SLOTS: usize = 8192;
/// An entry is its key (the prefix code, 12 bits, then the next index, 8 bits) above its
/// code (12 bits). No real entry is all ones: the last code is never given out.
const EMPTY: u32 = u32::MAX;
const CODE_BITS: u32 = 12;
const CODE_MASK: u32 = (1 << CODE_BITS) - 1;

/// The minimum code size for 8-bit indices; any palette index fits.
pub const MIN_CODE_SIZE: u8 = 8;

/// Appends the LZW data for `indices` to `out`, starting with a clear code and ending with
/// the end-of-information code.
pub fn encode(indices: &[u8], out: &mut Vec<u8>) {
    let clear = 1u32 << MIN_CODE_SIZE;
    let end = clear + 1;
    let first_width = u32::from(MIN_CODE_SIZE) + 1;
    let mut bits = BitWriter::new(out);
    let mut dictionary = vec![EMPTY; SLOTS];
    let mut width = first_width;
    let mut next = end + 1;
    bits.write(clear, width);
    let Some((&first, rest)) = indices.split_first() else {
        bits.write(end, width);
        bits.finish();
        return;
    };
    // The code for the longest run of indices, ending at the current one, that the
    // dictionary already has.
    let mut prefix = u32::from(first);
    'indices: for &index in rest {
        let key = prefix << 8 | u32::from(index);
        let mut slot = slot_of(key);
        loop {
            let entry = dictionary[slot];
            if entry == EMPTY {
                break;
            }
            if entry >> CODE_BITS == key {
                prefix = entry & CODE_MASK;
                continue 'indices;
            }
            slot = (slot + 1) % SLOTS;
        }
        bits.write(prefix, width);
        if next == LAST_CODE {
            bits.write(clear, width);
            dictionary.fill(EMPTY);
            width = first_width;
            next = end + 1;
        } else {
            // The decoder, one entry behind, widens when its table reaches this size.
            if next == 1 << width {
                width += 1;
            }
            dictionary[slot] = key << CODE_BITS | next;
            next += 1;
        }
        prefix = u32::from(index);
    }
    bits.write(prefix, width);
    if next == 1 << width && width < MAX_WIDTH {
        width += 1;
    }
    bits.write(end, width);
    bits.finish();
}

/// The index shifted left by five, xor the prefix code, in 13 bits: giflib's kind of hash.
/// For a given index every prefix has a slot of its own, and it costs one cycle where a
/// multiplicative hash costs three, on the path that every next index waits for.
fn slot_of(key: u32) -> usize {
    ((key & 0xFF) << 5 ^ key >> 8) as usize & (SLOTS - 1)
}

/// Packs codes least significant bit first, four bytes at a time.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    pending: u64,
    pending_bits: u32,
}

impl<'a> BitWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Self {
            out,
            pending: 0,
            pending_bits: 0,
        }
    }

    fn write(&mut self, code: u32, width: u32) {
        self.pending |= u64::from(code) << self.pending_bits;
        self.pending_bits += width;
        if self.pending_bits >= 32 {
            self.out
                .extend_from_slice(&(self.pending as u32).to_le_bytes());
            self.pending >>= 32;
            self.pending_bits -= 32;
        }
    }

    fn finish(self) {
        let bytes = self.pending_bits.div_ceil(8) as usize;
        self.out
            .extend_from_slice(&self.pending.to_le_bytes()[..bytes]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(indices: &[u8]) -> Vec<u8> {
        let mut data = Vec::new();
        encode(indices, &mut data);
        let decoded = weezl::decode::Decoder::new(weezl::BitOrder::Lsb, MIN_CODE_SIZE)
            .decode(&data)
            .unwrap_or_else(|error| panic!("{} indices: {error:?}", indices.len()));
        assert_eq!(decoded, indices, "{} indices", indices.len());
        data
    }

    fn weezl_size(indices: &[u8]) -> usize {
        let mut data = Vec::new();
        weezl::encode::Encoder::new(weezl::BitOrder::Lsb, MIN_CODE_SIZE)
            .into_vec(&mut data)
            .encode_all(indices)
            .status
            .unwrap();
        data.len()
    }

    /// xorshift32: noise as incompressible as a webcam's, without a dependency.
    fn noise(length: usize, mut state: u32) -> Vec<u8> {
        (0..length)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state.to_le_bytes()[0]
            })
            .collect()
    }

    #[test]
    fn short_inputs_decode() {
        round_trip(&[]);
        round_trip(&[7]);
        round_trip(&[0, 0]);
        round_trip(&[255, 0, 255, 0, 255]);
    }

    #[test]
    fn noise_fills_the_dictionary_many_times_and_still_decodes() {
        // 300,000 random indices make a new entry almost every index: about 75 clears.
        round_trip(&noise(300_000, 12_345));
    }

    #[test]
    fn long_runs_decode() {
        round_trip(&vec![3; 100_000]);
        let stripes: Vec<u8> = (0..300_000u32).map(|i| (i / 7 % 5) as u8).collect();
        round_trip(&stripes);
        let ramp: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        round_trip(&ramp);
    }

    #[test]
    fn every_length_around_the_width_changes_decodes() {
        // The widths change after 256, 768, 1792 and 3840 new entries; noise adds one
        // entry per index, so these lengths cross each change and the first clear.
        let indices = noise(4_200, 99);
        for length in (240..300)
            .chain(750..790)
            .chain(1_780..1_800)
            .chain(3_830..3_860)
            .chain(4_080..4_120)
        {
            round_trip(&indices[..length]);
        }
    }

    #[test]
    fn output_is_as_small_as_weezls() {
        for indices in [
            noise(50_000, 7),
            (0..50_000u32).map(|i| (i / 3 % 17) as u8).collect(),
        ] {
            let ours = round_trip(&indices).len();
            let theirs = weezl_size(&indices);
            assert!(
                ours <= theirs + theirs / 100,
                "{ours} bytes against weezl's {theirs}"
            );
        }
    }
}
