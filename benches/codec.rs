//! Decoder throughput on realistic packed datagrams: lines/s and bytes/s on one core.
//!
//! Run: `cargo bench --bench codec`. `lines_all_tag_styles` decodes the same
//! corpus with every `aggregation.tag_styles` style on. The corpus is 1,000 datagrams of up to 1432
//! bytes (about 35,000 lines of ~40 bytes, mixed c/g/ms/d, 0-6 tags) from the
//! seeded workload generator. Each iteration decodes the whole corpus and checks the
//! number of metrics decoded, so a decoder that skips work fails the bench.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tallyd::codec::{Decoder, Message, TagStyles};
use tallyd::workload::{Generator, Spec};

/// Decodes every datagram; returns the metric count and a checksum of what was read.
fn decode_corpus(decoder: &Decoder, datagrams: &[Vec<u8>]) -> (usize, f64) {
    let mut metrics = 0;
    let mut checksum = 0.0;
    for datagram in datagrams {
        for message in decoder.lines(datagram) {
            if let Ok(Message::Metric(m)) = message {
                metrics += 1;
                checksum += m.name.len() as f64 + m.tags.raw().len() as f64;
                checksum += m.payload.samples().map(|s| s.value).sum::<f64>();
            }
        }
    }
    (metrics, checksum)
}

fn bench_decode(c: &mut Criterion) {
    let (datagrams, lines) = Generator::new(&Spec::default()).packed_datagrams(1_000);
    let bytes: usize = datagrams.iter().map(Vec::len).sum();
    let decoder = Decoder::new(65_535);
    assert_eq!(
        decode_corpus(&decoder, &datagrams).0,
        lines,
        "every generated line decodes"
    );

    let mut group = c.benchmark_group("codec/decode");
    group.throughput(Throughput::Elements(lines as u64));
    group.bench_function("packed_1432B/lines", |b| {
        b.iter(|| {
            let (metrics, checksum) = decode_corpus(&decoder, black_box(&datagrams));
            assert_eq!(metrics, lines);
            black_box(checksum)
        })
    });
    // Every name style on: each name is scanned for `,` `#` `;` `[` as well.
    let styled = decoder.with_tag_styles(
        TagStyles::DOGSTATSD
            .with(TagStyles::INFLUXDB)
            .with(TagStyles::LIBRATO)
            .with(TagStyles::SIGNALFX)
            .with(TagStyles::GRAPHITE),
    );
    group.bench_function("packed_1432B/lines_all_tag_styles", |b| {
        b.iter(|| {
            let (metrics, checksum) = decode_corpus(&styled, black_box(&datagrams));
            assert_eq!(metrics, lines);
            black_box(checksum)
        })
    });
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("packed_1432B/bytes", |b| {
        b.iter(|| black_box(decode_corpus(&decoder, black_box(&datagrams))))
    });
    group.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
