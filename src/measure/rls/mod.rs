//! `storybench rls`: what the RLS policies cost per app query, measured the way Supabase
//! serves requests (PostgREST-style claims in each transaction), why (plan evidence), and
//! whether they isolate tenants (the audit). Policy sets are switched with
//! `schema::set_policies` and the original set is restored at the end, whatever happens.

mod audit;
pub(crate) mod evidence;
mod matrix;
mod scenario;
mod setup_cost;
mod types;

pub use matrix::{mode_name, BYPASS};
pub use types::*;

use crate::auth::Principal;
use crate::catalog::{QuerySpec, Role};
use crate::measure::exec::RequestContext;
use crate::params::{rng_for, Population, SubjectUser};
use crate::schema;
use crate::target::Target;
use anyhow::{bail, Context, Result};
use matrix::Matrix;
use sqlx::postgres::PgConnection;
use std::path::Path;
use std::time::Duration;
use uuid::Uuid;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlsOptions {
    /// App queries to measure (empty: every app query of the catalog).
    pub queries: Vec<String>,
    pub users: Vec<crate::params::Subject>,
    /// Policy sets measured (and audited): files of schema/policies/.
    pub policy_sets: Vec<String>,
    /// Unused since the engine's rounds replaced trials (kept for old configurations).
    pub trials: usize,
    /// Most interleaved rounds per (query, subject) block (raised to what `percentiles` need).
    pub runs: usize,
    pub warmup: usize,
    /// Time budget per (query, subject) block once the floor is reached.
    #[serde(with = "crate::units::duration_secs")]
    pub budget: Duration,
    /// Percentiles the stage reports: their sample counts set the rounds' floor.
    pub percentiles: Vec<f64>,
    /// The run's `--seed` (not written in presets: every stage takes the dataset's).
    #[serde(default)]
    pub seed: u64,
    #[serde(with = "crate::units::duration_secs")]
    pub statement_timeout: Duration,
    /// Index strategy the leakproof-trap queries are measured on (None: the current one).
    pub trap_indexes: Option<String>,
    /// Measure the latency matrix (false: audit only).
    pub measure: bool,
    pub audit: bool,
    /// Users sampled as attackers (anon comes on top).
    pub audit_users: usize,
    /// Interleaved transactions of the claims set-up measurement (0: skip).
    pub setup_runs: usize,
    /// Run the RLS modes with no claims at all (a misconfigured client), to check that the
    /// harness reports it as a configuration error.
    pub claims_unset: bool,
}

impl RlsOptions {
    crate::engine_options_from_fields!();

    pub fn validate(&self) -> Result<()> {
        for s in &self.policy_sets {
            schema::validate_name("policies", s)?;
        }
        if let Some(t) = &self.trap_indexes {
            schema::validate_name("indexes", t)?;
        }
        if self.measure && self.users.is_empty() {
            bail!("--users needs at least one of heavy, median");
        }
        app_queries(&self.queries)?;
        Ok(())
    }
}

fn app_queries(names: &[String]) -> Result<Vec<QuerySpec>> {
    let catalog = crate::catalog::load_default()?;
    let selected = catalog.select(names)?;
    let not_app: Vec<&str> = selected
        .iter()
        .filter(|q| q.role != Role::App)
        .map(|q| q.name.as_str())
        .collect();
    if !names.is_empty() && !not_app.is_empty() {
        bail!(
            "the RLS stage measures app queries only (service and analytics run as service_role, which bypasses RLS): {}",
            not_app.join(", ")
        );
    }
    Ok(selected
        .into_iter()
        .filter(|q| q.role == Role::App)
        .cloned()
        .collect())
}

