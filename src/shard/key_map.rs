//! Hashing for maps keyed by values that are already uniform hashes.
//!
//! Series keys are 128-bit xxh3 outputs and set members are stored as 64-bit
//! xxh3 hashes, so hashing them again (SipHash costs about 20 ns) buys nothing:
//! the identity hasher takes the low 64 bits as they are.

use std::hash::Hasher;

/// A [`Hasher`] for keys that are uniform hashes already.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached by u64/u128 keys; folds anything else in without panicking.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}
