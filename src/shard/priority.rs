//! Where shard and flush threads stand against the receivers: below them.
//!
//! A UDP receiver must read its socket as soon as datagrams wait, or the
//! socket buffer overflows: at the kernel's default 208 KiB that is a few
//! milliseconds of a busy sender. On a core shared with its shard and flush
//! threads, the scheduler otherwise lets those finish their slice first (and
//! a window's kernels run for tens of milliseconds), which is where every
//! kernel drop fell. So the shard and flush threads put themselves under
//! `SCHED_IDLE`: any receiver (or other normal thread of tallyd) that wakes
//! preempts them at once, and they run whenever it sleeps. No privilege is
//! needed to lower one's own priority.
//!
//! The trade-off: `SCHED_IDLE` threads yield to every normal thread of their
//! CPU cgroup. Under systemd, in a container or a pod, that is tallyd's own
//! threads; a tallyd in the root cgroup of a host whose cores are all busy
//! would see its shards starve. `shard_priority: normal` keeps them as they
//! were. A receiver that finds its shard's queue full waits for room (see
//! `Overflow::Grace`), which is when a saturated shard gets its turn.

use crate::config::ShardPriority;

/// Puts the calling thread at `priority`; a refusal (a kernel without
/// `SCHED_IDLE`, a seccomp filter) is logged and the thread goes on as it was.
pub fn apply(priority: ShardPriority, thread: &str) {
    if priority == ShardPriority::Normal {
        return;
    }
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if rc != 0 {
        let error = std::io::Error::last_os_error();
        tracing::warn!(thread, %error, "cannot lower the thread to SCHED_IDLE (shard_priority)");
    }
}