/// Runs the stage. Leaves the schema on the policy set and index strategy it found.
pub async fn run(target: &Target, opts: &RlsOptions, out_dir: &Path) -> Result<RlsSection> {
    opts.validate()?;
    let scenario = scenario::load()?;
    let specs = app_queries(&opts.queries)?;
    let mut conn = target.connect().await?;
    let dataset = crate::seed::require_complete(&mut conn).await?;
    let variant = schema::current_variant(&mut conn)
        .await?
        .unwrap_or_default();
    let ctx = RequestContext::new(variant.api_usage, opts.statement_timeout);
    let population = Population::load(&mut conn, dataset.anchor).await?;
    let mut section = RlsSection {
        layout: variant.api_usage,
        indexes: variant.indexes.clone(),
        policies_found: variant.policies.clone(),
        claims: if opts.claims_unset {
            Claims::Unset
        } else {
            Claims::User
        },
        trials: opts.trials,
        runs: opts.runs,
        warmup: opts.warmup,
        spread_method: "paired_rounds".into(),
        trap_indexes: opts
            .trap_indexes
            .clone()
            .unwrap_or_else(|| variant.indexes.clone()),
        ..Default::default()
    };
    section.modes = mode_infos(&opts.policy_sets);
    let mut session = Some(conn);
    let outcome = stage(
        target,
        &mut session,
        opts,
        &scenario,
        &specs,
        &population,
        &ctx,
        out_dir,
        &mut section,
    )
    .await;
    // Put the schema back as it was, whatever happened.
    let mut conn = match session {
        Some(c) => c,
        None => target.connect().await?,
    };
    let current = schema::current_variant(&mut conn)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    let switched = opts.measure || (opts.audit && !opts.policy_sets.is_empty());
    if switched || current.policies != variant.policies {
        if let Err(e) = schema::set_policies(&mut conn, &variant.policies).await {
            tracing::warn!("could not restore policy set {}: {e:#}", variant.policies);
        }
    }
    if current.indexes != variant.indexes {
        if let Err(e) = schema::set_indexes(&mut conn, &variant.indexes).await {
            tracing::warn!(
                "could not restore index strategy {}: {e:#}",
                variant.indexes
            );
        }
    }
    // Interrupted: keep what was measured (the command marks the run interrupted).
    if !crate::interrupt::interrupted() {
        outcome?;
    }
    finish(&mut section);
    Ok(section)
}

#[allow(clippy::too_many_arguments)]
async fn stage(
    target: &Target,
    conn: &mut Option<PgConnection>,
    opts: &RlsOptions,
    scenario: &scenario::RlsScenario,
    specs: &[QuerySpec],
    population: &Population,
    ctx: &RequestContext,
    out_dir: &Path,
    section: &mut RlsSection,
) -> Result<()> {
    // The audit of the policies as found comes first: before anything is re-applied.
    let (attackers, victims) = audit_subjects(population, opts);
    let c = conn.as_mut().context("connection")?;
    if opts.audit {
        section.audit = Some(AuditSection {
            users: victims.iter().map(Uuid::to_string).collect(),
            seed: opts.seed,
            ..Default::default()
        });
        let found = section.policies_found.clone();
        let set = audit::audit_policies(c, scenario, &attackers, &victims, &found, true).await?;
        push_audit(section, set);
    }
    if opts.measure {
        let refs: Vec<&QuerySpec> = specs.iter().collect();
        measure_matrix(
            target, conn, opts, scenario, &refs, population, ctx, out_dir, section,
        )
        .await?;
        if opts.setup_runs > 0 {
            let conn = conn.as_mut().context("connection")?;
            section.setup_cost = Some(claims_setup_cost(conn, opts, scenario, population).await?);
        }
    }
    let conn = conn.as_mut().context("connection")?;
    if opts.audit {
        for set in &opts.policy_sets {
            crate::interrupt::check()?;
            schema::set_policies(conn, set).await?;
            let s = audit::audit_policies(conn, scenario, &attackers, &victims, set, false).await?;
            push_audit(section, s);
        }
    }
    Ok(())
}

/// The latency matrix (and the leakproof trap's) on copies; the session's connection is
/// closed meanwhile and reopened after.
#[allow(clippy::too_many_arguments)]
async fn measure_matrix(
    target: &Target,
    conn: &mut Option<PgConnection>,
    opts: &RlsOptions,
    scenario: &scenario::RlsScenario,
    refs: &[&QuerySpec],
    population: &Population,
    ctx: &RequestContext,
    out_dir: &Path,
    section: &mut RlsSection,
) -> Result<()> {
    let subjects: Vec<SubjectUser> = opts
        .users
        .iter()
        .map(|s| SubjectUser::of(*s, population))
        .collect();
    let c = conn.as_mut().context("connection")?;
    let drawn = draw_params(c, opts, refs, &subjects, population).await?;
    let matrix = Matrix {
        opts,
        specs: refs,
        subjects: &subjects,
        drawn: &drawn,
        sets: &opts.policy_sets,
        skip: &[],
        ctx,
        out_dir,
        label: &section.indexes,
        tag: &scenario.matrix.statement_tag,
    };
    // The leakproof trap on the strategy that has indexes able to serve it.
    let trap_idx: Vec<usize> = (0..refs.len())
        .filter(|i| refs[*i].has_tag("leakproof_trap"))
        .collect();
    let trap_specs: Vec<&QuerySpec> = trap_idx.iter().map(|i| refs[*i]).collect();
    let trap_drawn: Vec<_> = trap_idx.iter().map(|i| drawn[*i].clone()).collect();
    let trap_label = section.trap_indexes.clone();
    let skip = ["definer".to_string()];
    let trap = (section.trap_indexes != section.indexes && !trap_idx.is_empty()).then(|| Matrix {
        specs: &trap_specs,
        drawn: &trap_drawn,
        skip: &skip,
        label: &trap_label,
        ..matrix
    });
    // Copies cannot be made while this session is connected to the dataset.
    if let Some(c) = conn.take() {
        sqlx::Connection::close(c).await?;
    }
    let measured = matrix::on_copies(target, &matrix, trap.as_ref()).await;
    *conn = Some(target.connect().await?);
    (section.queries, section.trap_queries) = measured?;
    Ok(())
}

