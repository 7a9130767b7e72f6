//! UDP ingest: `SO_REUSEPORT` sockets, one OS thread each, batched `recvmmsg`.
//!
//! Each receiving thread owns a socket bound to the same address with
//! `SO_REUSEPORT`, so the kernel spreads datagrams over them by flow hash and no
//! two threads contend on one socket lock. A thread receives up to
//! [`RECV_BATCH`] datagrams per `recvmmsg` call (one syscall instead of 64),
//! decodes them, routes the lines into per-shard batches and hands each batch
//! over when it is full or its oldest line has waited [`FLUSH_AFTER`].
//!
//! Port 0 is resolved before binding: a socket bound to port 0 gets a port of its
//! own, and sockets bound later to that port would not join its `SO_REUSEPORT`
//! group in a way that spreads load, so a throwaway socket learns a free port and
//! every receiving socket then binds to that explicit port.
//!
//! The receive buffer (`listen.udp_recv_buffer`) is set with `SO_RCVBUFFORCE` when
//! the process may (`CAP_NET_ADMIN`), else with `SO_RCVBUF`, which the kernel caps
//! at `net.core.rmem_max`; the size obtained is logged. A datagram longer than
//! `limits.max_datagram_bytes` arrives cut (`MSG_TRUNC`): its whole lines are
//! kept, the cut line is dropped and counted, the datagram counted as truncated.
//!
//! Each datagram carries the kernel's receive time (`SO_TIMESTAMPNS`): the
//! oldest of a read says how long the socket was left unread while data
//! waited (`tallyd_socket_wait_seconds`), and travels with the batch to its
//! shard (`tallyd_ingest_delay_seconds`).
//!
//! Threads stop within [`STOP_POLL`] of the stop flag being set, flushing their
//! open batches first.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::Inlet;
use super::lines::{ingest_buffer, whole_lines};
use crate::codec::Decoder;
use crate::shard::{Overflow, Router};
use crate::telemetry::{DropReason, LocalTally, Telemetry, Transport};

/// Datagrams asked for per `recvmmsg` call.
pub const RECV_BATCH: usize = 64;

/// Longest a line waits in a partly filled batch before it is handed to its
/// shard. Handing over every partial batch after each receive call would, at a
/// few million lines/s on a shared core, fill the shard queues with batches of
/// a hundred samples; waiting a millisecond lets batches fill, and costs a line
/// at most a millisecond of latency.
pub const FLUSH_AFTER: Duration = Duration::from_millis(1);

/// Longest a receiver waits for room in a full shard queue before it drops
/// the batch (counted `queue_full`): long enough for a shard that shares its
/// core to run, short enough that one stuck shard does not hold up the
/// others for long.
pub const QUEUE_GRACE: Duration = Duration::from_millis(5);

/// How often a blocked receiver looks at the stop flag.
pub const STOP_POLL: Duration = Duration::from_millis(100);

/// Tries at binding a resolved port-0 address before giving up (another process
/// may take the port between resolution and binding).
const PORT_RESOLUTION_TRIES: usize = 8;

/// A bound group of `SO_REUSEPORT` sockets sharing one address.
#[derive(Debug)]
pub struct UdpGroup {
    /// The address bound, with the port resolved.
    pub local_addr: SocketAddr,
    /// One socket per receiving thread.
    pub sockets: Vec<Socket>,
    /// Receive buffer size the kernel granted, in bytes.
    pub recv_buffer: usize,
}

/// Binds `count` sockets to `addr` (port 0 resolved first) with `recv_buffer`
/// bytes of receive buffer each.
pub fn bind_group(addr: SocketAddr, count: usize, recv_buffer: usize) -> io::Result<UdpGroup> {
    if addr.port() != 0 {
        return bind_all(addr, count, recv_buffer);
    }
    let mut last_error = None;
    for _ in 0..PORT_RESOLUTION_TRIES {
        let port = std::net::UdpSocket::bind(addr)?.local_addr()?.port();
        match bind_all(SocketAddr::new(addr.ip(), port), count, recv_buffer) {
            Ok(group) => return Ok(group),
            Err(err) if err.kind() == io::ErrorKind::AddrInUse => last_error = Some(err),
            Err(err) => return Err(err),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)))
}

fn bind_all(addr: SocketAddr, count: usize, recv_buffer: usize) -> io::Result<UdpGroup> {
    let sockets = (0..count.max(1))
        .map(|_| bind_one(addr, recv_buffer))
        .collect::<io::Result<Vec<_>>>()?;
    let recv_buffer = sockets[0].recv_buffer_size()?;
    Ok(UdpGroup {
        local_addr: addr,
        sockets,
        recv_buffer,
    })
}

fn bind_one(addr: SocketAddr, recv_buffer: usize) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    set_recv_buffer(&socket, recv_buffer)?;
    socket.set_read_timeout(Some(STOP_POLL))?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// Asks for `bytes` of receive buffer: past `net.core.rmem_max` when permitted.
