//! Cutting a byte stream into whole lines, with a bound on line length.
//!
//! Stream transports (TCP, Unix stream) read into one buffer per connection:
//! [`LineFramer::spare`] is where the next read lands, and [`LineFramer::commit`]
//! hands every complete line to the caller in one slice and keeps the unfinished
//! tail for the next read. A tail that grows past the line limit without a `\n`
//! is one line too long: it is counted once and skipped up to its newline, and
//! the connection goes on. The buffer never grows, so a client cannot make a
//! connection hold more than `max_line + READ_CHUNK` bytes.

use memchr::{memchr, memrchr};

/// Bytes asked for per read, beyond room for one unfinished line.
pub const READ_CHUNK: usize = 64 * 1024;

/// Per-connection line buffer.
#[derive(Debug)]
pub struct LineFramer {
    buf: Vec<u8>,
    filled: usize,
    max_line: usize,
    /// Inside a line already counted as too long: drop bytes up to its `\n`.
    skipping: bool,
}

impl LineFramer {
    /// A framer accepting lines of at most `max_line` bytes (newline excluded).
    pub fn new(max_line: usize) -> Self {
        LineFramer {
            buf: vec![0; max_line + 1 + READ_CHUNK],
            filled: 0,
            max_line,
            skipping: false,
        }
    }

    /// Where the next read goes; never empty.
    pub fn spare(&mut self) -> &mut [u8] {
        &mut self.buf[self.filled..]
    }

    /// Takes `n` freshly read bytes: passes every complete line (one slice, each
    /// line ending in `\n`) to `lines`, and returns how many lines were found too
    /// long (0 or 1).
    pub fn commit(&mut self, n: usize, lines: impl FnOnce(&[u8])) -> u64 {
        let fresh = self.filled;
        self.filled += n;
        let mut begin = 0;
        if self.skipping {
            match memchr(b'\n', &self.buf[fresh..self.filled]) {
                Some(i) => {
                    begin = fresh + i + 1;
                    self.skipping = false;
                }
                None => {
                    self.filled = 0;
                    return 0;
                }
            }
        }
        if let Some(last) = memrchr(b'\n', &self.buf[begin..self.filled]) {
            let end = begin + last + 1;
            lines(&self.buf[begin..end]);
            begin = end;
        }
        let tail = self.filled - begin;
        if tail > self.max_line {
            self.skipping = true;
            self.filled = 0;
            return 1;
        }
        self.buf.copy_within(begin..self.filled, 0);
        self.filled = tail;
        0
    }

    /// At the end of the stream: the unfinished last line, if any (a client may
    /// close without a final newline).
    pub fn finish(&mut self) -> &[u8] {
        let tail = if self.skipping { 0 } else { self.filled };
        self.filled = 0;
        self.skipping = false;
        &self.buf[..tail]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` one read at a time; returns the lines seen and the too-long count.
    fn frame(max_line: usize, chunks: &[&[u8]]) -> (Vec<String>, u64) {
        let mut framer = LineFramer::new(max_line);
        let mut seen = Vec::new();
        let mut too_long = 0;
        for chunk in chunks {
            framer.spare()[..chunk.len()].copy_from_slice(chunk);
            too_long += framer.commit(chunk.len(), |lines| {
                seen.extend(
                    String::from_utf8_lossy(lines)
                        .split_terminator('\n')
                        .map(str::to_owned),
                )
            });
        }
        let tail = framer.finish();
        if !tail.is_empty() {
            seen.push(String::from_utf8_lossy(tail).into_owned());
        }
        (seen, too_long)
    }

    #[test]
    fn lines_split_across_reads_are_joined() {
        let (lines, too_long) = frame(64, &[b"a:1|c\nb:", b"2|c", b"\nc:3|c"]);
        assert_eq!(lines, ["a:1|c", "b:2|c", "c:3|c"]);
        assert_eq!(too_long, 0);
    }

    #[test]
    fn a_line_over_the_limit_is_counted_once_and_the_next_line_kept() {
        let long = [b'x'; 40];
        let (lines, too_long) = frame(16, &[b"a:1|c\n", &long, &long, b"yy\nb:2|c\n"]);
        assert_eq!(lines, ["a:1|c", "b:2|c"]);
        assert_eq!(too_long, 1);
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_kept() {
        let (lines, too_long) = frame(5, &[b"a:1|c", b"\n"]);
        assert_eq!(lines, ["a:1|c"]);
        assert_eq!(too_long, 0);
    }

    #[test]
    fn a_too_long_tail_at_the_end_of_the_stream_is_not_passed_on() {
        let (lines, too_long) = frame(4, &[b"a:1|c\nb:2|c"]);
        assert_eq!(lines, ["a:1|c"]);
        assert_eq!(too_long, 1);
    }
}
