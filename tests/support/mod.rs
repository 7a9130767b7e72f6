//! Starting the real `tallyd` binary for integration tests, and talking to it.
//!
//! The daemon is started on port 0 for UDP and HTTP with JSON logs; the test
//! reads the bound addresses from its `ready` log line, then waits for `/readyz`.
//! Waiting for results means polling the HTTP API for a condition with a
//! deadline, never sleeping for a guessed time.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long any wait may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A running daemon.
pub struct Daemon {
    child: Child,
    config: tempfile::NamedTempFile,
    /// The `listen` keys it was started with, kept by [`Daemon::rewrite_config`].
    listen: String,
    pub http: SocketAddr,
    pub udp: SocketAddr,
    /// The `ready` log line: every address and path bound.
    pub ready: Value,
    agent: ureq::Agent,
    logs: Arc<Mutex<Vec<Value>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    /// Starts tallyd with `extra` appended to a config that binds UDP and HTTP on
    /// port 0 and logs JSON. `extra` holds top-level keys other than `listen`/`logging`.
    pub fn start(extra: &str) -> Daemon {
        Daemon::start_listening("", extra)
    }

    /// As [`Daemon::start`], with `listen` (indented `listen` keys, one per line)
    /// added to the listeners.
    pub fn start_listening(listen: &str, extra: &str) -> Daemon {
        let config = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
        std::fs::write(config.path(), config_text(listen, extra)).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tallyd"))
            .arg("--config")
            .arg(config.path())
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tallyd starts");
        let stderr = child.stderr.take().unwrap();
        let (ready_tx, ready_rx) = mpsc::channel();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let log_sink = logs.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("tallyd: {line}");
                if let Ok(event) = serde_json::from_str::<Value>(&line) {
                    if event["message"] == "ready" {
                        let _ = ready_tx.send(event.clone());
                    }
                    log_sink.lock().unwrap().push(event);
                }
            }
        });
        let ready = ready_rx
            .recv_timeout(DEADLINE)
            .expect("tallyd logs `ready` with its addresses");
        let addr = |key: &str| -> SocketAddr {
            ready[key]
                .as_str()
                .and_then(|s| s.split(',').next())
                .unwrap()
                .parse()
                .unwrap()
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let daemon = Daemon {
            http: addr("http"),
            udp: addr("udp"),
            ready,
            child,
            config,
            listen: listen.to_owned(),
            agent,
            logs,
            reader: Some(reader),
        };
        daemon.wait_for("/readyz to answer 200", || daemon.get("/readyz").0 == 200);
        daemon
    }

    /// Replaces the config file with the same listeners and logging and `extra`
    /// (for a reload to read).
    pub fn rewrite_config(&self, extra: &str) {
        std::fs::write(self.config.path(), config_text(&self.listen, extra)).unwrap();
    }

    /// Replaces the config file with `text` as it is.
    pub fn write_config_file(&self, text: &str) {
        std::fs::write(self.config.path(), text).unwrap();
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) with the pid of a child this test owns.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill({signal})");
    }

    /// POST `path` with an empty body: status and body.
    pub fn post(&self, path: &str) -> (u16, String) {
        let mut response = self
            .agent
            .post(&format!("http://{}{path}", self.http))
            .send_empty()
            .expect("HTTP request");
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().unwrap())
    }

    /// GET `path`: status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let mut response = self
            .agent
            .get(&format!("http://{}{path}", self.http))
            .call()
            .expect("HTTP request");
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().unwrap())
    }

    /// The `/metrics` exposition.
    pub fn metrics(&self) -> String {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200);
        body
    }

    /// `GET /api/v1/rollups?{query}` as JSON.
    pub fn rollups(&self, query: &str) -> Value {
        let (status, body) = self.get(&format!("/api/v1/rollups?{query}"));
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// The value of the sample line `name_and_labels` on `/metrics` (exact text
    /// before the value), if present.
    pub fn sample(&self, name_and_labels: &str) -> Option<f64> {
        sample_in(&self.metrics(), name_and_labels)
    }

    /// Polls `condition` every 10 ms until it holds; panics after [`DEADLINE`].
    pub fn wait_for(&self, what: &str, mut condition: impl FnMut() -> bool) {
        let start = Instant::now();
        while !condition() {
            assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until tallyd has counted `lines` received lines in total.
    pub fn wait_for_lines(&self, lines: u64) {
        self.wait_for(&format!("{lines} lines received"), || {
            self.lines_received() >= lines as f64
        });
    }

    /// Lines received over every transport.
    pub fn lines_received(&self) -> f64 {
        sum_of(&self.metrics(), "tallyd_lines_received_total")
    }

    /// Sends raw datagrams to the UDP listener.
    pub fn send(&self, datagrams: &[&str]) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        for datagram in datagrams {
            socket.send_to(datagram.as_bytes(), self.udp).unwrap();
        }
    }

    /// Waits until a closed window lists a series named `name`, and returns it
    /// (from the newest window holding it).
    pub fn wait_for_series(&self, name: &str) -> Value {
        let mut found = Value::Null;
        self.wait_for(&format!("a window holding {name}"), || {
            let rollups = self.rollups(&format!("name={name}&windows=100"));
            found = rollups["windows"]
                .as_array()
                .unwrap()
                .iter()
                .find_map(|w| w["series"].as_array().unwrap().first().cloned())
                .unwrap_or(Value::Null);
            !found.is_null()
        });
        found
    }

    /// Every JSON log event so far.
    pub fn logs(&self) -> Vec<Value> {
        self.logs.lock().unwrap().clone()
    }

    /// Sends SIGTERM, waits for the exit and returns its status and every log event.
    pub fn stop(mut self) -> (ExitStatus, Vec<Value>) {
        // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        (status, self.logs())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the line starting with `name_and_labels ` in an exposition.
pub fn sample_in(exposition: &str, name_and_labels: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let value = line.strip_prefix(name_and_labels)?.strip_prefix(' ')?;
        match value {
            "NaN" => Some(f64::NAN),
            "+Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            v => v.parse().ok(),
        }
    })
}

/// Runs `send` with a fresh name prefix until all it sent lands in one window, as
/// `check` (given the prefix) reports; windows are short, so a send that straddles
/// a window edge is simply repeated under a new prefix.
pub fn in_one_window(mut send: impl FnMut(&str), check: impl Fn(&str) -> bool) -> String {
    for attempt in 0..5 {
        let prefix = format!("try{attempt}");
        send(&prefix);
        if check(&prefix) {
            return prefix;
        }
        eprintln!("samples of {prefix} straddled a window edge; sending again");
    }
    panic!("five sends in a row straddled window edges");
}

/// The sum of every sample of `name` (any labels) in `exposition`.
pub fn sum_of(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The config file of a test daemon: UDP and HTTP on port 0, JSON logs at
/// debug, `listen` keys added, then `extra`.
fn config_text(listen: &str, extra: &str) -> String {
    format!(
        "listen:\n  udp: [\"127.0.0.1:0\"]\n  udp_threads: 2\n  http: \"127.0.0.1:0\"\n{listen}\nlogging:\n  level: debug\n  format: json\n{extra}\n"
    )
}
