//! `storybench advise indexes`: index advice proven by measurement. Every catalog query is
//! EXPLAINed under its own role with its claims (RLS predicates included); the filters, index
//! conditions and sort keys of its plan suggest candidates; HypoPG screens them by planner
//! cost; the survivors are built for real on a pristine copy and measured, interleaved by
//! the engine against a copy without them, reads and writes, and ranked by the time they save
//! over the scenario's mix. Unused and redundant indexes are dropped for real the same way.

mod advice_file;
pub mod candidates;
pub mod predicates;
mod qualstats;
mod screen;
mod types;
mod verify;

pub use advice_file::evidence;
pub use types::*;

use crate::auth::Principal;
use crate::catalog::QuerySpec;
use crate::measure::exec::{self, principal_for, RequestContext};
use crate::params::{ParamValue, Population};
use crate::pristine::PristineCopy;
use crate::scenario::Scenario;
use crate::schema;
use crate::sql_files::sql;
use crate::target::Target;
use anyhow::Result;
use candidates::ExistingIndex;
use predicates::{Relations, TableUse};
use sqlx::postgres::PgConnection;
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

crate::sql_file!(fn file() -> File = "schema/advise.toml");

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    queries: Queries,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Queries {
    relations: String,
    partitioned: String,
    indexes: String,
    hypopg_available: String,
    create_hypopg: String,
    hypopg_version: String,
    hypothetical: String,
    hypothetical_reset: String,
    qualstats_preloaded: String,
    qualstats_available: String,
    create_qualstats: String,
    qualstats_schema: String,
    qualstats_on: String,
    qualstats_read: String,
    explain_costs: String,
    explain_screen: String,
    index_bytes: String,
}

#[cfg(test)]
pub(crate) fn load_all() {
    file();
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexAdviceOptions {
    /// The index strategy and policy set the advice starts from (policies: the dataset's
    /// when not given).
    pub indexes: String,
    pub policies: Option<String>,
    /// The scenario whose mix weights the time saved.
    pub scenario: String,
    pub queries: Vec<String>,
    /// Most new indexes built for real (the best screened first).
    pub max_verified: usize,
    pub runs: usize,
    pub warmup: usize,
    #[serde(with = "crate::units::duration_secs")]
    pub budget: Duration,
    pub percentiles: Vec<f64>,
    #[serde(default)]
    pub seed: u64,
    #[serde(with = "crate::units::duration_secs")]
    pub statement_timeout: Duration,
}

impl IndexAdviceOptions {
    crate::engine_options_from_fields!();
}

/// One query's plan for one subject, as the candidates and measurements use it.
pub struct Plan<'a> {
    pub spec: &'a QuerySpec,
    pub subject: &'static str,
    /// Subjects the query is measured for (its mix weight is split between them).
    pub subjects: usize,
    pub params: &'a [ParamValue],
    pub who: Principal,
    /// Estimated total cost without any change.
    pub cost: Option<f64>,
    pub uses: Vec<TableUse>,
    /// For an app query: what the same plan asks without RLS (as the service role).
    pub bypass_uses: Option<Vec<TableUse>>,
}

impl Plan<'_> {
    pub fn touches(&self, table: &str) -> bool {
        self.uses.iter().any(|u| u.table == table)
    }
}

