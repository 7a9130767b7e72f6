//! Which kernel backend runs: what the CPU offers (detected once), what the
//! config asks for (`aggregation.kernel`), and the `TALLYD_KERNEL` override.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The environment variable that overrides `aggregation.kernel`, with the same
/// values plus a backend by name (`avx2`, `avx512`, `neon`): for tests and for
/// ruling a backend out on a misbehaving machine without editing the config.
/// `scalar` here goes further than in the config: the process then detects no
/// SIMD at all, as on a CPU without it, so every caller (the kernel tests'
/// harness included) takes the fallback path.
pub const KERNEL_ENV: &str = "TALLYD_KERNEL";

/// An instruction set the kernels are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The reference: plain Rust, any CPU.
    Scalar,
    /// x86_64 with AVX2 (four doubles a register).
    Avx2,
    /// x86_64 with AVX-512F (eight doubles a register, compress and expand).
    Avx512,
    /// aarch64 with NEON (two doubles a register).
    Neon,
}

impl Backend {
    /// Every backend, in the order `auto` prefers them. AVX2 comes before
    /// AVX-512: on AMD Zen 4, which splits 512-bit operations in two, AVX2 was
    /// faster for buckets and for selection up to 1e5 values and AVX-512 only
    /// for some kernels at some sizes (BENCHMARKS.md); AVX-512 can be chosen
    /// by name.
    pub const ALL: [Backend; 4] = [
        Backend::Avx2,
        Backend::Avx512,
        Backend::Neon,
        Backend::Scalar,
    ];

    /// The name used in config, logs and `tallyd_kernel_backend_info{backend}`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Backend::Scalar => "scalar",
            Backend::Avx2 => "avx2",
            Backend::Avx512 => "avx512",
            Backend::Neon => "neon",
        }
    }

    /// True when this CPU can run the backend.
    pub fn is_available(self) -> bool {
        detected().contains(&self)
    }

    /// The preferred backend this CPU can run (detected once, then cached).
    pub fn best() -> Backend {
        detected()[0]
    }

    /// Every backend this CPU can run, fastest first.
    pub fn supported() -> &'static [Backend] {
        detected()
    }

    /// The preferred SIMD backend this CPU can run, if any.
    pub fn best_simd() -> Option<Backend> {
        Some(Backend::best()).filter(|b| *b != Backend::Scalar)
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The backends this CPU supports, preferred first, ending with `Scalar`.
fn detected() -> &'static [Backend] {
    static DETECTED: OnceLock<Vec<Backend>> = OnceLock::new();
    DETECTED.get_or_init(|| {
        let scalar_only = std::env::var(KERNEL_ENV).is_ok_and(|v| v == "scalar");
        Backend::ALL
            .into_iter()
            .filter(|&backend| backend == Backend::Scalar || !scalar_only && cpu_supports(backend))
            .collect()
    })
}

fn cpu_supports(backend: Backend) -> bool {
    match backend {
        Backend::Scalar => true,
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2 => std::is_x86_feature_detected!("avx2"),
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512 => std::is_x86_feature_detected!("avx512f"),
        #[cfg(target_arch = "aarch64")]
        Backend::Neon => std::arch::is_aarch64_feature_detected!("neon"),
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

/// `aggregation.kernel`: how the backend is picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelChoice {
    /// The fastest backend the CPU supports.
    #[default]
    Auto,
    /// The scalar reference, whatever the CPU.
    Scalar,
    /// The fastest SIMD backend; an error on a CPU with none.
    Simd,
    /// One backend by name (from `TALLYD_KERNEL` only); an error if unsupported.
    #[serde(skip)]
    Exactly(Backend),
}

/// A backend name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown kernel {0:?}: expected auto, scalar, simd, avx2, avx512 or neon")]
pub struct UnknownKernel(pub String);

/// Why a kernel choice cannot be met on this CPU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// The name is not a backend.
    #[error(transparent)]
    Unknown(#[from] UnknownKernel),
    /// `simd` on a CPU without any SIMD backend.
    #[error("this CPU has no SIMD backend (AVX2, AVX-512 or NEON); use auto or scalar")]
    NoSimd,
    /// A backend the CPU cannot run.
    #[error("this CPU cannot run the {backend} backend; it supports {supported}")]
    Unsupported {
        /// The backend asked for.
        backend: Backend,
        /// The backends this CPU runs, comma-separated.
        supported: String,
    },
}

/// A kernel choice that cannot be met, naming the setting that asked for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    /// `TALLYD_KERNEL` names a backend this CPU cannot run.
    #[error("{KERNEL_ENV}={value}: {reason}")]
    Environment {
        /// The variable's value.
        value: String,
        /// Why it cannot be met.
        reason: Unavailable,
    },
    /// `aggregation.kernel` names a backend this CPU cannot run.
    #[error("aggregation.kernel: {0}")]
    Config(Unavailable),
}

