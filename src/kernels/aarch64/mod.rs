//! aarch64 backend: NEON, part of every aarch64 CPU that runs Linux, still
//! detected at run time like the x86_64 ones.

pub mod neon;
