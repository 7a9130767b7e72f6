//! Any bytes through the datagram decoder: no panic, offsets in range, values finite.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tallyd::codec::{Decoder, Message};

fuzz_target!(|data: &[u8]| {
    for item in Decoder::new(1024).lines(data) {
        match item {
            Ok(Message::Metric(m)) => {
                assert!(!m.name.is_empty());
                assert!(m.sample_rate > 0.0 && m.sample_rate <= 1.0);
                assert!(m.payload.samples().all(|s| s.value.is_finite()));
                let _ = m.tags.iter().count();
            }
            Ok(_) => {}
            Err(e) => assert!(e.offset < data.len()),
        }
    }
});
