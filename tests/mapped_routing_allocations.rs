//! Allocation budget of routing with a mapping file and every tag style on:
//! once each name has been seen, zero heap blocks per line.
//!
//! dhat replaces the global allocator in this test binary only (one test per
//! binary: dhat allows one profiler at a time), so the count is exact.

use tallyd::codec::{Decoder, Message};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Decode, key and route lines with every tag style on and a mapping file in force: once each name has been seen, routing a line allocates nothing
/// (the mapping's outcome is cached per name; batches are recycled).
#[test]
fn routing_mapped_and_tag_styled_lines_allocates_nothing_once_names_are_known() {
    use std::sync::Arc;

    use tallyd::codec::TagStyles;
    use tallyd::shard::{BatchPool, LiveMapping, Router};
    use tallyd::telemetry::LocalTally;

    let _profiler = dhat::Profiler::builder().testing().build();

    let mapping = "mappings:\n\
        - match: 'api.*.*'\n  name: 'api_${2}'\n  labels: {host: '$1'}\n\
        - match: 'api.*.honoured'\n  name: 'honoured'\n  honor_labels: true\n  labels: {env: 'x'}\n\
        - match: 'junk\\\\..*'\n  match_type: regex\n  action: drop\n  name: dropped\n";
    let mapper = tallyd::mapping::parse(mapping, "mapping.yaml", false).unwrap();
    let styles = TagStyles::DOGSTATSD
        .with(TagStyles::INFLUXDB)
        .with(TagStyles::GRAPHITE)
        .with(TagStyles::SIGNALFX);
    let decoder = Decoder::new(65_535).with_tag_styles(styles);
    let datagrams: Vec<Vec<u8>> = (0..50)
        .map(|i| {
            format!(
                "api.h{i}.hits:1|c|#env:prod\napi.h{i}.lat,az=a:{i}|ms\napi.h{i}.honoured;env=y:1|c\n\
                 junk.x{i}:1|c\n[dc=eu]plain.{i}:2|g|#k:v\nother.{i}:1|c"
            )
            .into_bytes()
        })
        .collect();
    let pool = BatchPool::new(64);
    let (sender, receiver) = crossbeam_channel::bounded(64);
    let mut router = Router::new(vec![sender], pool.clone());
    router.set_mapping(LiveMapping::new(Some(Arc::new(mapper))));
    let mut tally = LocalTally::default();
    let route_all = |router: &mut Router, tally: &mut LocalTally| {
        let mut routed = 0;
        for datagram in &datagrams {
            for message in decoder.lines(datagram) {
                if let Ok(Message::Metric(m)) = message {
                    router.route(&m, tally).unwrap();
                    routed += 1;
                }
            }
        }
        router.flush(tally);
        for batch in receiver.try_iter() {
            pool.give_back(batch);
        }
        routed
    };
    route_all(&mut router, &mut tally);

    let before = dhat::HeapStats::get();
    let routed = route_all(&mut router, &mut tally);
    let after = dhat::HeapStats::get();

    assert_eq!(routed, 300);
    dhat::assert_eq!(after.total_blocks, before.total_blocks);
}