/// Runs the advisor on two pristine copies (with and without each change); the dataset
/// itself is not changed.
pub async fn run(
    target: &Target,
    opts: &IndexAdviceOptions,
    out_dir: &Path,
) -> Result<AdviceSection> {
    schema::validate_name("indexes", &opts.indexes)?;
    let catalog = crate::catalog::load_default()?;
    let specs = catalog.select(&opts.queries)?;
    let scenario = crate::scenario::load_with(&opts.scenario, &catalog)?;
    let mix = mix_per_1000(&scenario);
    let mut conn = target.connect().await?;
    let dataset = crate::seed::require_complete(&mut conn).await?;
    crate::catalog::check_sql(&mut conn, &specs).await?;
    let variant = schema::current_variant(&mut conn)
        .await?
        .unwrap_or_default();
    let layout = variant.api_usage;
    let policies = opts.policies.clone().unwrap_or(variant.policies);
    schema::validate_name("policies", &policies)?;
    let ctx = RequestContext::new(layout, opts.statement_timeout);
    let population = Population::load(&mut conn, dataset.anchor).await?;
    let subjects = crate::measure::explain::subjects(&population);
    let drawn = crate::measure::explain::draw_parameters(
        &mut conn,
        &specs,
        &subjects,
        &population,
        opts.seed,
    )
    .await?;
    drop(conn);

    let mut section = AdviceSection {
        indexes: opts.indexes.clone(),
        policies: policies.clone(),
        scenario: scenario.name.clone(),
        mix_per_1000: mix
            .iter()
            .map(|(q, w)| MixWeight {
                query: q.clone(),
                per_1000: *w,
            })
            .collect(),
        ..Default::default()
    };
    let without = PristineCopy::create(target, "advise_without").await?;
    let with = match PristineCopy::create(target, "advise_with").await {
        Ok(c) => c,
        Err(e) => {
            drop_copy(without).await;
            return Err(e);
        }
    };
    let outcome = advise(
        &without,
        &with,
        opts,
        &specs,
        &subjects,
        &drawn,
        &mix,
        &ctx,
        out_dir,
        &mut section,
    )
    .await;
    drop_copy(without).await;
    drop_copy(with).await;
    outcome.map(|()| section)
}

async fn drop_copy(copy: PristineCopy) {
    if let Err(e) = copy.drop().await {
        tracing::warn!("could not drop a pristine copy: {e:#}");
    }
}

