//! Stopping: on SIGTERM or SIGINT, or once a membership change removed this
//! node. `/readyz` fails first, leadership is handed to a peer, HTTP
//! requests in flight finish, then the applier gets a moment to apply what
//! is committed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Addr;
use actix_web::dev::ServerHandle;

use crate::applier::ApplierHandle;
use crate::raft::RaftHandle;

/// How long a leader waits for a successor when told to stop.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(3);
/// How long in-flight HTTP requests may take to finish on shutdown.
pub const HTTP_DRAIN_SECS: u64 = 10;
/// How long the applier may go on applying what is committed after HTTP stopped.
const APPLY_DRAIN: Duration = Duration::from_secs(5);

/// Spawns what stops the node: it waits for a signal or for this node's
/// removal, sets `draining` (so `/readyz` fails), hands leadership over and
/// stops the HTTP server gracefully.
pub fn stop_on_signal_or_removal(raft: RaftHandle, draining: Arc<AtomicBool>, http: ServerHandle) {
    let mut status = raft.watch();
    actix::spawn(async move {
        tokio::select! {
            _ = wait_for_signal() => tracing::info!("signal received: shutting down"),
            _ = status.wait_for(|s| s.removed) => tracing::info!("removed from the cluster: shutting down"),
        }
        draining.store(true, Ordering::Relaxed);
        raft.shutdown(HANDOVER_TIMEOUT).await;
        http.stop(true).await;
    });
}

/// Lets the applier finish what is committed, briefly: returns when it has
/// caught up, is failing, has stopped, or after [`APPLY_DRAIN`].
pub async fn finish_applying(applier: &ApplierHandle) {
    let deadline = Instant::now() + APPLY_DRAIN;
    while Instant::now() < deadline {
        match applier.status().await {
            Ok(status)
                if status.applied_index < status.committed_index && status.failing.is_none() =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ => break,
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
