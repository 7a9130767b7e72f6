//! Property tests of the web configuration loader and the servers built from
//! it: files assembled from every key exporter-toolkit has, with valid and
//! invalid values mixed, plus unknown keys and broken YAML. Whatever the file,
//! loading never panics; a file that loads says the same thing after a round
//! trip through YAML; building TLS, auth and the rate limit from it never
//! panics either (certificates that cannot be read or parsed are errors).

use std::path::Path;

use proptest::prelude::*;

use super::WebSecurity;
use crate::config::{WebFile, parse_web_file};

/// A value for a key: mostly what the key accepts, sometimes not.
fn one_of(valid: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(valid).prop_map(str::to_owned),
        1 => "[a-zA-Z0-9 _:\\-]{0,12}",
    ]
}

/// PEM text, well formed or not.
fn pem() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_owned()),
        Just("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n".to_owned()),
        "[ -~]{0,40}",
    ]
}

/// A PEM item inline (`inline`) or as a file (`file`); now and then both or
/// neither, which is refused.
fn source(inline: &'static str, file: &'static str) -> impl Strategy<Value = String> {
    let path = one_of(&["cert.pem", "/nonexistent/key.pem", ""]);
    (0u8..10, pem(), path).prop_map(move |(pick, pem, path)| match pick {
        0 => String::new(),
        1 => format!(
            "  {inline}: {}\n  {file}: {}\n",
            quoted(&pem),
            quoted(&path)
        ),
        2..=5 => format!("  {inline}: {}\n", quoted(&pem)),
        _ => format!("  {file}: {}\n", quoted(&path)),
    })
}

fn tls_block() -> impl Strategy<Value = String> {
    (
        source("cert", "cert_file"),
        source("key", "key_file"),
        source("client_ca", "client_ca_file"),
        one_of(&[
            "NoClientCert",
            "RequestClientCert",
            "RequireAnyClientCert",
            "VerifyClientCertIfGiven",
            "RequireAndVerifyClientCert",
        ]),
        proptest::option::of(one_of(&["TLS12", "TLS13", "TLS10"])),
        proptest::collection::vec(
            one_of(&[
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
                "TLS_RSA_WITH_AES_128_CBC_SHA",
            ]),
            0..3,
        ),
        proptest::collection::vec(
            one_of(&["X25519", "CurveP256", "CurveP384", "CurveP521"]),
            0..3,
        ),
        proptest::collection::vec(one_of(&["example.com", "127.0.0.1", "::1"]), 0..3),
        any::<Option<bool>>(),
    )
        .prop_map(|(cert, key, ca, auth, min, suites, curves, sans, prefer)| {
            let verifies = auth.contains("Verify");
            let mut out = format!("tls_server_config:\n{cert}{key}");
            if verifies || auth.ends_with("Cert") && auth != "NoClientCert" {
                out += &ca;
            }
            out += &format!("  client_auth_type: {}\n", quoted(&auth));
            if let Some(min) = min {
                out += &format!("  min_version: {}\n", quoted(&min));
            }
            out += &format!("  cipher_suites: {}\n", list(&suites));
            out += &format!("  curve_preferences: {}\n", list(&curves));
            if verifies {
                out += &format!("  client_allowed_sans: {}\n", list(&sans));
            }
            if let Some(prefer) = prefer {
                out += &format!("  prefer_server_cipher_suites: {prefer}\n");
            }
            out
        })
}

fn other_blocks() -> impl Strategy<Value = String> {
    let hash = prop_oneof![
        Just("$2y$10$GsKL0ym0OHa7M5/vbnVPZe0W9NdbzmH9PJGOu4ZmUwcTpw.L1fSdG".to_owned()),
        Just("$2b$04$tooshort".to_owned()),
        "[ -~]{0,20}",
    ];
    (
        proptest::collection::btree_map("[a-z:]{0,6}", hash, 0..3),
        proptest::option::of(one_of(&["deny", "sameorigin", "allow"])),
        proptest::option::of(one_of(&["nosniff", "sniff"])),
        proptest::option::of((one_of(&["1s", "0s", "100ms", "soon"]), 0u32..5)),
        any::<bool>(),
    )
        .prop_map(|(users, frame, sniff, rate, http2)| {
            let mut out = String::new();
            if !users.is_empty() {
                out += "basic_auth_users:\n";
                for (user, hash) in users {
                    out += &format!("  {}: {}\n", quoted(&user), quoted(&hash));
                }
            }
            out += &format!("http_server_config:\n  http2: {http2}\n  headers:\n");
            if let Some(frame) = frame {
                out += &format!("    X-Frame-Options: {}\n", quoted(&frame));
            }
            if let Some(sniff) = sniff {
                out += &format!("    X-Content-Type-Options: {}\n", quoted(&sniff));
            }
            if let Some((interval, burst)) = rate {
                out += &format!(
                    "rate_limit: {{ interval: {}, burst: {burst} }}\n",
                    quoted(&interval)
                );
            }
            out
        })
}

/// A YAML double-quoted scalar.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}

fn list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|i| quoted(i))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// What every generated file goes through.
fn load_and_build(text: &str) -> Option<WebFile> {
    let file = parse_web_file(text, "web.yml").ok()?;
    let _ = WebSecurity::from_file(&file, Path::new("/nonexistent"));
    Some(file)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_loaded_file_survives_a_round_trip_and_building_never_panics(
        tls in proptest::option::of(tls_block()),
        rest in other_blocks(),
    ) {
        let text = format!("{}{rest}", tls.unwrap_or_default());
        if let Some(file) = load_and_build(&text) {
            let again = file.to_yaml();
            let reloaded = parse_web_file(&again, "again.yml");
            prop_assert_eq!(reloaded.as_ref().ok(), Some(&file), "{}\n---\n{}", text, again);
        }
    }

    #[test]
    fn any_text_is_loaded_or_refused_without_a_panic(text in "[ -~\n]{0,200}") {
        load_and_build(&text);
    }

    #[test]
    fn an_unknown_key_is_refused_by_name(key in "[a-z_]{3,12}") {
        prop_assume!(
            !["tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"]
                .contains(&key.as_str())
        );
        let refused = parse_web_file(&format!("{key}: 1\n"), "web.yml").unwrap_err();
        prop_assert!(refused.to_string().contains(&key), "{}", refused);
    }
}
