//! Terminal conventions in one place: colour only on a terminal and without `NO_COLOR`
//! (no-color.org), progress bars only when stderr is a terminal (plain lines otherwise).

use std::io::IsTerminal;

/// Progress bars draw on stderr only when a person watches it.
pub fn interactive() -> bool {
    std::io::stderr().is_terminal()
}

/// ANSI colour: both streams on a terminal and `NO_COLOR` unset or empty.
pub fn color() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stderr().is_terminal() && std::io::stdout().is_terminal()
}
