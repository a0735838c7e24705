//! Progress on the terminal, in one place: indicatif bars and spinners when stderr is a
//! terminal a person watches, plain lines otherwise (a CI log gets no escape codes and no
//! redraws). Every line a stage prints goes through [`line`] (the `say!` macro), so it
//! lands above the live bars instead of tearing them.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fmt::Display;
use std::sync::OnceLock;
use std::time::Duration;

/// The one set of live bars of this process (hidden off a terminal).
fn multi() -> &'static MultiProgress {
    static MULTI: OnceLock<MultiProgress> = OnceLock::new();
    MULTI.get_or_init(|| {
        MultiProgress::with_draw_target(if crate::term::interactive() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        })
    })
}

/// Prints one line on stderr, above any live bar.
pub fn line(text: impl Display) {
    if crate::term::interactive() {
        // println on a MultiProgress with no bar still prints; a failed write is not worth
        // an error in the middle of a measurement.
        let _ = multi().println(text.to_string());
    } else {
        eprintln!("{text}");
    }
}

/// `say!("…", args)`: a progress line on stderr, above any live bar.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::progress::line(format!($($arg)*))
    };
}

/// A bar added to the live set: `len` Some for a bar with a length, None for a spinner.
/// Off a terminal it is hidden (every call on it is a no-op).
pub fn bar(len: Option<u64>, template: &str) -> ProgressBar {
    if !crate::term::interactive() {
        return ProgressBar::hidden();
    }
    let bar = multi().add(match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    });
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if len.is_none() {
        bar.enable_steady_tick(Duration::from_millis(200));
    }
    bar
}

/// A piece of work with a live spinner on a terminal, or a start and an end line off it.
pub struct Task {
    bar: ProgressBar,
}

impl Task {
    /// Starts the task: `▶ name` off a terminal, a spinner with the elapsed time on one.
    pub fn start(name: &str) -> Self {
        let bar = bar(None, "{spinner} {prefix} {elapsed:>4} {wide_msg}");
        if bar.is_hidden() {
            line(format!("▶ {name}"));
        } else {
            bar.set_prefix(name.to_string());
        }
        Self { bar }
    }

    /// Ends the task with its closing line (kept in both cases).
    pub fn finish(self, text: impl Display) {
        self.bar.finish_and_clear();
        line(text);
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        // A task dropped early (error, interrupt) leaves no spinner behind.
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bars_are_hidden_exactly_off_a_terminal() {
        let b = super::bar(Some(10), "{bar}");
        assert_eq!(b.is_hidden(), !crate::term::interactive());
        let t = super::Task::start("a stage");
        t.finish("done");
    }
}