/// Each query's parameters per subject, each from its own seeded stream.
async fn draw_params(
    c: &mut PgConnection,
    opts: &RlsOptions,
    refs: &[&QuerySpec],
    subjects: &[SubjectUser],
    population: &Population,
) -> Result<Vec<Vec<Vec<crate::params::ParamValue>>>> {
    let mut drawn = Vec::new();
    for spec in refs {
        let mut per = Vec::new();
        for s in subjects {
            let mut rng = rng_for(opts.seed, &format!("rls:{}:{}", spec.name, s.subject));
            per.push(population.draw(c, spec, s.user, &mut rng).await?);
        }
        drawn.push(per);
    }
    Ok(drawn)
}

/// What setting the claims costs per transaction, as the heaviest user.
async fn claims_setup_cost(
    conn: &mut PgConnection,
    opts: &RlsOptions,
    scenario: &scenario::RlsScenario,
    population: &Population,
) -> Result<SetupCost> {
    crate::say!("  rls: claims set-up cost");
    let who = Principal::User(population.heavy());
    setup_cost::measure(
        conn,
        &scenario.setup_cost.statement,
        &who,
        opts.setup_runs,
        (opts.setup_runs / 10).max(10),
    )
    .await
}

fn audit_subjects(population: &Population, opts: &RlsOptions) -> (Vec<audit::Attacker>, Vec<Uuid>) {
    let mut rng = rng_for(opts.seed, "rls:audit");
    let victims = population.sample_users(opts.audit_users.max(2), &mut rng);
    let mut attackers: Vec<audit::Attacker> = victims
        .iter()
        .map(|u| audit::Attacker {
            label: format!("user {u}"),
            who: Principal::User(*u),
            id: *u,
        })
        .collect();
    attackers.push(audit::Attacker {
        label: "anon".into(),
        who: Principal::Anon,
        id: Uuid::nil(),
    });
    (attackers, victims)
}

fn push_audit(section: &mut RlsSection, set: AuditSet) {
    if let Some(a) = section.audit.as_mut() {
        a.attempts += set.attempts;
        a.leaks += set.leaks;
        a.errors += set.errors;
        crate::say!(
            "  rls audit: policies {}{}: {} attempts, {} leaks, {} blocked, {} allowed by design, {} errors",
            set.policies,
            if set.as_found { " (as found)" } else { "" },
            set.attempts,
            set.leaks,
            set.blocked,
            set.allowed,
            set.errors
        );
        for l in &set.leaks_found {
            crate::say!(
                "  rls audit LEAK: {} {} as {} ({} attempt(s) got through)",
                l.target,
                l.verb,
                l.role,
                l.attempts
            );
        }
        a.sets.push(set);
    }
}

fn mode_infos(sets: &[String]) -> Vec<ModeInfo> {
    let mut out = vec![ModeInfo {
        name: BYPASS.into(),
        policies: None,
        form: Form::Sql,
        description: "service_role (BYPASSRLS) with the explicit user filter: the floor".into(),
    }];
    for set in sets {
        let scope = if set == "definer" {
            " (child-table queries only)"
        } else {
            ""
        };
        out.push(ModeInfo {
            name: mode_name(set, false),
            policies: Some(set.clone()),
            form: Form::Sql,
            description: format!(
                "authenticated under the {set} policies, with the explicit user filter{scope}"
            ),
        });
        out.push(ModeInfo {
            name: mode_name(set, true),
            policies: Some(set.clone()),
            form: Form::PolicyOnly,
            description: format!(
                "authenticated under the {set} policies, the policy alone filtering{scope}"
            ),
        });
    }
    out
}

/// Derived figures: correctness, configuration errors, trap, child tables, advice.
fn finish(section: &mut RlsSection) {
    for q in section.queries.iter().chain(section.trap_queries.iter()) {
        for s in &q.subjects {
            for m in &s.modes {
                let who = format!("{} · {} user · {}", q.name, s.subject, m.mode);
                if let Some(e) = &m.config_error {
                    section.config_errors.push(format!("{who}: {e}"));
                } else if m.same_rows == Some(false) {
                    section.correctness_failures.push(format!(
                        "{who}: {} row(s) vs bypass's, different content",
                        m.rows.unwrap_or(0)
                    ));
                }
            }
        }
    }
    section.trap = if section.trap_queries.is_empty() {
        evidence::trap_findings(&section.queries, &section.indexes)
    } else {
        evidence::trap_findings(&section.trap_queries, &section.trap_indexes)
    };
    section.child_tables = evidence::child_table_costs(&section.queries);
}
