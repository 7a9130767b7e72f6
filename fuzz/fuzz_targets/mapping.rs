//! Any text through the mapping file loader, then a few names through what
//! loaded: no panic, and a mapped name is never empty.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tallyd::codec::MetricType;
use tallyd::mapping::Mapping;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(mapper) = tallyd::mapping::parse(text, "fuzz", true) {
        for name in ["a.b.c", "a", "", "..", "x.y-z.w", "a.b.c.d.e.f"] {
            for kind in [MetricType::Counter, MetricType::Timer, MetricType::Set] {
                if let Mapping::Map(mapped) = mapper.map(kind, name) {
                    assert!(!mapped.name.is_empty());
                }
            }
        }
    }
});
