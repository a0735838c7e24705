//! The advisor's steps, in the order `advise` runs them: every query's plan under its own
//! role (and as the service role), candidates from the plans and from pg_qualstats,
//! screening with HypoPG, then new indexes and drops verified for real.

use super::candidates::{self, Candidate, ExistingIndex};
use super::predicates::{self, Relations};
use super::types::{Action, AdviceSection, Screened};
use super::{best_fall, file, qualstats, schema_of, screen, verify, Plan};
use crate::auth::Principal;
use crate::catalog::QuerySpec;
use crate::measure::engine::EngineOptions;
use crate::measure::exec::{self, principal_for, RequestContext};
use crate::params::{ParamValue, SubjectUser};
use crate::target::Target;
use anyhow::Result;
use sqlx::postgres::PgConnection;
use std::collections::{BTreeMap, BTreeSet};

/// What every verification measures against: the plans, the scenario's mix, the engine.
pub(super) struct Workload<'a> {
    pub plans: &'a [Plan<'a>],
    pub mix: &'a BTreeMap<String, f64>,
    pub ctx: &'a RequestContext,
    pub engine: &'a EngineOptions,
}

/// Every query's plan for every subject under its own role, with what it asks of each
/// table; for an app query also the same statement as the service role (no RLS): what a
/// superuser advisor would see.
pub(super) async fn read_plans<'a>(
    conn: &mut PgConnection,
    specs: &[&'a QuerySpec],
    subjects: &[SubjectUser],
    drawn: &'a [Vec<(usize, Vec<ParamValue>)>],
    relations: &Relations,
    ctx: &RequestContext,
) -> Result<Vec<Plan<'a>>> {
    let template = &file().queries.explain_costs;
    let mut plans = Vec::new();
    for (qi, spec) in specs.iter().enumerate() {
        crate::interrupt::check()?;
        for (si, params) in &drawn[qi] {
            let subject = &subjects[*si];
            let who = principal_for(spec, subject.user);
            let raw = exec::explain_as(conn, template, &spec.sql, params, &who, ctx).await?;
            let bypass_uses = match who {
                Principal::User(_) => {
                    let service = Principal::Service;
                    let plain =
                        exec::explain_as(conn, template, &spec.sql, params, &service, ctx).await?;
                    Some(predicates::table_uses(&plain, relations))
                }
                _ => None,
            };
            plans.push(Plan {
                spec,
                subject: subject.subject.name(),
                subjects: drawn[qi].len(),
                params,
                who,
                cost: predicates::total_cost(&raw),
                uses: predicates::table_uses(&raw, relations),
                bypass_uses,
            });
        }
    }
    Ok(plans)
}

/// Candidates from the plans' filters, index conditions and sort keys, marked where only
/// the RLS policies ask for the key.
pub(super) fn from_plans(plans: &[Plan]) -> Vec<Candidate> {
    let mut out = Vec::new();
    for plan in plans {
        for u in &plan.uses {
            let mut these = candidates::from_use(&plan.spec.name, &plan.spec.sql, u);
            if let Some(bypass) = &plan.bypass_uses {
                candidates::mark_rls(&mut these, bypass);
            }
            out.extend(these);
        }
    }
    out
}

