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
        /// Speak TLS (the web config's tls_server_config is in force).
        #[arg(long)]
        tls: bool,
        /// PEM CA certificates that sign tallyd's certificate (with --tls).
        /// Default: the system's roots.
        #[arg(long, value_name = "PATH", requires = "tls")]
        ca_file: Option<PathBuf>,
        /// A PEM client certificate, for a client_auth_type that asks for one.
        #[arg(long, value_name = "PATH", requires_all = ["tls", "key_file"])]
        cert_file: Option<PathBuf>,
        /// The client certificate's PEM private key.
        #[arg(long, value_name = "PATH", requires_all = ["tls", "cert_file"])]
        key_file: Option<PathBuf>,
        /// The name tallyd's certificate must carry. Default: the host of --addr.
        #[arg(long, value_name = "NAME", requires = "tls")]
        server_name: Option<String>,
        /// Accept any server certificate (a probe of one's own loopback
        /// address, say); the handshake still proves the server holds its key.
        #[arg(long, requires = "tls")]
        insecure_skip_verify: bool,
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
        Some(Command::Healthcheck {
            addr,
            tls,
            ca_file,
            cert_file,
            key_file,
            server_name,
            insecure_skip_verify,
        }) => {
            let probe_tls = tls.then(|| {
                let settings = config::TlsConfig {
                    ca_file,
                    cert_file,
                    key_file,
                    server_name: None,
                    insecure_skip_verify,
                };
                let host = addr
                    .rsplit_once(':')
                    .map_or(addr.as_str(), |(host, _)| host);
                let name = server_name
                    .as_deref()
                    .unwrap_or(host.trim_matches(['[', ']']));
                let config = tallyd::web::client_config(&settings)?;
                tallyd::http::ProbeTls::new(config, name)
            });
            let outcome = probe_tls.transpose().and_then(|tls| {
                let timeout = std::time::Duration::from_secs(3);
                tallyd::http::probe(&addr, "/healthz", timeout, tls.as_ref())
            });
            match outcome {
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

/// Loads the config and every file it names as a start would (the mapping
/// file; the web config with its certificates and users), changing nothing.
fn check_config(path: &std::path::Path) -> ExitCode {
    let checked = config::load_file(path)
        .and_then(|config| {
            tallyd::mapping::load(&config)?;
            Ok(config)
        })
        .map_err(|err| err.to_string())
        .and_then(|config| match &config.web.config_file {
            Some(web) => tallyd::web::WebSecurity::load(web)
                .map(|_| config)
                .map_err(|err| err.to_string()),
            None => Ok(config),
        });
    match checked {
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
