//! Bringing the daemon up and down: the one place that sees every component.
//!
//! `app` owns start-up order and shutdown order; components never start each other.
//! Up: logging, store, push sinks, shards, then ingest (`ingest::start`, fed through one
//! `Inlet` into the shard queues), the HTTP listener, then readiness. Down, on
//! SIGTERM or SIGINT: ingest stops (`Ingest::stop`), the shards drain their
//! queues and publish the open window, the push sinks send it and what they
//! hold (up to a deadline), then HTTP stops and the process exits 0.
//! SIGHUP (and `POST /-/reload`) re-reads the config file ([`Reloader`]).
//! Errors here are `anyhow`, since they end the process with a message for the
//! operator rather than being handled.

mod reload;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

use crate::config::Config;
use crate::gpu::Offload;
use crate::http::{HttpState, serve};
use crate::ingest::{self, Inlet};
use crate::kernels::{Backend, Kernels};
use crate::shard::{
    BatchPool, LiveMapping, QUEUE_BATCHES, ShardContext, ShardSettings, Shards, SystemClock,
    Windowing,
};
use crate::sinks::{SHUTDOWN_GRACE, Sinks};
use crate::store::Store;
use crate::telemetry::{ConnectionListener, Telemetry};
use crate::web::{ConnectionLimit, LiveWeb};

pub use reload::{ReloadError, ReloadOutcome, Reloader};

/// Runs the daemon with `config` (read from `path`, which SIGHUP and
/// `POST /-/reload` re-read) until SIGTERM or SIGINT.
pub fn run(config: Config, path: Option<PathBuf>) -> anyhow::Result<()> {
    crate::telemetry::init_logging(&config.logging)
        .map_err(|e| anyhow::anyhow!(e))
        .context("cannot set up logging (check RUST_LOG)")?;
    // HTTP and signals are the only async parts: one runtime thread is plenty, and
    // keeps every core for receivers and shards.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("tallyd-http")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_daemon(config, path))
}

async fn run_daemon(config: Config, path: Option<PathBuf>) -> anyhow::Result<()> {
    let shards = config.shards.resolve().get();
    let telemetry = Arc::new(Telemetry::new(shards));
    let (kernels, source) = Kernels::choose(config.aggregation.kernel)?;
    tracing::info!(
        backend = %kernels.backend(),
        chosen_by = source.as_str(),
        supported = %Backend::supported().iter().map(|b| b.as_str()).collect::<Vec<_>>().join(","),
        "kernel backend chosen"
    );
    let _ = telemetry.kernel_backend.set(kernels.backend());
    let mapper = crate::mapping::load(&config)?.map(Arc::new);
    if let Some(mapper) = &mapper {
        tracing::info!(rules = mapper.rules().len(), "mapping file loaded");
    }
    // Certificates and users are read before anything starts: a bad file stops
    // the start with nothing to undo.
    let web = LiveWeb::start(&config.web)?;
    tracing::info!(security = %web.current().describe(), "web configuration in force");
    let mut settings =
        ShardSettings::from_config(&config, shards, kernels).with_mapping(mapper.as_deref());
    let offload = Offload::start(
        &config.gpu,
        kernels,
        settings.tuning.series.quantiles.to_vec(),
        telemetry.clone(),
    );
    settings.offload = Some(offload);
    let store = Arc::new(Store::new(shards, config.window.retain.get() as usize));
    // Subscribed before the shards start, so no window is missed.
    let sinks = Sinks::start(&config, &store, &telemetry)?;
    let context = ShardContext {
        store: store.clone(),
        telemetry: telemetry.clone(),
        clock: Arc::new(SystemClock),
        windowing: Windowing::new(config.window.interval.get()),
        pool: BatchPool::new(shards * QUEUE_BATCHES),
        settings,
    };
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;

    let http_addr = config.listen.http.get();
    let http_listener = TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("cannot bind HTTP {http_addr} (listen.http)"))?;
    let http_addr = http_listener.local_addr()?;
    let (shard_threads, queues) = Shards::start(&context).context("cannot start a shard thread")?;
    let mapping = LiveMapping::new(mapper);
    let inlet = Inlet::new(
        queues,
        context.pool.clone(),
        telemetry.clone(),
        mapping.clone(),
    );
    let ingest = match ingest::start(&config, inlet, web.clone()) {
        Ok(ingest) => ingest,
        Err(err) => {
            // The inlet is gone with the failed start: the shards end.
            shard_threads.join();
            sinks.stop(Duration::ZERO);
            return Err(err.into());
        }
    };

    let reloader = Arc::new(Reloader::new(
        path,
        config.clone(),
        context.clone(),
        mapping,
        web.clone(),
    ));
    let mut http_state = HttpState::new(store, telemetry.clone(), web);
    let hook = reloader.clone();
    http_state.reload = Some(Box::new(move || {
        hook.reload()
            .map(|outcome| serde_json::to_value(outcome).unwrap_or_default())
            .map_err(Into::into)
    }));
    let state = Arc::new(http_state);
    let (stop_http, http_stopped) = tokio::sync::watch::channel(false);
    let http_connections = ConnectionLimit::new(
        config.limits.max_connections,
        ConnectionListener::Http,
        telemetry.clone(),
    );
    let http = tokio::spawn(serve(http_listener, state, http_connections, http_stopped));

    telemetry.listeners_ready.store(true, Ordering::Release);
    let bound = &ingest.bound;
    let join = |addrs: &[std::net::SocketAddr]| {
        addrs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let unix: Vec<String> = bound.unix.iter().map(|p| p.display().to_string()).collect();
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        http = %http_addr,
        udp = %join(&bound.udp),
        tcp = %join(&bound.tcp),
        unix = %unix.join(","),
        grpc = %bound.grpc.map(|a| a.to_string()).unwrap_or_default(),
        shards,
        interval = %config.window.interval,
        "ready"
    );

    let signal = loop {
        tokio::select! {
            _ = terminate.recv() => break "SIGTERM",
            _ = interrupt.recv() => break "SIGINT",
            _ = hangup.recv() => {
                let reloader = reloader.clone();
                // Errors are logged by the reloader; the daemon goes on either way.
                let _ = tokio::task::spawn_blocking(move || reloader.reload()).await;
            }
        }
    };
    tracing::info!(signal, "stopping: closing the open window");
    telemetry.listeners_ready.store(false, Ordering::Release);
    tokio::task::spawn_blocking(move || {
        ingest.stop();
        shard_threads.join();
        // The last window is published: the sinks send it and what they hold.
        sinks.stop(SHUTDOWN_GRACE);
    })
    .await
    .context("shutdown of ingest and the shards failed")?;
    let _ = stop_http.send(true);
    let _ = http.await;
    tracing::info!("stopped");
    Ok(())
}
