//! `tallyd-loadgen`: sends DogStatsD over UDP at a fixed rate or flat out, and
//! prints what it sent as JSON.
//!
//! Datagrams are generated before the clock starts (seeded, so every run sends
//! the same bytes) and replayed in a loop with `sendmmsg`, 64 per call, so the
//! generator spends its core on sending, not on formatting. Packed datagrams
//! (about 37 lines in 1,432 bytes, what Datadog clients send) or one line per
//! datagram (what plain StatsD clients send).

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use clap::Parser;
use tallyd::workload::{Generator, PACKED_DATAGRAM_BYTES, Spec};

/// Datagrams per `sendmmsg` call.
const SEND_BATCH: usize = 64;

/// Send DogStatsD load over UDP.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Where to send, e.g. 127.0.0.1:8125.
    #[arg(long)]
    target: SocketAddr,
    /// Distinct series (name + tags).
    #[arg(long, default_value_t = 1000)]
    series: usize,
    /// Weights of counter, gauge, timer and distribution series, e.g. 4,3,3,0.
    #[arg(long, default_value = "4,3,3,0", value_parser = parse_mix)]
    mix: [u32; 4],
    /// Most tags on one series (0-6).
    #[arg(long, default_value_t = 4)]
    max_tags: usize,
    /// One line per datagram instead of packed ~1432-byte datagrams.
    #[arg(long)]
    single_line: bool,
    /// Lines per second to send; 0 sends flat out.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// How long to send, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Datagrams generated up front and replayed.
    #[arg(long, default_value_t = 16384)]
    pool: usize,
    /// Seed of the generated traffic.
    #[arg(long, default_value_t = 0x007a_117d)]
    seed: u64,
}

fn parse_mix(text: &str) -> Result<[u32; 4], String> {
    let weights: Vec<u32> = text
        .split(',')
        .map(|w| w.trim().parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{text:?}: {e}"))?;
    weights
        .try_into()
        .map_err(|_| format!("{text:?}: give four weights: counter,gauge,timer,distribution"))
}

/// The pre-generated traffic: datagrams and the lines each holds.
fn generate(args: &Args) -> Vec<(Vec<u8>, u64)> {
    let spec = Spec {
        series: args.series,
        mix: args.mix,
        max_tags: args.max_tags,
        seed: args.seed,
    };
    let mut generator = Generator::new(&spec);
    (0..args.pool)
        .map(|_| {
            let mut datagram = Vec::with_capacity(PACKED_DATAGRAM_BYTES);
            if args.single_line {
                generator.write_line(&mut datagram);
                datagram.pop();
                (datagram, 1)
            } else {
                let lines = generator.fill_datagram(&mut datagram, PACKED_DATAGRAM_BYTES);
                (datagram, lines as u64)
            }
        })
        .collect()
}

#[derive(Default)]
struct Sent {
    lines: u64,
    datagrams: u64,
    bytes: u64,
    errors: u64,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let pool = generate(&args);
    let socket = UdpSocket::bind(if args.target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })?;
    socket.connect(args.target)?;
    let fd = socket.as_raw_fd();

    let mut iovecs: Vec<libc::iovec> = pool
        .iter()
        .map(|(d, _)| libc::iovec {
            iov_base: d.as_ptr() as *mut libc::c_void,
            iov_len: d.len(),
        })
        .collect();
    // SAFETY: mmsghdr is plain data; all-zero is a valid empty header.
    let mut headers: Vec<libc::mmsghdr> = (0..pool.len())
        .map(|_| unsafe { std::mem::zeroed() })
        .collect();
    for (header, iovec) in headers.iter_mut().zip(iovecs.iter_mut()) {
        header.msg_hdr.msg_iov = iovec;
        header.msg_hdr.msg_iovlen = 1;
    }

    let mut sent = Sent::default();
    let start = Instant::now();
    let mut next = 0usize;
    while start.elapsed() < args.duration {
        if args.rate > 0 {
            let allowed = (start.elapsed().as_secs_f64() * args.rate as f64) as u64;
            if sent.lines >= allowed {
                std::thread::sleep(Duration::from_micros(50));
                continue;
            }
        }
        let count = SEND_BATCH.min(pool.len() - next);
        // SAFETY: headers[next..next+count] are initialised and point at iovecs and
        // datagrams that live until the end of main; the socket is connected.
        let rc =
            unsafe { libc::sendmmsg(fd, headers[next..].as_mut_ptr(), count as libc::c_uint, 0) };
        if rc < 0 {
            sent.errors += 1;
            continue;
        }
        for (datagram, lines) in &pool[next..next + rc as usize] {
            sent.lines += lines;
            sent.bytes += datagram.len() as u64;
        }
        sent.datagrams += rc as u64;
        next = (next + rc as usize) % pool.len();
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{{\"sent_lines\":{},\"sent_datagrams\":{},\"sent_bytes\":{},\"send_errors\":{},\"seconds\":{:.3},\"lines_per_second\":{:.0},\"series\":{},\"single_line\":{}}}",
        sent.lines,
        sent.datagrams,
        sent.bytes,
        sent.errors,
        seconds,
        sent.lines as f64 / seconds,
        args.series,
        args.single_line
    );
    Ok(())
}
