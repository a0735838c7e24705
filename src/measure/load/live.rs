//! The live progress line of a running load (a terminal only): each finished second's
//! transactions, errors and p95, from the recorders the workers write into.

use super::recorder::Recorders;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Shows the last finished second until `done`; `recorders` gives the run's recorders once
/// the load has started (None while its users connect).
pub async fn show<'a>(done: Arc<AtomicBool>, recorders: impl Fn() -> Option<&'a Recorders>) {
    let bar = crate::progress::bar(None, "  {spinner} load {elapsed:>4} {wide_msg}");
    if bar.is_hidden() {
        return;
    }
    while !done.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Some(r) = recorders() else {
            bar.set_message("starting users");
            continue;
        };
        let Some(elapsed) = Instant::now().checked_duration_since(r.measure_from) else {
            bar.set_message("warming up");
            continue;
        };
        let sec = (elapsed.as_secs() as usize).saturating_sub(1);
        if let Some(p) = r.second_so_far(sec) {
            bar.set_message(format!(
                "second {}: {} ok, {} errors, p95 {:.1} ms",
                sec + 1,
                p.ok,
                p.errors,
                p.p95_ms
            ));
        }
    }
    bar.finish_and_clear();
}
