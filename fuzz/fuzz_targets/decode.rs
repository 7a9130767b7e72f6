//! Any bytes through the datagram decoder, with every tag style on: no panic,
//! offsets in range, values finite, names non-empty, tags from the name paired.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tallyd::codec::{Decoder, Message, TagStyles};

fuzz_target!(|data: &[u8]| {
    let all = TagStyles::DOGSTATSD
        .with(TagStyles::INFLUXDB)
        .with(TagStyles::LIBRATO)
        .with(TagStyles::SIGNALFX)
        .with(TagStyles::GRAPHITE);
    for decoder in [Decoder::new(1024), Decoder::new(1024).with_tag_styles(all)] {
        for item in decoder.lines(data) {
            match item {
                Ok(Message::Metric(m)) => {
                    assert!(!m.name.is_empty());
                    assert!(m.sample_rate > 0.0 && m.sample_rate <= 1.0);
                    assert!(m.payload.samples().all(|s| s.value.is_finite()));
                    let _ = m.tags.iter().count();
                    assert!(m.tags.named().all(|t| t.split_once('=').is_some_and(
                        |(k, v)| !k.is_empty() && !v.is_empty() && !t.contains(',')
                    )));
                }
                Ok(_) => {}
                Err(e) => assert!(e.offset < data.len()),
            }
        }
    }
});