impl FromStr for KernelChoice {
    type Err = UnknownKernel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(KernelChoice::Auto),
            "scalar" => Ok(KernelChoice::Scalar),
            "simd" => Ok(KernelChoice::Simd),
            _ => Backend::ALL
                .into_iter()
                .find(|b| b.as_str() == s)
                .map(KernelChoice::Exactly)
                .ok_or_else(|| UnknownKernel(s.to_owned())),
        }
    }
}

impl KernelChoice {
    /// The backend this choice means on this CPU, or why there is none.
    pub fn resolve(self) -> Result<Backend, Unavailable> {
        match self {
            KernelChoice::Auto => Ok(Backend::best()),
            KernelChoice::Scalar => Ok(Backend::Scalar),
            KernelChoice::Simd => Backend::best_simd().ok_or(Unavailable::NoSimd),
            KernelChoice::Exactly(backend) if backend.is_available() => Ok(backend),
            KernelChoice::Exactly(backend) => Err(Unavailable::Unsupported {
                backend,
                supported: detected()
                    .iter()
                    .map(|b| b.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The backend `configured` (`aggregation.kernel`) picks on this CPU, unless
    /// `TALLYD_KERNEL` is set; an error names which of the two could not be met.
    pub fn resolve_with_env(configured: KernelChoice) -> Result<(Backend, Source), ChoiceError> {
        match std::env::var(KERNEL_ENV) {
            Ok(value) if !value.is_empty() => value
                .parse::<KernelChoice>()
                .map_err(Unavailable::from)
                .and_then(KernelChoice::resolve)
                .map(|backend| (backend, Source::Environment))
                .map_err(|reason| ChoiceError::Environment { value, reason }),
            _ => configured
                .resolve()
                .map(|backend| (backend, Source::Config))
                .map_err(ChoiceError::Config),
        }
    }
}

/// Where the kernel choice came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `aggregation.kernel` (or its default).
    Config,
    /// The `TALLYD_KERNEL` environment variable.
    Environment,
}

impl Source {
    /// The name of the setting, for logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Config => "aggregation.kernel",
            Source::Environment => KERNEL_ENV,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_is_always_available_and_last() {
        assert!(Backend::Scalar.is_available());
        assert_eq!(detected().last(), Some(&Backend::Scalar));
    }

    #[test]
    fn names_parse_back_to_their_choice() {
        for backend in Backend::ALL {
            let parsed: KernelChoice = backend.as_str().parse().unwrap();
            let expected = match backend {
                Backend::Scalar => KernelChoice::Scalar,
                other => KernelChoice::Exactly(other),
            };
            assert_eq!(parsed, expected);
        }
        assert_eq!("simd".parse(), Ok(KernelChoice::Simd));
        assert!(
            "sse9"
                .parse::<KernelChoice>()
                .unwrap_err()
                .to_string()
                .contains("expected auto, scalar, simd")
        );
    }

    #[test]
    fn an_unsupported_backend_is_refused_with_what_the_cpu_has() {
        let missing = Backend::ALL.into_iter().find(|b| !b.is_available());
        if let Some(backend) = missing {
            let error = KernelChoice::Exactly(backend).resolve().unwrap_err();
            assert!(error.to_string().contains("supports"), "{error}");
        }
        assert_eq!(KernelChoice::Scalar.resolve(), Ok(Backend::Scalar));
    }
}