pub fn set_recv_buffer(socket: &Socket, bytes: usize) -> io::Result<()> {
    // The kernel doubles the value it is given (for bookkeeping) and reports the
    // doubled size; halve it so the size obtained is what was configured.
    if !force_recv_buffer(socket.as_raw_fd(), bytes / 2) {
        socket.set_recv_buffer_size(bytes / 2)?;
    }
    Ok(())
}

/// Sets the receive buffer past `net.core.rmem_max`; false without `CAP_NET_ADMIN`.
fn force_recv_buffer(fd: RawFd, bytes: usize) -> bool {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    set_socket_option(fd, libc::SO_RCVBUFFORCE, value)
}

/// Sets the `SOL_SOCKET` option `name` of `fd` to `value`; false when refused.
fn set_socket_option(fd: RawFd, name: libc::c_int, value: libc::c_int) -> bool {
    // SAFETY: `fd` is an open socket; the option value is a c_int on the stack
    // whose size is passed alongside.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

/// The inode of a socket, as `/proc/net/udp` lists it.
pub fn socket_inode(socket: &Socket) -> Option<u64> {
    // SAFETY: `stat` is plain data, fully written by a successful `fstat` on an open fd.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: the fd is open for the lifetime of `socket`; `stat` is a valid out pointer.
    let rc = unsafe { libc::fstat(socket.as_raw_fd(), &mut stat) };
    (rc == 0).then_some(stat.st_ino)
}

/// A receiving thread's state. It serves any datagram socket: UDP, or a Unix
/// datagram socket (which `recvmmsg` and `MSG_TRUNC` treat alike).
pub struct Receiver {
    /// The socket it owns, with a read timeout of [`STOP_POLL`].
    socket: Socket,
    /// What the socket is, for the counters.
    transport: Transport,
    /// Its router into the shard queues; a queue still full after
    /// [`QUEUE_GRACE`] drops the batch.
    router: Router,
    /// Line limits.
    decoder: Decoder,
    /// Longest datagram kept whole.
    max_datagram_bytes: usize,
    /// Counters.
    telemetry: Arc<Telemetry>,
    /// Set to stop the thread.
    stop: Arc<AtomicBool>,
}

impl Receiver {
    /// A receiver of `socket` into `inlet`, keeping datagrams of up to
    /// `max_datagram_bytes` whole, until `stop` is set.
    pub fn new(
        socket: Socket,
        transport: Transport,
        inlet: &Inlet,
        max_datagram_bytes: usize,
        stop: Arc<AtomicBool>,
    ) -> Self {
        Receiver {
            socket,
            transport,
            router: inlet.router(Overflow::Grace(QUEUE_GRACE)),
            decoder: inlet.decoder(max_datagram_bytes),
            max_datagram_bytes,
            telemetry: inlet.telemetry().clone(),
            stop,
        }
    }
}

/// Starts receiving thread `index`.
pub fn spawn_receiver(index: usize, receiver: Receiver) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!(
            "tallyd-{}-{index}",
            match receiver.transport {
                Transport::UnixDatagram => "uds",
                _ => "udp",
            }
        ))
        .spawn(move || receiver.run())
}

/// Room for one `SCM_TIMESTAMPNS` control message.
const CONTROL_BYTES: usize = 64;

/// Receive buffers and the `recvmmsg` headers pointing into them. Only the
/// first header has room for the kernel's receive timestamp
/// (`SO_TIMESTAMPNS`): the first datagram of a read is the one that waited
/// longest and the only one whose time is read, so the kernel copies out one
/// timestamp a read instead of one a datagram.
struct RecvBuffers {
    data: Vec<u8>,
    datagram_bytes: usize,
    iovecs: Vec<libc::iovec>,
    /// u64s: a control message must be aligned for `cmsghdr`.
    control: Box<[u64; CONTROL_BYTES / 8]>,
    headers: Vec<libc::mmsghdr>,
}

