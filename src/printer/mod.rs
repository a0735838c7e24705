//! The one printer: every command's terminal summary is rendered from its results into a
//! [`Printer`] (human lines on one writer, machine-readable lines on another), so what a
//! command prints is testable without a terminal. Commands print through [`show`]; tests
//! use `capture`.

pub mod advice;
pub mod capacity;
pub mod capacity_scales;
pub mod citus;
pub mod explain;
pub mod load;
pub mod ops;
pub mod partitions;
pub mod rls;
pub mod seed;
pub mod settings;

use std::io::{self, Write};

/// Where a summary goes: `human` lines (stderr on a terminal, with the progress lines) and
/// `machine` lines (stdout: one line a script can parse).
pub struct Printer<'a> {
    pub human: &'a mut dyn Write,
    pub machine: &'a mut dyn Write,
}

/// Prints a summary on stderr and stdout. A closed stream (a pipe that went away) is not
/// an error worth failing a measured run for.
pub fn show(f: impl FnOnce(&mut Printer) -> io::Result<()>) {
    let (mut err, mut out) = (io::stderr().lock(), io::stdout().lock());
    let _ = f(&mut Printer {
        human: &mut err,
        machine: &mut out,
    });
}

/// Renders a summary into strings: (human, machine).
#[cfg(test)]
fn capture(f: impl FnOnce(&mut Printer) -> io::Result<()>) -> (String, String) {
    let (mut human, mut machine) = (Vec::new(), Vec::new());
    f(&mut Printer {
        human: &mut human,
        machine: &mut machine,
    })
    .expect("writing into memory cannot fail");
    (
        String::from_utf8_lossy(&human).into_owned(),
        String::from_utf8_lossy(&machine).into_owned(),
    )
}

/// Every section a results file holds, in pipeline order (what `run` printed as it went);
/// the commands print their own sections as they go, so only the tests need it whole.
#[cfg(test)]
fn results(p: &mut Printer, r: &crate::results::RunResults) -> io::Result<()> {
    if let (Some(d), Some(s)) = (&r.dataset, &r.seed) {
        seed::report(p, d, s)?;
    }
    if let Some(s) = &r.explain {
        explain::verdicts(p, s)?;
    }
    if let Some(s) = &r.partitions {
        partitions::verdicts(p, s)?;
    }
    if let Some(s) = &r.rls {
        rls::summary(p, s)?;
    }
    if let Some(s) = &r.load {
        load::summary(p, s)?;
    }
    if let Some(s) = &r.capacity {
        capacity::summary(p, s)?;
    }
    if let Some(s) = &r.capacity_scales {
        capacity_scales::summary(p, s)?;
    }
    if let Some(s) = &r.ops {
        ops::summary(p, s)?;
    }
    if let Some(s) = &r.citus {
        citus::summary(p, s)?;
    }
    if let Some(s) = &r.advice {
        advice::summary(p, s)?;
    }
    if let Some(s) = &r.lint {
        advice::lint(p, s)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_stored_run_prints_every_section_without_escape_codes() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/results/quick_all_sections.json"
        );
        let r = crate::results::RunResults::read(std::path::Path::new(path)).unwrap();
        let (human, machine) = super::capture(|p| super::results(p, &r));
        let c = r.capacity.as_ref().unwrap();
        assert!(
            human.contains(&format!("{}: sustains", c.scenario)),
            "{human}"
        );
        assert!(human.contains("isolation audit:"), "{human}");
        assert!(!human.contains('\u{1b}'), "escape codes in the summary");
        // The machine-readable lines: the load's tps, then the capacity answer.
        let lines: Vec<&str> = machine.lines().collect();
        assert!(lines[0].starts_with("tps "), "{machine}");
        assert_eq!(
            lines[1],
            format!(
                "sustainable {:.1} low {:.1} high {:.1}",
                c.sustainable_rate.unwrap_or(0.0),
                c.sustainable_low.unwrap_or(0.0),
                c.sustainable_high.unwrap_or(0.0)
            )
        );
    }
}
