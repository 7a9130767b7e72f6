//! Starting and stopping the threads of the pipeline: shards and UDP receivers.
//!
//! Order matters in both directions. Up: shards first (so queues have a
//! consumer), then sockets, then receivers. Down: receivers stop and flush their
//! batches; dropping the last queue sender tells each shard to drain its queue,
//! close the open window and publish it; only then are the shards joined. Nothing
//! accepted before the stop is lost on the way out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use anyhow::Context;
use crossbeam_channel::Sender;

use crate::codec::Decoder;
use crate::config::Config;
use crate::ingest::udp::{self, Receiver};
use crate::shard::{Batch, BatchPool, Router, ShardContext, spawn_shard};
use crate::telemetry::Telemetry;

/// Batches each shard queue holds: 256 x 1,024 samples is about 25 ms of work for a
/// shard at 10M samples/s, enough to ride out scheduling pauses of a core shared
/// with receivers, and about 29 MiB (113 KiB a batch) queued per shard at worst.
pub const QUEUE_BATCHES: usize = 256;

/// The running threads of the pipeline.
pub struct Pipeline {
    shards: Vec<JoinHandle<()>>,
    receivers: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    /// The shard queues' senders; every transport routes through clones of them.
    queues: Vec<Sender<Batch>>,
    /// The UDP addresses bound, ports resolved.
    pub udp_addrs: Vec<SocketAddr>,
}

impl Pipeline {
    /// Starts the shards and, for each `listen.udp` address, its receiving threads.
    pub fn start(
        config: &Config,
        context: ShardContext,
        telemetry: &Arc<Telemetry>,
    ) -> anyhow::Result<Self> {
        let shard_count = telemetry.shards.len();
        let mut queues: Vec<Sender<Batch>> = Vec::with_capacity(shard_count);
        let mut shards = Vec::with_capacity(shard_count);
        for index in 0..shard_count {
            let (sender, receiver) = crossbeam_channel::bounded(QUEUE_BATCHES);
            queues.push(sender);
            shards.push(
                spawn_shard(index, context.clone(), receiver)
                    .context("cannot start a shard thread")?,
            );
        }
        let mut pipeline = Pipeline {
            shards,
            receivers: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            queues,
            udp_addrs: Vec::new(),
        };
        if let Err(err) = pipeline.start_udp(config, &context.pool, telemetry) {
            pipeline.stop();
            return Err(err);
        }
        Ok(pipeline)
    }

    fn start_udp(
        &mut self,
        config: &Config,
        pool: &BatchPool,
        telemetry: &Arc<Telemetry>,
    ) -> anyhow::Result<()> {
        let threads = config.listen.udp_threads.resolve().get();
        let wanted_buffer =
            usize::try_from(config.listen.udp_recv_buffer.bytes()).unwrap_or(usize::MAX);
        let max_datagram_bytes =
            usize::try_from(config.limits.max_datagram_bytes.bytes()).unwrap_or(usize::MAX);
        for addr in config.listen.udp.iter() {
            let group = udp::bind_group(addr, threads, wanted_buffer)
                .with_context(|| format!("cannot bind UDP {addr} (listen.udp)"))?;
            if group.recv_buffer < wanted_buffer {
                tracing::warn!(
                    address = %group.local_addr,
                    wanted = wanted_buffer,
                    granted = group.recv_buffer,
                    "UDP receive buffer capped by net.core.rmem_max; raise the sysctl or grant CAP_NET_ADMIN"
                );
            }
            tracing::info!(
                address = %group.local_addr,
                sockets = group.sockets.len(),
                recv_buffer = group.recv_buffer,
                "UDP listener bound"
            );
            self.udp_addrs.push(group.local_addr);
            for socket in group.sockets {
                if let Some(inode) = udp::socket_inode(&socket)
                    && let Ok(mut inodes) = telemetry.udp_socket_inodes.lock()
                {
                    inodes.push(inode);
                }
                let receiver = Receiver {
                    socket,
                    router: Router::new(self.queues.clone(), pool.clone()),
                    decoder: Decoder::new(max_datagram_bytes),
                    max_datagram_bytes,
                    telemetry: telemetry.clone(),
                    stop: self.stop.clone(),
                };
                let index = self.receivers.len();
                self.receivers.push(
                    udp::spawn_receiver(index, receiver)
                        .context("cannot start a UDP receiving thread")?,
                );
            }
        }
        Ok(())
    }

    /// Stops receiving, then lets every shard publish its open window, and waits.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for receiver in self.receivers {
            let _ = receiver.join();
        }
        // With the receivers' routers gone, these are the last queue senders: once
        // they are dropped each shard drains its queue and closes its window.
        drop(self.queues);
        for shard in self.shards {
            let _ = shard.join();
        }
    }
}
