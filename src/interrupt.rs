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

/// Installs the signal handlers (call once, inside the runtime).
pub fn install() {
    tokio::spawn(async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
                _ = async { match hup.as_mut() { Some(h) => { h.recv().await; } None => std::future::pending::<()>().await } } => {},
            }
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                // A second signal: the user insists.
                eprintln!("storybench: interrupted twice, exiting now");
                std::process::exit(130);
            }
            eprintln!(
                "storybench: interrupted; finishing the current step and writing partial results"
            );
            notify().notify_waiters();
        }
    });
}

/// Marks the run interrupted from elsewhere: during a goose attack goose's own Ctrl-C handler
/// replaces ours, and the load runner forwards its killswitch here.
pub fn raise() {
    if !INTERRUPTED.swap(true, Ordering::SeqCst) {
        eprintln!(
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
