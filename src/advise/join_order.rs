//! `advise schema --measure`: app reads whose join order the RLS policies change. A policy's
//! filter on a joined table (heroes' `(select auth.uid()) = user_id`) is estimated as one
//! user's share of that table and multiplied into the join as if it were independent of the
//! query's own filter on the other table (that user's stories): the join is expected to
//! return about one row, a LIMIT no longer looks like it stops early, and the plan starts
//! from the joined table and sorts all the user's rows. Found from the plans under RLS and
//! bypassing it (service role); the explanation is both plans' join order, buffers and rows;
//! the proposal (the leading table's SELECT policy in another form, SQL in
//! `schema/advise_lint.toml`) is made on the second copy and the read timed against the copy
//! as it is, with the bypass plan's work as the bound.

use super::costs::{cost, AdvisoryCost, AppQuery};
use super::lint::{file, Rule};
use crate::auth::Principal;
use crate::measure::engine::{EngineOptions, Work};
use crate::measure::exec::RequestContext;
use crate::plan::PlanSummary;
use crate::sql_files::sql;
use anyhow::Result;
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection, Executor};

/// A read counts as reordered by the policies when its plan under RLS starts from another
/// table than bypassing RLS and touches at least this many times the buffers.
pub const MIN_BUFFER_RATIO: f64 = 1.5;

pub(super) async fn measure(
    a: &mut PgConnection,
    b: &mut PgConnection,
    app: &[AppQuery<'_>],
    policies: &str,
    ctx: &RequestContext,
    opts: &EngineOptions,
) -> Result<Vec<AdvisoryCost>> {
    let mut out = Vec::new();
    for q in app.iter().filter(|q| q.spec.is_read()) {
        crate::interrupt::check()?;
        let under_rls = warm_plan(a, q, &q.who, ctx).await?;
        let bypass = warm_plan(a, q, &Principal::Service, ctx).await?;
        let Some(lead) = reordered(&under_rls, &bypass) else {
            continue;
        };
        let fix: Vec<String> = sqlx::query_scalar(sql(&file().queries.fix_join_order))
            .bind(&lead)
            .fetch_all(&mut *a)
            .await?;
        let mut tx = b.begin().await?;
        for s in &fix {
            tx.execute(AssertSqlSafe(s.clone())).await?;
        }
        tx.commit().await?;
        let mut conns: [&mut PgConnection; 2] = [&mut *a, &mut *b];
        let arms = [(0, q.who.clone()), (1, q.who.clone())];
        let o =
            crate::measure::engine::two_arms(&mut conns, arms, q.spec, &q.params, ctx, opts).await;
        crate::schema::set_policies(b, policies).await?;
        let mut c = cost(
            Rule::RlsJoinOrder,
            format!("public.{lead}"),
            fix,
            q.spec.name.clone(),
            Some(q.subject.clone()),
            o,
        );
        let bypass_work = Work::from_plan(&bypass);
        c.plans = vec![
            explain("under RLS", &under_rls),
            explain("bypassing RLS", &bypass),
        ];
        let verdict = if c.fix.is_empty() {
            Some(format!(
                "no SELECT policy on {lead} in the form (SELECT auth.uid()) = col to rewrite"
            ))
        } else {
            judge(&c, &bypass_work)
        };
        c.plans.extend(verdict);
        c.work_bypass = Some(bypass_work);
        out.push(c);
    }
    Ok(out)
}

/// The statement's plan on a connection that has run it once (the first run's buffers are
/// mostly the catalog lookups of `auth.uid()`, not the tables').
async fn warm_plan(
    conn: &mut PgConnection,
    q: &AppQuery<'_>,
    who: &Principal,
    ctx: &RequestContext,
) -> Result<PlanSummary> {
    crate::measure::exec::explain(conn, &q.spec.sql, &q.params, who, ctx).await?;
    let raw = crate::measure::exec::explain(conn, &q.spec.sql, &q.params, who, ctx).await?;
    crate::plan::summarize(&raw)
}

/// The table the plan under RLS starts from, when it is not the one bypassing RLS starts from
/// and the plan under RLS touches clearly more buffers.
pub fn reordered(under_rls: &PlanSummary, bypass: &PlanSummary) -> Option<String> {
    let lead = under_rls.relations.first()?;
    let other = bypass.relations.first()?;
    let buffers = |p: &PlanSummary| (p.shared_hit + p.shared_read) as f64;
    (lead.relation != other.relation
        && under_rls.relations.len() > 1
        && buffers(under_rls) >= MIN_BUFFER_RATIO * buffers(bypass).max(1.0))
    .then(|| lead.relation.clone())
}

/// One plan in a line: its scans in order, its first join's estimated and actual rows, its
/// buffers.
pub fn explain(label: &str, p: &PlanSummary) -> String {
    let scans: Vec<String> = p
        .relations
        .iter()
        .map(|r| format!("{} ({} rows × {})", r.describe(), r.actual_rows, r.loops))
        .collect();
    let join = p
        .nodes
        .iter()
        .find(|n| n.node_type.contains("Join") || n.node_type == "Nested Loop")
        .map(|n| {
            format!(
                "; {} estimated {} rows, {} actual",
                n.node_type, n.est_rows, n.actual_rows
            )
        })
        .unwrap_or_default();
    format!(
        "{label}: {}{join}; {} shared buffers",
        scans.join(" → "),
        p.shared_hit + p.shared_read
    )
}

/// The proposal's work against the plan as is and the bypass bound, in one line.
fn judge(c: &AdvisoryCost, bypass: &Work) -> Option<String> {
    let (a, f) = (c.work_as_is.as_ref()?, c.work_fixed.as_ref()?);
    let (a, f, b) = (
        a.shared_buffers(),
        f.shared_buffers(),
        bypass.shared_buffers(),
    );
    Some(if f < a {
        format!("the proposal: {a} → {f} shared buffers (bypassing RLS: {b})")
    } else {
        format!(
            "the proposal does not help: {a} → {f} shared buffers (bypassing RLS: {b}); keep the policy as it is"
        )
    })
}
