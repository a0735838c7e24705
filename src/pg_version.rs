//! Which PostgreSQL major versions storybench was tested with, and the oldest it can use.
//! Every command checks the server once (see `Target::connect`): below the minimum it
//! refuses, on an untested major it warns and runs, and results record which case it was.

use anyhow::{bail, Result};

/// Majors the test suite (tests/, against a real server) and the benchmarks ran on.
pub const TESTED_MAJORS: &[u32] = &[15];

/// The oldest major storybench works with: `pg_stat_wal`, `pg_stat_statements.toplevel`,
/// `default_toast_compression` and `ALTER TABLE … SET COMPRESSION` all arrived in 14.
const MINIMUM_MAJOR: u32 = 14;

/// How storybench stands with one server major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    Tested,
    /// Runs, with a warning: figures may differ from the tested majors'.
    Untested(String),
    TooOld,
}

/// The major of a `server_version_num` (150004 → 15; 90624 → 9).
pub fn major_of(version_num: i32) -> u32 {
    (version_num.max(0) / 10000) as u32
}

pub fn support(major: u32) -> Support {
    if major < MINIMUM_MAJOR {
        Support::TooOld
    } else if TESTED_MAJORS.contains(&major) {
        Support::Tested
    } else {
        Support::Untested(format!(
            "tested with PostgreSQL {}; this server is {major} — running anyway; figures may differ",
            tested_list()
        ))
    }
}

pub fn is_tested(major: u32) -> bool {
    support(major) == Support::Tested
}

/// Refuses a server older than the minimum; warns on an untested major.
pub fn check(major: u32, what: &str) -> Result<()> {
    match support(major) {
        Support::Tested => Ok(()),
        Support::Untested(warning) => {
            tracing::warn!("{warning}");
            Ok(())
        }
        Support::TooOld => bail!(
            "{what} is PostgreSQL {major}; storybench needs PostgreSQL {MINIMUM_MAJOR} or newer \
             (pg_stat_wal, pg_stat_statements.toplevel, TOAST compression settings) and was tested with {}. \
             Use a newer server.",
            tested_list()
        ),
    }
}

fn tested_list() -> String {
    TESTED_MAJORS
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majors_from_version_numbers() {
        assert_eq!(major_of(150004), 15);
        assert_eq!(major_of(160010), 16);
        assert_eq!(major_of(140000), 14);
        assert_eq!(major_of(130015), 13);
        assert_eq!(major_of(90624), 9);
        assert_eq!(major_of(-1), 0);
    }

    #[test]
    fn tested_untested_and_too_old() {
        assert_eq!(support(15), Support::Tested);
        assert!(is_tested(15));
        for untested in [14, 16, 17, 18, 30] {
            match support(untested) {
                Support::Untested(w) => {
                    assert_eq!(
                        w,
                        format!("tested with PostgreSQL 15; this server is {untested} — running anyway; figures may differ")
                    );
                    assert!(!w.contains('\n'), "one line");
                }
                other => panic!("{untested}: {other:?}"),
            }
            assert!(check(untested, "the server").is_ok(), "{untested} runs");
        }
        for old in [0, 9, 10, 12, 13] {
            assert_eq!(support(old), Support::TooOld, "{old}");
            let err = check(old, "the server").unwrap_err().to_string();
            assert!(
                err.contains(&format!("PostgreSQL {old};")) && err.contains("14 or newer"),
                "{err}"
            );
        }
        assert_eq!(
            support(MINIMUM_MAJOR),
            Support::Untested(
                "tested with PostgreSQL 15; this server is 14 — running anyway; figures may differ"
                    .into()
            )
        );
    }
}
