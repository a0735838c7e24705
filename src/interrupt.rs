//! Ctrl-C / SIGTERM: long commands stop at the next checkpoint, write what they measured
//! (marked partial) and stop the embedded cluster they started.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use tokio::sync::Notify;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static NOTIFY: OnceLock<Notify> = OnceLock::new();

fn notify() -> &'static Notify {
    NOTIFY.get_or_init(Notify::new)
}

/// Installs the handler for SIGINT, SIGTERM and SIGHUP (call once, first thing).
///
/// ctrlc runs it on a thread of its own, so a second signal exits even while every runtime
/// thread is busy. goose calls `ctrlc::set_handler` at the start of each attack and, once a
/// handler exists, that call fails and leaves ours in place: before, goose's handler replaced
/// ours for the rest of the process (a second Ctrl-C then exited 1, and SIGINT after a load
/// stage only reached goose).
pub fn install() {
    if let Err(e) = ctrlc::set_handler(on_signal) {
        tracing::warn!("cannot install the Ctrl-C/SIGTERM handler: {e}");
    }
}

fn on_signal() {
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // A second signal: the user insists.
        crate::say!("storybench: interrupted twice, exiting now");
        std::process::exit(130);
    }
    crate::say!("storybench: interrupted; finishing the current step and writing partial results");
    notify().notify_waiters();
}

/// Marks the run interrupted from elsewhere: the load runner forwards goose's killswitch here.
pub fn raise() {
    if !INTERRUPTED.swap(true, Ordering::SeqCst) {
        crate::say!(
            "storybench: interrupted; finishing the current step and writing partial results"
        );
    }
    notify().notify_waiters();
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Resolves when an interrupt arrives (immediately if one already has).
pub async fn wait() {
    let notified = notify().notified();
    if interrupted() {
        return;
    }
    notified.await
}

/// Error returned by stages that stopped because of an interrupt.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

pub fn check() -> Result<(), Interrupted> {
    if interrupted() {
        Err(Interrupted)
    } else {
        Ok(())
    }
}
