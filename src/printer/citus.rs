//! `advise citus`: placement of each table, then what would break, grouped by kind.

use super::Printer;
use crate::advise::citus::{CitusSection, Placement};
use std::io;

pub fn summary(p: &mut Printer, s: &CitusSection) -> io::Result<()> {
    writeln!(p.human, "Citus, distributed by {}:", s.distribution_column)?;
    for t in &s.tables {
        let place = match t.placement {
            Placement::Distributed => "distributed",
            Placement::NeedsColumn => "needs user_id",
            Placement::Reference => "reference",
        };
        writeln!(p.human, "  {:<28} {:<14} {}", t.table, place, t.note)?;
    }
    for set in &s.policy_sets {
        writeln!(
            p.human,
            "  policy set {}: {} of {} policies hold a sub-select Citus refuses on a distributed table",
            set.policies, set.with_subquery, set.total
        )?;
        let refused = s
            .problems
            .iter()
            .filter(|pr| pr.policies.as_deref() == Some(set.policies.as_str()));
        for pr in refused.take(2) {
            writeln!(
                p.human,
                "      e.g. {} \"{}\": {}",
                pr.table, pr.object, pr.detail
            )?;
        }
    }
    let others: Vec<_> = s
        .problems
        .iter()
        .filter(|pr| pr.policies.is_none())
        .collect();
    writeln!(
        p.human,
        "  {} schema problem(s) (every policy refused is listed in results.json and the report):",
        others.len()
    )?;
    for pr in others {
        writeln!(
            p.human,
            "  - {:?} {} {}: {}",
            pr.kind, pr.table, pr.object, pr.detail
        )?;
        writeln!(p.human, "      fix: {}", pr.fix)?;
    }
    writeln!(p.machine, "citus_problems {}", s.problems.len())?;
    Ok(())
}
