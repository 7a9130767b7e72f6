//! Push sinks: closed windows sent to the storage users already run.
//!
//! Each sink runs on its own thread with its own small async runtime, fed by
//! the store's window listener through an unbounded channel: the shard that
//! completes a window only hands an `Arc` on, so a slow or dead target never
//! blocks ingest, the shards or `/metrics`. Every sink is an encoder and a
//! transport delivered by one design ([`delivery`]): a bounded queue
//! ([`queue`]), ordered chunks, retries that back off ([`backoff`]), one set
//! of counters. Shutdown gives the sinks a deadline to send the last window
//! and what is queued; anything left then is counted.
//!
//! Sinks: Prometheus remote write ([`remote_write`]), Graphite plaintext
//! ([`graphite`]), OTLP ([`otlp`]).

pub mod backoff;
pub mod connect;
pub mod delivery;
pub mod graphite;
pub mod otlp;
pub mod queue;
pub mod remote_write;

use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::store::{Store, WindowSnapshot};
use crate::telemetry::Telemetry;

pub use connect::ClientError;
pub use graphite::GraphiteSink;
pub use otlp::OtlpSink;
pub use remote_write::{RemoteWriteSink, SHUTDOWN_GRACE};

/// The windows a sink receives, and when it must stop.
type SinkInputs = (
    mpsc::UnboundedReceiver<Arc<WindowSnapshot>>,
    watch::Receiver<Option<Instant>>,
);

/// Why the sinks could not start.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A target could not be set up.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A sink thread could not be started.
    #[error("cannot start a sink thread: {0}")]
    Thread(std::io::Error),
}

/// The running sinks.
pub struct Sinks {
    threads: Vec<JoinHandle<()>>,
    stop: watch::Sender<Option<Instant>>,
    stopped: watch::Receiver<Option<Instant>>,
}

impl Sinks {
    /// Starts every configured sink, each subscribed to `store`'s windows.
    pub fn start(
        config: &Config,
        store: &Store,
        telemetry: &Arc<Telemetry>,
    ) -> Result<Self, SinkError> {
        let (stop, stopped) = watch::channel(None);
        let mut sinks = Sinks {
            threads: Vec::new(),
            stop,
            stopped,
        };
        for remote_write in &config.remote_write {
            let name = remote_write.sink_name();
            let stats = telemetry.sinks.register(name.clone());
            let sink = RemoteWriteSink::new(
                remote_write,
                &config.external_labels,
                telemetry.clone(),
                stats,
            )?;
            sinks.spawn(store, |(windows, stop)| sink.run(windows, stop))?;
            tracing::info!(sink = %name, url = remote_write.url.as_str(), "remote_write sink started");
        }
        for graphite in &config.graphite {
            let name = graphite.sink_name();
            let stats = telemetry.sinks.register(name.clone());
            let sink = GraphiteSink::new(graphite, telemetry.clone(), stats);
            sinks.spawn(store, |(windows, stop)| sink.run(windows, stop))?;
            tracing::info!(sink = %name, address = graphite.address.as_str(), "graphite sink started");
        }
        for otlp in &config.otlp_export {
            let name = otlp.sink_name();
            let stats = telemetry.sinks.register(name.clone());
            let sink = OtlpSink::new(otlp, stats)?;
            sinks.spawn(store, |(windows, stop)| sink.run(windows, stop))?;
            tracing::info!(sink = %name, endpoint = otlp.endpoint.as_str(), "otlp_export sink started");
        }
        Ok(sinks)
    }

    /// Runs one sink on its own thread and runtime, fed `store`'s windows.
    fn spawn<F>(
        &mut self,
        store: &Store,
        run: impl FnOnce(SinkInputs) -> F + Send + 'static,
    ) -> Result<(), SinkError>
    where
        F: Future<Output = ()>,
    {
        let (windows, received) = mpsc::unbounded_channel();
        let stopped = self.stopped.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(SinkError::Thread)?;
        let thread = std::thread::Builder::new()
            .name(format!("tallyd-sink-{}", self.threads.len()))
            .spawn(move || runtime.block_on(run((received, stopped))))
            .map_err(SinkError::Thread)?;
        self.threads.push(thread);
        store.subscribe(Box::new(move |window| {
            // A sink that ended (at shutdown) takes no more windows.
            let _ = windows.send(window.clone());
        }));
        Ok(())
    }

    /// Lets every sink send what it holds for up to `grace`, then waits for
    /// them to end. Call after the last window is published.
    pub fn stop(self, grace: Duration) {
        let _ = self.stop.send(Some(Instant::now() + grace));
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}
