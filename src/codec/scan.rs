//! Finding delimiters in the short fields of a line, eight bytes at a time.
//!
//! Fields are a few bytes to a few dozen. memchr's runtime-dispatched SIMD search
//! pays a call and set-up cost that such haystacks never win back, and its portable
//! searcher, after finding the word that holds a match, confirms it byte by byte.
//! Here the match position comes straight from the lowest set bit of the classic
//! zero-byte mask: `(x - 0x01..) & !x & 0x80..` can flag a false byte only *above*
//! a true zero byte (the borrow runs upward), so its lowest bit is always exact.
//! The decoder's throughput went from 16.7 M to the figure in BENCHMARKS.md with
//! this; a property test checks it against a naive search.

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of the result where `word` holds `needle`; the lowest
/// set bit marks the first such byte exactly.
#[inline(always)]
fn match_mask(word: u64, needle: u8) -> u64 {
    let x = word ^ (LOW_BITS * u64::from(needle));
    x.wrapping_sub(LOW_BITS) & !x & HIGH_BITS
}

/// Position of the first byte in `bytes[from..]` that is one of `needles`, or
/// `bytes.len()`.
#[inline(always)]
pub(crate) fn find_any<const N: usize>(bytes: &[u8], from: usize, needles: [u8; N]) -> usize {
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("8-byte chunk"));
        let mask = needles.iter().fold(0, |m, &n| m | match_mask(word, n));
        if mask != 0 {
            return i + (mask.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if needles.contains(&b) {
            return i;
        }
        i += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::find_any;

    fn naive(bytes: &[u8], from: usize, needles: &[u8]) -> usize {
        (from..bytes.len())
            .find(|&i| needles.contains(&bytes[i]))
            .unwrap_or(bytes.len())
    }

    #[test]
    fn finds_the_first_match_past_false_positive_bytes() {
        // 0x01 after a 0x00-difference byte is where the zero-byte trick can misfire.
        let bytes = b"ab|}\x01\x7d|c:0123456789|";
        for from in 0..bytes.len() {
            assert_eq!(
                find_any(bytes, from, [b'|', b':']),
                naive(bytes, from, b"|:")
            );
        }
    }

    proptest! {
        #[test]
        fn agrees_with_a_naive_search(
            bytes in proptest::collection::vec(prop_oneof![Just(b'|'), Just(b':'), Just(b'\n'), any::<u8>()], 0..80),
            from in 0usize..80,
        ) {
            let from = from.min(bytes.len());
            prop_assert_eq!(find_any(&bytes, from, [b'|']), naive(&bytes, from, b"|"));
            prop_assert_eq!(find_any(&bytes, from, [b'|', b'\n']), naive(&bytes, from, b"|\n"));
            prop_assert_eq!(find_any(&bytes, from, [b':', b'|', b'\n']), naive(&bytes, from, b":|\n"));
        }
    }
}
