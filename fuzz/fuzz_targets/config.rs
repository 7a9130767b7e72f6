//! Any text through the config loader: no panic, and an accepted config prints as
//! YAML that loads back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(config) = tallyd::config::parse(text, "fuzz") {
        let printed = config.to_yaml();
        assert_eq!(tallyd::config::parse(&printed, "printed").ok(), Some(config));
    }
});