impl RecvBuffers {
    fn new(datagram_bytes: usize) -> Self {
        let mut data = vec![0u8; datagram_bytes * RECV_BATCH];
        let iovecs: Vec<libc::iovec> = data
            .chunks_exact_mut(datagram_bytes)
            .map(|chunk| libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: chunk.len(),
            })
            .collect();
        let mut buffers = RecvBuffers {
            data,
            datagram_bytes,
            iovecs,
            control: Box::new([0u64; CONTROL_BYTES / 8]),
            // SAFETY: mmsghdr is plain data; all-zero is a valid empty header.
            headers: (0..RECV_BATCH)
                .map(|_| unsafe { std::mem::zeroed() })
                .collect(),
        };
        for (header, iovec) in buffers.headers.iter_mut().zip(buffers.iovecs.iter_mut()) {
            header.msg_hdr.msg_iov = iovec;
            header.msg_hdr.msg_iovlen = 1;
        }
        buffers
    }

    /// Receives up to [`RECV_BATCH`] datagrams, waiting for the first.
    fn receive(&mut self, fd: RawFd) -> io::Result<usize> {
        for header in &mut self.headers {
            header.msg_hdr.msg_flags = 0;
            header.msg_len = 0;
        }
        // The kernel shrinks it to what it wrote; the other headers have none.
        self.headers[0].msg_hdr.msg_control = self.control.as_mut_ptr().cast();
        self.headers[0].msg_hdr.msg_controllen = CONTROL_BYTES as _;
        // SAFETY: `headers` holds RECV_BATCH initialised mmsghdrs whose iovecs point
        // into `data`, which lives as long as `self` and is not otherwise borrowed.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                RECV_BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// When the kernel received the first datagram of the last receive, unix
    /// nanoseconds; 0 when it gave no timestamp.
    fn first_received_unix_nanos(&self) -> u64 {
        let header = &self.headers[0].msg_hdr;
        // SAFETY: the kernel filled `msg_control` up to `msg_controllen` with
        // well-formed control messages; the CMSG_* macros walk within it.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(header);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET
                    && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
                {
                    let time = libc::CMSG_DATA(cmsg)
                        .cast::<libc::timespec>()
                        .read_unaligned();
                    return (time.tv_sec as u64)
                        .saturating_mul(1_000_000_000)
                        .saturating_add(time.tv_nsec as u64);
                }
                cmsg = libc::CMSG_NXTHDR(header, cmsg);
            }
        }
        0
    }

    /// Datagram `i` of the last receive, and whether it was cut.
    fn datagram(&self, i: usize) -> (&[u8], bool) {
        let header = &self.headers[i];
        let start = i * self.datagram_bytes;
        let len = (header.msg_len as usize).min(self.datagram_bytes);
        let truncated = header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        (&self.data[start..start + len], truncated)
    }
}

impl Receiver {
    fn run(mut self) {
        let fd = self.socket.as_raw_fd();
        if !enable_receive_timestamps(fd) {
            tracing::debug!(
                transport = self.transport.as_str(),
                "no kernel receive timestamps: socket waits and ingest delays are not measured"
            );
        }
        let socket_wait = self.telemetry.socket_wait(self.transport);
        let mut buffers = RecvBuffers::new(self.max_datagram_bytes);
        let mut tally = LocalTally::default();
        // When the oldest line waiting in a partial batch arrived.
        let mut pending_since: Option<Instant> = None;
        while !self.stop.load(Ordering::Relaxed) {
            if let Some(since) = pending_since {
                let due = FLUSH_AFTER.saturating_sub(since.elapsed());
                if due.is_zero() || !wait_readable(fd, due) {
                    self.router.flush(&mut tally);
                    tally.publish(&self.telemetry, self.transport);
                    pending_since = None;
                    continue;
                }
            }
            let received = match buffers.receive(fd) {
                Ok(n) => n,
                Err(err) if is_timeout(&err) => continue,
                Err(err) => {
                    tracing::warn!(error = %err, transport = self.transport.as_str(), "receive failed");
                    std::thread::sleep(STOP_POLL);
                    continue;
                }
            };
            // The first datagram of a read is the one that waited longest.
            let oldest = buffers.first_received_unix_nanos();
            socket_wait.observe_since(oldest);
            self.router.note_arrival(oldest);
            for i in 0..received {
                let (datagram, truncated) = buffers.datagram(i);
                tally.frames += 1;
                tally.bytes += datagram.len() as u64;
                let lines = if truncated {
                    tally.truncated_datagrams += 1;
                    tally.drop_lines(DropReason::Truncated, 1);
                    whole_lines(datagram)
                } else {
                    datagram
                };
                ingest_buffer(&self.decoder, lines, &mut self.router, &mut tally);
            }
            pending_since.get_or_insert_with(Instant::now);
        }
        self.router.flush(&mut tally);
        tally.publish(&self.telemetry, self.transport);
    }
}

/// Asks the kernel to stamp each datagram with its receive time
/// (`SO_TIMESTAMPNS`, wall clock); false when it refuses.
fn enable_receive_timestamps(fd: RawFd) -> bool {
    set_socket_option(fd, libc::SO_TIMESTAMPNS, 1)
}

/// Waits up to `timeout` for `fd` to become readable; false on timeout.
fn wait_readable(fd: RawFd, timeout: Duration) -> bool {
    let mut poll_fd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = libc::c_int::try_from(timeout.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd on the stack, count 1.
    let rc = unsafe { libc::poll(&mut poll_fd, 1, millis) };
    rc > 0
}

fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_is_resolved_and_every_socket_shares_it() {
        let group = bind_group("127.0.0.1:0".parse().unwrap(), 3, 1 << 20).unwrap();
        assert_ne!(group.local_addr.port(), 0);
        for socket in &group.sockets {
            let local = socket.local_addr().unwrap().as_socket().unwrap();
            assert_eq!(local, group.local_addr);
        }
        assert!(group.recv_buffer > 0);
    }
}
