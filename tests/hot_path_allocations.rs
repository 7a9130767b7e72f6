//! Allocation budget of the per-event path (decode, then series key): zero heap
//! blocks per line, for good and bad input.
//!
//! dhat replaces the global allocator in this test binary only, so the count is exact.

use tallyd::codec::{Decoder, Message};
use tallyd::series::KeyHasher;
use tallyd::workload::{Generator, Spec};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[test]
fn decoding_and_keying_good_and_bad_lines_allocates_nothing() {
    let _profiler = dhat::Profiler::builder().testing().build();

    let (mut datagrams, lines) = Generator::new(&Spec::default()).packed_datagrams(200);
    datagrams.push(
        b"bad\nfoo:nan|g\nfoo:1|c|@2\n\xff\xfe:1|c\n_e{5,4}:title|text\n_sc|db|1\nfoo:1:2:3|d|#a,b\n"
            .to_vec(),
    );
    let decoder = Decoder::new(65_535);
    let mut hasher = KeyHasher::new();
    // The scratch buffer grows once to the longest tag list; warm it up as ingest would.
    for datagram in &datagrams {
        for message in decoder.lines(datagram) {
            if let Ok(Message::Metric(m)) = message {
                hasher.key(m.kind, m.name, m.tags);
            }
        }
    }

    let before = dhat::HeapStats::get();
    let (mut metrics, mut other, mut rejected, mut checksum) = (0, 0, 0, 0.0);
    for datagram in &datagrams {
        for message in decoder.lines(datagram) {
            match message {
                Ok(Message::Metric(m)) => {
                    metrics += 1;
                    checksum += m.payload.samples().map(|s| s.value).sum::<f64>();
                    checksum += m.tags.iter().count() as f64;
                    checksum += hasher.key(m.kind, m.name, m.tags).shard(4) as f64;
                }
                Ok(_) => other += 1,
                Err(_) => rejected += 1,
            }
        }
    }
    let after = dhat::HeapStats::get();

    assert_eq!((metrics, other, rejected), (lines + 1, 2, 4));
    assert!(checksum > 0.0);
    dhat::assert_eq!(after.total_blocks, before.total_blocks);
}
