//! Reading a config file into a [`Config`], with errors that point at the problem.
//!
//! serde-saphyr parses the YAML (it refuses duplicate keys and alias bombs and knows
//! the line and column of every node); `serde_path_to_error` tracks the key path
//! while deserialising. Together they give messages of the form
//! `config/tallyd.yaml:12:5: window.interval: "10q" is not a duration (use e.g. 10s, 1m)`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::{MessageFormatter, UserMessageFormatter};

use super::model::Config;
use super::sinks::check_sinks;

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file asked for.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The mapping file (`mapping.file`) could not be read.
    #[error("cannot read mapping.file {}: {source}", path.display())]
    ReadMapping {
        /// The file named.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file was read but its content is not a valid config.
    #[error("{0}")]
    Invalid(InvalidConfig),
}

/// A config rejected at a position: where, which key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidConfig {
    /// The file name as given (or `<input>` for text).
    pub source_name: String,
    /// 1-based line and column of the offending node, when known.
    pub position: Option<(u64, u64)>,
    /// The dotted key path, e.g. `window.interval`; empty at the top level.
    pub key: String,
    /// What is wrong and, where possible, what to write instead.
    pub message: String,
}

impl fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source_name)?;
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Reads and validates the config file at `path`.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, &path.display().to_string()).map_err(ConfigError::Invalid)
}

/// Parses config text; `source_name` is used in error messages.
pub fn parse(text: &str, source_name: &str) -> Result<Config, InvalidConfig> {
    let config: Config = parse_yaml(text, source_name)?;
    check_sinks(&config).map_err(|(key, message)| InvalidConfig {
        source_name: source_name.to_owned(),
        position: None,
        key,
        message,
    })?;
    Ok(config)
}

/// Parses YAML text into any tree of the config's kind (the config itself, or
/// a file it names), with errors that give the file position and key path.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(
    text: &str,
    source_name: &str,
) -> Result<T, InvalidConfig> {
    let mut key = String::new();
    let options = serde_saphyr::options! { with_snippet: false };
    let result = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
            key = e.path().to_string();
            e.into_inner()
        })
    });
    result.map_err(|err| {
        let position = err
            .location()
            .filter(|l| l.line() > 0)
            .map(|l| (l.line(), l.column()));
        InvalidConfig {
            source_name: source_name.to_owned(),
            position,
            // `.` is the root and `?` an unknown place: neither names a key.
            key: if key == "." || key == "?" {
                String::new()
            } else {
                // Positions are kept by `Spanned` wrappers, which add a `value`
                // level no file has.
                let key = key.replace("].value", "]");
                key.strip_suffix(".value").map(str::to_owned).unwrap_or(key)
            },
            message: UserMessageFormatter.format_message(&err).into_owned(),
        }
    })
}

impl Config {
    /// The effective config as YAML, as `tallyd check-config` prints it.
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).expect("a loaded config always serialises")
    }
}
