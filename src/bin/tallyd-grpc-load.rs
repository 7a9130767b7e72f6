//! `tallyd-grpc-load`: pushes batches to tallyd's gRPC API over one connection
//! and prints the accepted rate as JSON.
//!
//! One batch (`--batch-events` values spread over `--series` series, counters
//! and timers) is built before the clock starts and pushed again and again,
//! either as one client stream of batches (`--mode stream`) or as unary calls,
//! `--in-flight` at a time on the same HTTP/2 connection (`--mode unary`).

use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use tallyd::ingest::proto::ingest_client::IngestClient;
use tallyd::ingest::proto::{Batch, Metric, MetricType};
use tokio::task::JoinSet;

/// Push load to tallyd's gRPC ingest API.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// gRPC address, e.g. 127.0.0.1:8126.
    #[arg(long)]
    target: String,
    /// Values per batch.
    #[arg(long, default_value_t = 10_000)]
    batch_events: usize,
    /// Series per batch; the values are spread evenly over them.
    #[arg(long, default_value_t = 100)]
    series: usize,
    /// How long to push.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// `stream` (client-streaming Push) or `unary` (PushBatch calls).
    #[arg(long, value_enum, default_value_t = Mode::Stream)]
    mode: Mode,
    /// Unary calls in flight at once on the one connection.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Stream,
    Unary,
}

fn batch(events: usize, series: usize) -> Batch {
    let series = series.clamp(1, events.max(1));
    let metrics = (0..series)
        .map(|i| {
            let share = events / series + usize::from(i < events % series);
            let kind = if i % 2 == 0 {
                MetricType::Counter
            } else {
                MetricType::Timer
            };
            Metric {
                name: format!("grpc.bench.metric{i}"),
                tags: vec!["env:bench".into(), format!("host:h{}", i % 16)],
                r#type: kind as i32,
                values: (0..share)
                    .map(|v| ((v * 37) % 1000) as f64 / 10.0)
                    .collect(),
                sample_rate: 0.0,
                set_members: Vec::new(),
            }
        })
        .collect();
    Batch { metrics }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let batch = batch(args.batch_events, args.series);
    let client = IngestClient::connect(format!("http://{}", args.target))
        .await?
        .max_encoding_message_size(64 << 20);
    let started = Instant::now();
    let deadline = started + args.duration;
    let (mut batches, mut accepted, mut rejected) = (0u64, 0u64, 0u64);
    match args.mode {
        Mode::Stream => {
            let template = batch.clone();
            let (sender, receiver) = tokio::sync::mpsc::channel::<Batch>(8);
            let producer = tokio::spawn(async move {
                let mut sent = 0u64;
                while Instant::now() < deadline {
                    if sender.send(template.clone()).await.is_err() {
                        break;
                    }
                    sent += 1;
                }
                sent
            });
            let summary = client
                .clone()
                .push(tokio_stream::wrappers::ReceiverStream::new(receiver))
                .await?
                .into_inner();
            batches = producer.await?;
            accepted += summary.accepted;
            rejected += summary.rejected;
        }
        Mode::Unary => {
            let mut calls = JoinSet::new();
            while Instant::now() < deadline {
                while calls.len() < args.in_flight {
                    let mut client = client.clone();
                    let batch = batch.clone();
                    calls.spawn(async move { client.push_batch(batch).await });
                    batches += 1;
                }
                if let Some(done) = calls.join_next().await {
                    let summary = done??.into_inner();
                    accepted += summary.accepted;
                    rejected += summary.rejected;
                }
            }
            while let Some(done) = calls.join_next().await {
                let summary = done??.into_inner();
                accepted += summary.accepted;
                rejected += summary.rejected;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "mode": format!("{:?}", args.mode).to_lowercase(),
            "batch_events": args.batch_events,
            "series_per_batch": args.series,
            "batches": batches,
            "events_sent": batches * args.batch_events as u64,
            "accepted": accepted,
            "rejected": rejected,
            "seconds": (seconds * 1000.0).round() / 1000.0,
            "accepted_per_second": (accepted as f64 / seconds).round(),
        })
    );
    Ok(())
}
