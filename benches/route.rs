//! Routing throughput: decode, key and batch Graphite-style lines, with and
//! without a statsd_exporter mapping file, on one core.
//!
//! Run: `cargo bench --bench route`. The corpus is 1,000 datagrams of ~30
//! dotted names each (`app3.host-41.GET.users.requests:1|c`, 10 apps x 100
//! hosts x 4 methods x 10 endpoints, counters and timers). `unmapped` keys
//! them as received; `mapped_110_rules` maps every name with one of 20 glob rules
//! (`app3.*.*.*.requests` -> `app3_requests{host,method,endpoint}`) placed after
//! 90 rules that never match, so each name's first match walks 100 rules; the
//! per-line cost after a name is known is one cache probe. Each iteration
//! routes the corpus into one shard queue (as a receiving thread does, with
//! `ingest_buffer`), drains it, and checks the count.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crossbeam_channel::Receiver;
use tallyd::codec::Decoder;
use tallyd::ingest::ingest_buffer;
use tallyd::shard::{Batch, BatchPool, LiveMapping, Router};
use tallyd::telemetry::LocalTally;

fn corpus() -> (Vec<Vec<u8>>, usize) {
    let methods = ["GET", "PUT", "POST", "DELETE"];
    let mut datagrams = Vec::new();
    let mut lines = 0;
    let mut n = 0u64;
    for _ in 0..1_000 {
        let mut datagram = String::new();
        while datagram.len() < 1_400 {
            n = n
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = n >> 33;
            let (app, host, method, endpoint) = (
                r % 10,
                (r / 10) % 100,
                methods[((r / 1000) % 4) as usize],
                (r / 4000) % 10,
            );
            let line = if r.is_multiple_of(3) {
                format!(
                    "app{app}.host-{host}.{method}.e{endpoint}.latency:{}|ms\n",
                    r % 500
                )
            } else {
                format!("app{app}.host-{host}.{method}.e{endpoint}.requests:1|c\n")
            };
            datagram.push_str(&line);
            lines += 1;
        }
        datagrams.push(datagram.into_bytes());
    }
    (datagrams, lines)
}

fn mapping() -> String {
    let mut yaml = String::from("mappings:\n");
    for i in 0..90 {
        yaml.push_str(&format!("- match: 'never{i}.*.*.*.*'\n  name: never{i}\n"));
    }
    for app in 0..10 {
        for what in ["requests", "latency"] {
            yaml.push_str(&format!(
                "- match: 'app{app}.*.*.*.{what}'\n  name: app{app}_{what}\n  labels: {{host: '$1', method: '$2', endpoint: '$3'}}\n"
            ));
        }
    }
    yaml
}

fn route_corpus(
    router: &mut Router,
    decoder: &Decoder,
    datagrams: &[Vec<u8>],
    drain: &Receiver<Batch>,
    pool: &BatchPool,
) -> usize {
    let mut tally = LocalTally::default();
    let mut samples = 0;
    for datagram in datagrams {
        ingest_buffer(decoder, datagram, router, &mut tally);
        for batch in drain.try_iter() {
            samples += batch.samples.len();
            pool.give_back(batch);
        }
    }
    router.flush(&mut tally);
    for batch in drain.try_iter() {
        samples += batch.samples.len();
        pool.give_back(batch);
    }
    samples
}

fn bench_route(c: &mut Criterion) {
    let (datagrams, lines) = corpus();
    let decoder = Decoder::new(65_535);
    let mapper = tallyd::mapping::parse(&mapping(), "bench", false).unwrap();
    let mut group = c.benchmark_group("route");
    group.throughput(Throughput::Elements(lines as u64));
    for (label, mapper) in [
        ("unmapped", None),
        ("mapped_110_rules", Some(Arc::new(mapper))),
    ] {
        let pool = BatchPool::new(64);
        let (sender, receiver) = crossbeam_channel::bounded(64);
        let mut router = Router::new(vec![sender], pool.clone());
        router.set_mapping(LiveMapping::new(mapper));
        assert_eq!(
            route_corpus(&mut router, &decoder, &datagrams, &receiver, &pool),
            lines
        );
        group.bench_function(label, |b| {
            b.iter(|| {
                let routed = route_corpus(
                    &mut router,
                    &decoder,
                    black_box(&datagrams),
                    &receiver,
                    &pool,
                );
                assert_eq!(routed, lines);
                black_box(routed)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_route);
criterion_main!(benches);