/// Candidates from the predicates the executor evaluated, where the server has pg_qualstats
/// (preloaded); otherwise none, and the section's note says why.
pub(super) async fn from_qualstats(
    target: &Target,
    plans: &[Plan<'_>],
    relations: &Relations,
    ctx: &RequestContext,
    section: &mut AdviceSection,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    match qualstats::read(target, plans, relations, ctx).await {
        Ok(qualstats::Outcome::Read {
            version,
            uses,
            predicates,
        }) => {
            for (i, table_uses) in uses {
                let plan = &plans[i];
                for u in &table_uses {
                    let mut these = candidates::from_use(&plan.spec.name, &plan.spec.sql, u);
                    for c in &mut these {
                        c.sources = vec![candidates::Source::Qualstats];
                    }
                    if let Some(bypass) = &plan.bypass_uses {
                        candidates::mark_rls(&mut these, bypass);
                    }
                    out.extend(these);
                }
            }
            section.qualstats_note = format!(
                "pg_qualstats {version}: {predicates} executed predicates read, {} candidates from them (merged with the plans' below)",
                out.len()
            );
            section.qualstats = Some(version);
            section.qualstats_predicates = predicates;
        }
        Ok(qualstats::Outcome::Unavailable(note)) => {
            crate::say!("  advise: {note}");
            section.qualstats_note = note;
        }
        Err(e) => {
            let note = format!("pg_qualstats not read: {e:#}; candidates come from the plans only");
            crate::say!("  advise: {note}");
            section.qualstats_note = note;
        }
    }
    out
}

/// The candidates to build for real, best first: those HypoPG's screening kept, then those
/// it failed on; without HypoPG every candidate, and the section's note says why.
pub(super) async fn screen_all(
    conn: &mut PgConnection,
    to_screen: Vec<Candidate>,
    plans: &[Plan<'_>],
    partitioned: &[String],
    ctx: &RequestContext,
    section: &mut AdviceSection,
) -> Result<Vec<Candidate>> {
    let version = match screen::prepare(conn).await {
        Ok(v) => v,
        Err(e) => {
            let note = format!("{e:#}");
            crate::say!("  advise: {note}");
            section.hypopg_note = Some(note);
            return Ok(to_screen
                .into_iter()
                .filter(|c| !partitioned.contains(&c.table))
                .collect());
        }
    };
    section.hypopg = Some(version);
    for c in &to_screen {
        crate::interrupt::check()?;
        section
            .screened
            .push(screen::screen(conn, c, plans, partitioned, ctx).await?);
    }
    let mut kept: Vec<&Screened> = section.screened.iter().filter(|s| s.survives).collect();
    kept.sort_by(|a, b| best_fall(b).total_cmp(&best_fall(a)));
    // Where HypoPG failed on a plan (it does on some plans under per-row auth.uid()
    // policies), the candidate is built for real after the screened ones, those suggested
    // by the most plans first.
    let mut failed: Vec<&Screened> = section
        .screened
        .iter()
        .filter(|s| s.failed && !partitioned.contains(&s.candidate.table))
        .collect();
    failed.sort_by_key(|s| std::cmp::Reverse(s.candidate.suggested_by.len()));
    kept.extend(failed);
    Ok(kept.into_iter().map(|s| s.candidate.clone()).collect())
}

/// Each candidate built for real on one copy and measured against the other, best first.
pub(super) async fn verify_creates(
    copies: &mut verify::Copies<'_>,
    candidates: &[Candidate],
    work: &Workload<'_>,
    section: &mut AdviceSection,
) -> Result<()> {
    for c in candidates {
        crate::interrupt::check()?;
        let name = c.index_name();
        let change = verify::Change {
            action: Action::Create,
            index: name.clone(),
            table: c.table.clone(),
            apply: c.create_sql(true),
            undo: format!(
                "DROP INDEX CONCURRENTLY IF EXISTS {}.{name}",
                schema_of(&c.table)
            ),
            statement: c.create_sql(true),
        };
        let mut v = verify::verify(copies, change, work).await?;
        v.from_rls = c.from_rls;
        v.sources = c.sources.clone();
        crate::say!("  advise: {} {:?}: {}", c.key(), v.verdict, v.reason);
        section.created.push(v);
    }
    section
        .created
        .sort_by(|a, b| b.net_ms_per_1000.total_cmp(&a.net_ms_per_1000));
    Ok(())
}

/// Existing indexes no plan uses, or another index makes redundant, dropped for real on one
/// copy and measured against the other. Never proposed: constraint and unique indexes,
/// indexes a foreign key's checks use, and a partitioned table's (its plans name the
/// partitions' indexes); tables no catalog query touches (the other api_usage layout) give
/// no evidence either way.
pub(super) async fn verify_drops(
    copies: &mut verify::Copies<'_>,
    existing: &[ExistingIndex],
    partitioned: &[String],
    work: &Workload<'_>,
    section: &mut AdviceSection,
) -> Result<()> {
    let used: BTreeSet<&str> = work
        .plans
        .iter()
        .flat_map(|p| {
            p.uses
                .iter()
                .flat_map(|u| u.indexes_used.iter().map(String::as_str))
        })
        .collect();
    let redundant = candidates::redundant(existing);
    let droppable = existing.iter().filter(|i| {
        !i.constraint
            && !i.unique
            && !i.leads_with_foreign_key
            && !partitioned.contains(&i.table)
            && work.plans.iter().any(|p| p.touches(&i.table))
    });
    for ix in droppable {
        let why = if let Some((_, wider)) = redundant.iter().find(|(r, _)| r.name == ix.name) {
            format!("redundant: a prefix of {}", wider.name)
        } else if !used.contains(ix.name.as_str()) {
            "no catalog query's plan uses it".to_string()
        } else {
            continue;
        };
        crate::interrupt::check()?;
        let schema = schema_of(&ix.table);
        let change = verify::Change {
            action: Action::Drop,
            index: ix.name.clone(),
            table: ix.table.clone(),
            apply: format!("DROP INDEX CONCURRENTLY {schema}.{}", ix.name),
            undo: ix.definition.clone(),
            statement: format!("DROP INDEX CONCURRENTLY IF EXISTS {schema}.{}", ix.name),
        };
        let mut v = verify::verify(copies, change, work).await?;
        v.bytes = Some(ix.bytes);
        v.reason = format!("{why}; {}", v.reason);
        crate::say!("  advise: drop {} {:?}: {}", ix.name, v.verdict, v.reason);
        section.dropped.push(v);
    }
    Ok(())
}
