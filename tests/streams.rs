//! TCP and Unix sockets on the real daemon: lines split across writes, the line
//! limit, counters per transport, connections, socket files, and backpressure.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};

use support::{Daemon, sample_in};

const SHORT_WINDOWS: &str = "window: { interval: 300ms, retain: 100 }";

/// The running total of counter `name`, once it reaches `expected`.
fn wait_for_total(daemon: &Daemon, name: &str, expected: f64) {
    daemon.wait_for(&format!("{name} to total {expected}"), || {
        let rollups = daemon.rollups(&format!("name={name}&windows=1"));
        rollups["windows"][0]["series"][0]["total"].as_f64() == Some(expected)
    });
}

fn tcp_addr(daemon: &Daemon) -> SocketAddr {
    daemon.ready["tcp"].as_str().unwrap().parse().unwrap()
}

fn transport_sample(daemon: &Daemon, name: &str, transport: &str) -> Option<f64> {
    sample_in(
        &daemon.metrics(),
        &format!("{name}{{transport=\"{transport}\"}}"),
    )
}

#[test]
fn tcp_lines_split_across_writes_are_aggregated_and_a_long_line_is_refused() {
    let daemon = Daemon::start_listening(
        "  tcp: [\"127.0.0.1:0\"]",
        &format!("{SHORT_WINDOWS}\nlimits: {{ max_datagram_bytes: 100 }}"),
    );
    let mut stream = TcpStream::connect(tcp_addr(&daemon)).unwrap();
    stream.write_all(b"tcp.hits:1|c\ntcp.tag").unwrap();
    stream.flush().unwrap();
    stream.write_all(b"ged:2|c|#a:b\n").unwrap();
    stream.write_all(&[b'x'; 300]).unwrap();
    stream.write_all(b"\ntcp.hits:4|c\ntcp.hits:8|c").unwrap();
    daemon.wait_for("one open TCP connection", || {
        transport_sample(&daemon, "tallyd_connections_open", "tcp") == Some(1.0)
    });
    drop(stream);
    // The last line had no newline: the end of the stream ends it.
    wait_for_total(&daemon, "tcp.hits", 13.0);
    daemon.wait_for("the connection to be counted closed", || {
        transport_sample(&daemon, "tallyd_connections_open", "tcp") == Some(0.0)
    });
    let metrics = daemon.metrics();
    let tcp = |name: &str| sample_in(&metrics, &format!("{name}{{transport=\"tcp\"}}"));
    assert_eq!(tcp("tallyd_lines_received_total"), Some(5.0));
    assert_eq!(tcp("tallyd_connections_accepted_total"), Some(1.0));
    assert_eq!(
        sample_in(
            &metrics,
            "tallyd_lines_rejected_total{transport=\"tcp\",reason=\"too_long\"}"
        ),
        Some(1.0)
    );
    let tagged = daemon.wait_for_series("tcp.tagged");
    assert_eq!(tagged["tags"], serde_json::json!(["a:b"]));
    assert_eq!(tagged["total"], 2.0);
}

#[test]
fn a_tcp_flood_is_slowed_down_not_dropped() {
    // One shard and a flood from one connection: whatever the shard cannot take at
    // once waits in the socket, and every line is counted exactly.
    let daemon = Daemon::start_listening("  tcp: [\"127.0.0.1:0\"]", "shards: 1");
    let lines_per_write = 1000;
    let writes = 300;
    let mut payload = Vec::new();
    for i in 0..lines_per_write {
        writeln!(payload, "flood.c{}:1|c", i % 50).unwrap();
    }
    let mut stream = TcpStream::connect(tcp_addr(&daemon)).unwrap();
    for _ in 0..writes {
        stream.write_all(&payload).unwrap();
    }
    drop(stream);
    let expected = (lines_per_write * writes) as f64;
    daemon.wait_for("every flood line", || {
        transport_sample(&daemon, "tallyd_lines_received_total", "tcp") == Some(expected)
    });
    for series in [0, 49] {
        wait_for_total(&daemon, &format!("flood.c{series}"), expected / 50.0);
    }
    assert_eq!(
        daemon.sample("tallyd_lines_dropped_total{reason=\"queue_full\"}"),
        Some(0.0)
    );
}

fn socket_mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn unix_sockets_accept_lines_replace_a_stale_file_and_clean_up_on_exit() {
    let dir = tempfile::tempdir().unwrap();
    let dgram: PathBuf = dir.path().join("dsd.sock");
    let stream_path: PathBuf = dir.path().join("stream.sock");
    // A socket file left behind by a crashed run.
    drop(UnixDatagram::bind(&dgram).unwrap());
    let daemon = Daemon::start_listening(
        &format!(
            "  unix_datagram: {}\n  unix_stream: {}",
            dgram.display(),
            stream_path.display()
        ),
        SHORT_WINDOWS,
    );
    for path in [&dgram, &stream_path] {
        assert!(std::fs::metadata(path).unwrap().file_type().is_socket());
        assert_eq!(socket_mode(path), 0o622, "{}", path.display());
    }
    let client = UnixDatagram::unbound().unwrap();
    client.send_to(b"uds.c:2|c\nuds.c:3|c", &dgram).unwrap();
    client.send_to(b"uds.c:bad|c", &dgram).unwrap();
    let mut stream = UnixStream::connect(&stream_path).unwrap();
    stream.write_all(b"uds.c:10|c\n").unwrap();
    drop(stream);
    wait_for_total(&daemon, "uds.c", 15.0);
    let metrics = daemon.metrics();
    assert_eq!(
        sample_in(
            &metrics,
            "tallyd_frames_received_total{transport=\"unix_datagram\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        sample_in(
            &metrics,
            "tallyd_lines_rejected_total{transport=\"unix_datagram\",reason=\"bad_value\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample_in(
            &metrics,
            "tallyd_lines_received_total{transport=\"unix_stream\"}"
        ),
        Some(1.0)
    );
    let (status, _) = daemon.stop();
    assert!(status.success());
    assert!(!dgram.exists() && !stream_path.exists());
}

#[test]
fn a_regular_file_at_the_socket_path_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-socket");
    std::fs::write(&path, "data").unwrap();
    let config = dir.path().join("tallyd.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: {{ udp: [], http: \"127.0.0.1:0\", unix_datagram: {} }}\n",
            path.display()
        ),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tallyd"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("listen.unix_datagram") && stderr.contains("not a socket"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "data");
}
