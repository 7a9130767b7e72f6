//! The `tallyd` binary as an operator runs it: version, check-config, start-up errors.

use std::process::{Command, Output};

fn tallyd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tallyd"))
        .args(args)
        .output()
        .expect("tallyd runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write_config(yaml: &str) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    std::fs::write(file.path(), yaml).unwrap();
    file
}

#[test]
fn prints_its_version() {
    let out = tallyd(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("tallyd {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_config_accepts_the_shipped_file_and_prints_a_loadable_config() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/config/tallyd.yaml");
    let out = tallyd(&["check-config", shipped]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(printed.contains("interval: 10s"), "{printed}");
    let reparsed = tallyd::config::parse(&printed, "stdout").expect("printed config loads");
    assert_eq!(reparsed, tallyd::config::Config::default());
}

#[test]
fn check_config_names_file_line_and_key_of_a_broken_file() {
    let file = write_config("listen:\n  udp: []\nwindow:\n  interval: 10q\n");
    let path = file.path().display().to_string();
    let out = tallyd(&["check-config", &path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        text(&out.stderr).trim(),
        format!(
            r#"error: {path}:4:13: window.interval: "10q" is not a duration (use e.g. 10s, 1m)"#
        )
    );
}

#[test]
fn check_config_reports_a_missing_file() {
    let out = tallyd(&["check-config", "/nonexistent/tallyd.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read config file /nonexistent/tallyd.yaml"));
}

#[test]
fn refuses_to_start_on_an_invalid_config() {
    let file = write_config("shards: none\n");
    let out = tallyd(&["--config", &file.path().display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(":1:9: shards: "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn rejects_an_unknown_subcommand_with_usage() {
    let out = tallyd(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("Usage"));
}

#[test]
fn check_config_names_an_unknown_kernel() {
    let file = write_config("aggregation:\n  kernel: gpu\n");
    let out = tallyd(&["check-config", &file.path().display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("aggregation.kernel"), "{stderr}");
    assert!(stderr.contains("auto"), "{stderr}");
}

#[test]
fn refuses_to_start_on_an_unknown_kernel_override() {
    let file = write_config("listen:\n  udp: []\n  http: \"127.0.0.1:0\"\n");
    let out = Command::new(env!("CARGO_BIN_EXE_tallyd"))
        .args(["--config", &file.path().display().to_string()])
        .env("TALLYD_KERNEL", "sse9")
        .output()
        .expect("tallyd runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("TALLYD_KERNEL=sse9: unknown kernel"),
        "{stderr}"
    );
}

#[test]
fn check_config_names_file_line_and_key_of_a_broken_mapping_file() {
    let mapping = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    std::fs::write(
        mapping.path(),
        "mappings:\n- match: a.*\n  name: a\n  summary_options:\n    max_age: 30s\n",
    )
    .unwrap();
    let config = write_config(&format!(
        "mapping: {{ file: {} }}\n",
        mapping.path().display()
    ));
    let out = tallyd(&["check-config", config.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    let expected = format!(
        "{}:5:14: mappings[0].summary_options.max_age: ",
        mapping.path().display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    // The same file fails the daemon's start with the same message.
    let out = tallyd(&["--config", config.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&expected),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_config_reads_the_web_config_and_the_files_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    let config = write_config(&format!("web: {{ config_file: {} }}\n", web.display()));
    let check = || {
        let out = tallyd(&["check-config", config.path().to_str().unwrap()]);
        (out.status.success(), text(&out.stderr))
    };
    std::fs::write(&web, "basic_auth_users: { ops: plain-text }\n").unwrap();
    let (ok, stderr) = check();
    assert!(!ok);
    assert!(stderr.contains("basic_auth_users"), "{stderr}");
    assert!(stderr.contains("not a bcrypt hash"), "{stderr}");
    // The shape is right, but the certificate it names is not there.
    std::fs::write(
        &web,
        "tls_server_config: { cert_file: missing.crt, key_file: missing.key }\n",
    )
    .unwrap();
    let (ok, stderr) = check();
    assert!(!ok);
    assert!(stderr.contains("missing.crt"), "{stderr}");
    std::fs::write(
        &web,
        "http_server_config: { headers: { X-Frame-Options: deny } }\n",
    )
    .unwrap();
    let (ok, stderr) = check();
    assert!(ok, "{stderr}");
}
