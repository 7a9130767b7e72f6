//! x86_64 backends: AVX2 and AVX-512F, each selected at run time when the CPU
//! has the feature (see `backend.rs`).

pub mod avx2;
pub mod avx512;
