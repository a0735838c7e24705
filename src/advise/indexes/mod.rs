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
mod steps;
mod types;
mod verify;

pub use advice_file::evidence;
pub use types::*;

use crate::auth::Principal;
use crate::catalog::QuerySpec;
use crate::measure::exec::RequestContext;
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
use std::collections::BTreeMap;
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
    let plans = steps::read_plans(&mut base, specs, subjects, drawn, &relations, ctx).await?;
    section.plans_read = plans.len();
    let mut suggested = steps::from_plans(&plans);
    suggested
        .extend(steps::from_qualstats(without.target(), &plans, &relations, ctx, section).await);
    section.suggested = suggested.len();
    let (to_screen, skipped) = candidates::screenable(suggested, &existing);
    section.skipped = skipped;
    let survivors =
        steps::screen_all(&mut base, to_screen, &plans, &partitioned, ctx, section).await?;
    let engine = opts.engine();
    let mut copies = verify::Copies {
        without: &mut base,
        with: &mut changed,
        without_target: without.target(),
        with_target: with.target(),
    };
    let work = steps::Workload {
        plans: &plans,
        mix,
        ctx,
        engine: &engine,
    };
    let verified = &survivors[..survivors.len().min(opts.max_verified)];
    steps::verify_creates(&mut copies, verified, &work, section).await?;
    one_per_prefix(&mut section.created, &survivors);
    steps::verify_drops(&mut copies, &existing, &partitioned, &work, section).await?;
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
