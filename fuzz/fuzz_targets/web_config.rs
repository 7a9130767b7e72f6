//! Any text through the web configuration loader (`web.config_file`), then
//! whatever loaded through the builder of TLS servers, basic auth and rate
//! limit: no panic, and a loaded file loads the same after a YAML round trip.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tallyd::config::parse_web_file;
use tallyd::web::WebSecurity;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(file) = parse_web_file(text, "fuzz") {
        let _ = WebSecurity::from_file(&file, Path::new("/nonexistent"));
        let again = file.to_yaml();
        assert_eq!(parse_web_file(&again, "again").ok(), Some(file));
    }
});
