//! Datagrams the kernel dropped before tallyd could read them, per socket.
//!
//! When a socket's receive buffer is full the kernel discards the datagram and
//! counts it against the socket in the `drops` column of `/proc/net/udp` (and
//! `udp6`). tallyd records the inode of each of its UDP sockets and sums that
//! column over them at scrape time: no ancillary data on the receive path, and
//! the count covers drops that happened while no receive call was running.

use std::fs;

/// Sum of the kernel's receive drops over the sockets with these inodes; `None`
/// when `/proc/net/udp` cannot be read (not Linux, or no procfs in the container).
pub fn udp_kernel_drops(inodes: &[u64]) -> Option<u64> {
    let mut total = 0;
    let mut readable = false;
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        if let Ok(text) = fs::read_to_string(table) {
            readable = true;
            total += drops_in_table(&text, inodes);
        }
    }
    readable.then_some(total)
}

/// Sums the `drops` column of the rows of a `/proc/net/udp` table whose inode is listed.
fn drops_in_table(text: &str, inodes: &[u64]) -> u64 {
    text.lines()
        .skip(1)
        .filter_map(|row| {
            let fields: Vec<&str> = row.split_whitespace().collect();
            let inode: u64 = fields.get(9)?.parse().ok()?;
            let drops: u64 = fields.last()?.parse().ok()?;
            inodes.contains(&inode).then_some(drops)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_summed_over_the_listed_inodes_only() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
  1: 0100007F:1FBD 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 17\n\
  2: 0100007F:1FBD 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4243 2 0000000000000000 5\n\
  3: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 999 2 0000000000000000 100\n";
        assert_eq!(drops_in_table(table, &[4242, 4243]), 22);
        assert_eq!(drops_in_table(table, &[]), 0);
    }
}
