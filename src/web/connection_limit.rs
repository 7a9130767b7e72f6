//! How many connections one listener holds at once (`limits.max_connections`),
//! so that a flood of connections, idle or not, cannot take every file
//! descriptor and lock out the scraper or the other listeners.
//!
//! Each listener has its own budget: a flood on the TCP ingest port leaves
//! the HTTP endpoint reachable. A connection past the budget is accepted (the
//! kernel has already completed it) and closed at once, which the client sees
//! as a reset or an end of stream; it is counted in
//! `tallyd_connections_refused_total{listener}` and the first refusal after a
//! quiet spell is logged. A permit costs one semaphore slot, nothing per byte.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::telemetry::{ConnectionListener, Telemetry};

/// The connection budget of one listener.
#[derive(Clone)]
pub struct ConnectionLimit {
    permits: Arc<Semaphore>,
    max: u32,
    listener: ConnectionListener,
    telemetry: Arc<Telemetry>,
    /// Whether the last connection was refused (to log a flood once, not per
    /// connection).
    refusing: Arc<AtomicBool>,
}

impl ConnectionLimit {
    /// A budget of `max` connections for `listener`.
    pub fn new(max: NonZeroU32, listener: ConnectionListener, telemetry: Arc<Telemetry>) -> Self {
        ConnectionLimit {
            permits: Arc::new(Semaphore::new(max.get() as usize)),
            max: max.get(),
            listener,
            telemetry,
            refusing: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The listener whose connections this budget counts.
    pub fn listener(&self) -> ConnectionListener {
        self.listener
    }

    /// A permit for one more connection, to hold while it lives; `None`
    /// (counted) when the budget is spent and the connection must be closed.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                self.refusing.store(false, Ordering::Relaxed);
                Some(permit)
            }
            Err(_) => {
                self.telemetry
                    .access
                    .connection_refused(self.listener)
                    .add(1);
                if !self.refusing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        listener = self.listener.as_str(),
                        max = self.max,
                        "connection limit reached: closing new connections \
                         (limits.max_connections; tallyd_connections_refused_total)"
                    );
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_budget_and_admits_again_once_a_connection_ends() {
        let telemetry = Arc::new(Telemetry::new(1));
        let limit = ConnectionLimit::new(
            NonZeroU32::new(2).unwrap(),
            ConnectionListener::Tcp,
            telemetry.clone(),
        );
        let first = limit.admit().expect("first");
        let _second = limit.admit().expect("second");
        assert!(limit.admit().is_none());
        assert!(limit.admit().is_none());
        let refused = |l| telemetry.access.connection_refused(l).get();
        assert_eq!(refused(ConnectionListener::Tcp), 2);
        assert_eq!(refused(ConnectionListener::Http), 0);
        drop(first);
        assert!(limit.admit().is_some());
        assert_eq!(refused(ConnectionListener::Tcp), 2);
    }
}