#[allow(clippy::too_many_arguments)]
async fn advise(
    without: &PristineCopy,
    with: &PristineCopy,
    opts: &IndexAdviceOptions,
    specs: &[&QuerySpec],
    subjects: &[crate::params::SubjectUser],
    drawn: &[Vec<(usize, Vec<ParamValue>)>],
    mix: &BTreeMap<String, f64>,
    ctx: &RequestContext,
    out_dir: &Path,
    section: &mut AdviceSection,
) -> Result<()> {
    let mut base = without.target().connect().await?;
    let mut changed = with.target().connect().await?;
    for conn in [&mut base, &mut changed] {
        schema::set_indexes(conn, &opts.indexes).await?;
        schema::set_policies(conn, &section.policies).await?;
    }
    section.advisories = crate::advise::lint::lint(&mut base).await?;
    let relations = relations(&mut base).await?;
    let existing = existing_indexes(&mut base).await?;
    let partitioned: Vec<String> = sqlx::query_scalar(sql(&file().queries.partitioned))
        .fetch_all(&mut base)
        .await?;

    // Every query's plan under its own role, and what it asks of each table.
    let mut plans: Vec<Plan> = Vec::new();
    for (qi, spec) in specs.iter().enumerate() {
        crate::interrupt::check()?;
        for (si, params) in &drawn[qi] {
            let subject = &subjects[*si];
            let who = principal_for(spec, subject.user);
            let raw = exec::explain_as(
                &mut base,
                &file().queries.explain_costs,
                &spec.sql,
                params,
                &who,
                ctx,
            )
            .await?;
            // The same statement without the policies: what a superuser advisor would see.
            let bypass_uses = match who {
                Principal::User(_) => {
                    let plain = exec::explain_as(
                        &mut base,
                        &file().queries.explain_costs,
                        &spec.sql,
                        params,
                        &Principal::Service,
                        ctx,
                    )
                    .await?;
                    Some(predicates::table_uses(&plain, &relations))
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
                uses: predicates::table_uses(&raw, &relations),
                bypass_uses,
            });
        }
    }
    section.plans_read = plans.len();
    let mut suggested = Vec::new();
    for plan in &plans {
        for u in &plan.uses {
            let mut these = candidates::from_use(&plan.spec.name, &plan.spec.sql, u);
            if let Some(bypass) = &plan.bypass_uses {
                candidates::mark_rls(&mut these, bypass);
            }
            suggested.extend(these);
        }
    }
    // The predicates the executor evaluated, from pg_qualstats where the server has it.
    match qualstats::read(without.target(), &plans, &relations, ctx).await {
        Ok(qualstats::Outcome::Read {
            version,
            uses,
            predicates,
        }) => {
            let before = suggested.len();
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
                    suggested.extend(these);
                }
            }
            section.qualstats_note = format!(
                "pg_qualstats {version}: {predicates} executed predicates read, {} candidates from them (merged with the plans' below)",
                suggested.len() - before
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
    section.suggested = suggested.len();
    let (to_screen, skipped) = candidates::screenable(suggested, &existing);
    section.skipped = skipped;

    // Screening by planner cost, where HypoPG is there.
    let survivors: Vec<candidates::Candidate> = match screen::prepare(&mut base).await {
        Ok(version) => {
            section.hypopg = Some(version);
            for c in &to_screen {
                crate::interrupt::check()?;
                section
                    .screened
                    .push(screen::screen(&mut base, c, &plans, &partitioned, ctx).await?);
            }
            let mut kept: Vec<&Screened> = section.screened.iter().filter(|s| s.survives).collect();
            kept.sort_by(|a, b| best_fall(b).total_cmp(&best_fall(a)));
            // Where HypoPG failed on a plan (it does on some plans under per-row auth.uid()
            // policies), the candidate is built for real after the screened ones, those
            // suggested by the most plans first.
            let mut failed: Vec<&Screened> = section
                .screened
                .iter()
                .filter(|s| s.failed && !partitioned.contains(&s.candidate.table))
                .collect();
            failed.sort_by_key(|s| std::cmp::Reverse(s.candidate.suggested_by.len()));
            kept.extend(failed);
            kept.into_iter().map(|s| s.candidate.clone()).collect()
        }
        Err(e) => {
            let note = format!("{e:#}");
            crate::say!("  advise: {note}");
            section.hypopg_note = Some(note);
            to_screen
                .into_iter()
                .filter(|c| !partitioned.contains(&c.table))
                .collect()
        }
    };
    let engine = opts.engine();
    let mut copies = verify::Copies {
        without: &mut base,
        with: &mut changed,
        without_target: without.target(),
        with_target: with.target(),
    };
    for c in survivors.iter().take(opts.max_verified) {
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
        let mut v = verify::verify(&mut copies, change, &plans, mix, ctx, &engine).await?;
        v.from_rls = c.from_rls;
        v.sources = c.sources.clone();
        crate::say!("  advise: {} {:?}: {}", c.key(), v.verdict, v.reason);
        section.created.push(v);
    }
    section
        .created
        .sort_by(|a, b| b.net_ms_per_1000.total_cmp(&a.net_ms_per_1000));
    one_per_prefix(&mut section.created, &survivors);

    // Existing indexes no plan uses, or another index makes redundant.
    let used: BTreeSet<&str> = plans
        .iter()
        .flat_map(|p| {
            p.uses
                .iter()
                .flat_map(|u| u.indexes_used.iter().map(String::as_str))
        })
        .collect();
    let redundant = candidates::redundant(&existing);
    // Never proposed: constraint and unique indexes, indexes a foreign key's checks use, and
    // a partitioned table's (its plans name the partitions' indexes).
    // Tables no catalog query touches (the other api_usage layout) give no evidence either way.
    let droppable = existing.iter().filter(|i| {
        !i.constraint
            && !i.unique
            && !i.leads_with_foreign_key
            && !partitioned.contains(&i.table)
            && plans.iter().any(|p| p.touches(&i.table))
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
        let change = verify::Change {
            action: Action::Drop,
            index: ix.name.clone(),
            table: ix.table.clone(),
            apply: format!(
                "DROP INDEX CONCURRENTLY {}.{}",
                schema_of(&ix.table),
                ix.name
            ),
            undo: ix.definition.clone(),
            statement: format!(
                "DROP INDEX CONCURRENTLY IF EXISTS {}.{}",
                schema_of(&ix.table),
                ix.name
            ),
        };
        let mut v = verify::verify(&mut copies, change, &plans, mix, ctx, &engine).await?;
        v.bytes = Some(ix.bytes);
        v.reason = format!("{why}; {}", v.reason);
        crate::say!("  advise: drop {} {:?}: {}", ix.name, v.verdict, v.reason);
        section.dropped.push(v);
    }
    let file_name = "advice.sql";
    advice_file::write(&out_dir.join(file_name), section)?;
    section.advice_file = Some(file_name.into());
    let strategy = "advice_indexes.sql";
    advice_file::write_strategy(&out_dir.join(strategy), section)?;
    section.strategy_file = Some(strategy.into());
    Ok(())
}

/// Two recommended indexes where one's key is a prefix of the other's serve the same scans:
/// the one under which the workload touches fewer buffers (weighted by the mix) is kept, a
/// tie going to the smaller index. Buffers, not the time saved: they are the same from one
/// run to the next, the net time of two close candidates is not.
fn one_per_prefix(created: &mut [Verified], candidates: &[candidates::Candidate]) {
    let columns = |index: &str| {
        candidates
            .iter()
            .find(|c| c.index_name() == index)
            .map(|c| c.columns.iter().map(|k| k.name.clone()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let work = |v: &Verified| -> f64 {
        v.effects
            .iter()
            .filter_map(|e| {
                e.work_with
                    .as_ref()
                    .map(|w| e.per_1000 * w.shared_buffers() as f64)
            })
            .sum()
    };
    let better = |a: &Verified, b: &Verified| {
        (work(a), a.bytes.unwrap_or(0), &a.index) < (work(b), b.bytes.unwrap_or(0), &b.index)
    };
    for i in 0..created.len() {
        for j in i + 1..created.len() {
            let (a, b) = (columns(&created[i].index), columns(&created[j].index));
            let overlaps = a.iter().zip(&b).all(|(x, y)| x == y);
            let both = created[i].verdict == Verdict::Recommended
                && created[j].verdict == Verdict::Recommended;
            if !(both && overlaps && created[i].table == created[j].table) {
                continue;
            }
            let (keep, lose) = if better(&created[i], &created[j]) {
                (i, j)
            } else {
                (j, i)
            };
            let kept = created[keep].index.clone();
            let loser = &mut created[lose];
            loser.verdict = Verdict::Rejected;
            loser.reason = format!(
                "{}; but {kept} (one leads with the other's columns) serves the workload in fewer buffers",
                loser.reason
            );
        }
    }
}

/// The schema of a qualified `schema.table` name.
pub(super) fn schema_of(table: &str) -> &str {
    table.split_once('.').map(|(s, _)| s).unwrap_or("public")
}

/// The largest fall of an estimated cost a screened candidate brought (0–1).
fn best_fall(s: &Screened) -> f64 {
    s.costs
        .iter()
        .filter(|c| c.uses_index && c.before > 0.0)
        .map(|c| 1.0 - c.after / c.before)
        .fold(0.0, f64::max)
}

async fn relations(conn: &mut PgConnection) -> Result<Relations> {
    let rows = sqlx::query(sql(&file().queries.relations))
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Relations::default();
    for r in rows {
        let relation: String = r.try_get(0)?;
        let table: String = r.try_get(1)?;
        let columns: Vec<String> = r.try_get(2)?;
        out.by_relation
            .insert(relation, (table, columns.into_iter().collect()));
    }
    Ok(out)
}

async fn existing_indexes(conn: &mut PgConnection) -> Result<Vec<ExistingIndex>> {
    let rows = sqlx::query(sql(&file().queries.indexes))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ExistingIndex {
                name: r.try_get(0)?,
                table: r.try_get(1)?,
                columns: r.try_get(2)?,
                predicate: r.try_get(3)?,
                unique: r.try_get(4)?,
                constraint: r.try_get(5)?,
                definition: r.try_get(6)?,
                leads_with_foreign_key: r.try_get(7)?,
                bytes: r.try_get(8)?,
            })
        })
        .collect()
}

/// Executions of each catalog query per 1,000 transactions of the scenario: users split by
/// part weight, transactions by their weight, steps by their probability.
pub fn mix_per_1000(scenario: &Scenario) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let parts: usize = scenario.parts.iter().map(|p| p.weight).sum();
    for part in &scenario.parts {
        let txs: usize = part.transactions.iter().map(|t| t.weight).sum();
        for tx in &part.transactions {
            let share = 1000.0 * part.weight as f64 / parts.max(1) as f64 * tx.weight as f64
                / txs.max(1) as f64;
            for step in &tx.steps {
                *out.entry(step.query.name.clone()).or_insert(0.0) += share * step.probability;
            }
        }
    }
    out
}
