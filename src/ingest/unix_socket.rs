//! Unix socket files: created with a chosen mode, a stale one replaced, removed on exit.
//!
//! A file left at the path by a crashed run is replaced only when it is a socket
//! nobody listens on (connecting is refused). A live socket means another
//! daemon owns the path, and anything that is not a socket is not ours to delete:
//! both are start-up errors naming the path. The file is created with the
//! configured mode (`listen.unix_socket_mode`; DogStatsD uses 0622, so any local
//! user may write and only the owner read) and removed when the listener is
//! dropped, unless something else has replaced it meanwhile.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use socket2::Socket;

/// The socket file of a bound listener; dropping it removes the file.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    inode: u64,
}

impl SocketFile {
    /// The path bound.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.inode);
        if ours && let Err(err) = fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %err, "cannot remove socket file");
        }
    }
}

/// The kind of Unix socket, to probe a leftover file with the right type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// `SOCK_DGRAM`.
    Datagram,
    /// `SOCK_STREAM`.
    Stream,
}

/// Binds a Unix datagram socket at `path` with `mode`.
pub fn bind_datagram(path: &Path, mode: u32) -> io::Result<(UnixDatagram, SocketFile)> {
    clear_stale(path, SocketKind::Datagram)?;
    let socket = UnixDatagram::bind(path)?;
    let file = claim(path, mode)?;
    Ok((socket, file))
}

/// Binds a Unix stream listener at `path` with `mode`.
pub fn bind_stream(path: &Path, mode: u32) -> io::Result<(UnixListener, SocketFile)> {
    clear_stale(path, SocketKind::Stream)?;
    let listener = UnixListener::bind(path)?;
    let file = claim(path, mode)?;
    Ok((listener, file))
}

/// Turns a bound std Unix datagram socket into the `socket2` form the datagram
/// receiver takes.
pub fn datagram_socket(socket: UnixDatagram) -> Socket {
    Socket::from(std::os::fd::OwnedFd::from(socket))
}

fn claim(path: &Path, mode: u32) -> io::Result<SocketFile> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    let inode = fs::symlink_metadata(path)?.ino();
    Ok(SocketFile {
        path: path.to_owned(),
        inode,
    })
}

/// Removes a socket file nobody listens on; refuses a live socket or a non-socket.
fn clear_stale(path: &Path, kind: SocketKind) -> io::Result<()> {
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    if !metadata.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the path exists and is not a socket; refusing to replace it",
        ));
    }
    let live = match kind {
        SocketKind::Stream => UnixStream::connect(path).is_ok(),
        SocketKind::Datagram => UnixDatagram::unbound()?.connect(path).is_ok(),
    };
    if live {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "another process is listening on this socket",
        ));
    }
    tracing::info!(path = %path.display(), "replacing a stale socket file");
    fs::remove_file(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_socket_is_replaced_and_the_file_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dsd.sock");
        drop(UnixDatagram::bind(&path).unwrap());
        assert!(path.exists(), "a dropped std socket leaves its file behind");
        let (_socket, file) = bind_datagram(&path, 0o622).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o622);
        drop(file);
        assert!(!path.exists());
    }

    #[test]
    fn a_live_socket_or_a_regular_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.sock");
        let (_listener, _file) = bind_stream(&live, 0o600).unwrap();
        let err = bind_stream(&live, 0o600).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        let regular = dir.path().join("file");
        fs::write(&regular, "keep me").unwrap();
        let err = bind_datagram(&regular, 0o600).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(&regular).unwrap(), "keep me");
    }
}
