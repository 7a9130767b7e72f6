//! The `tallyd` command line: parse arguments, load the config, hand over to `app`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tallyd::config::{self, Config};

#[cfg(feature = "dhat-heap")]
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[cfg(all(feature = "jemalloc", not(feature = "dhat-heap")))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A fast, exact StatsD/DogStatsD metrics aggregation daemon.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Config file (YAML). Without it, the built-in defaults are used; they are the
    /// values in config/tallyd.yaml.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// GET /healthz from a running tallyd; exit 0 when it answers 200 (for
    /// container health checks, where no curl exists).
    Healthcheck {
        /// The HTTP address (listen.http).
        #[arg(long, default_value = "127.0.0.1:9102")]
        addr: String,
    },
    /// Validate a config file and print the effective config; exit 1 if it is invalid.
    CheckConfig {
        /// The file to check.
        path: PathBuf,
    },
}

fn main() -> ExitCode {
    #[cfg(feature = "dhat-heap")]
    let _profiler = dhat::Profiler::new_heap();

    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig { path }) => check_config(&path),
        Some(Command::Healthcheck { addr }) => {
            match tallyd::http::probe(&addr, "/healthz", std::time::Duration::from_secs(3)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("unhealthy: {err}");
                    ExitCode::FAILURE
                }
            }
        }
        None => run(cli.config.as_deref()),
    }
}

fn check_config(path: &std::path::Path) -> ExitCode {
    match config::load_file(path).and_then(|config| {
        tallyd::mapping::load(&config)?;
        Ok(config)
    }) {
        Ok(config) => {
            print!("{}", config.to_yaml());
            eprintln!("{}: configuration is valid", path.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(path: Option<&std::path::Path>) -> ExitCode {
    let config = match path {
        Some(path) => match config::load_file(path) {
            Ok(config) => config,
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::FAILURE;
            }
        },
        None => Config::default(),
    };
    match tallyd::app::run(config, path.map(std::path::Path::to_path_buf)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
