//! Screening with HypoPG: each candidate as a hypothetical index, the affected queries
//! EXPLAINed again under their own roles, kept where the planner uses it and the estimated
//! cost falls. Planner cost only: the survivors are then built and measured for real.

use super::candidates::Candidate;
use super::predicates;
use super::types::{CostChange, Screened};
use super::{file, Plan};
use crate::measure::exec::{self, RequestContext};
use crate::sql_files::sql;
use anyhow::{Context, Result};
use sqlx::postgres::PgConnection;

/// Smallest fall of a query's estimated cost that lets a candidate through.
pub const MIN_COST_FALL: f64 = 0.10;

/// Creates HypoPG on the copy; the error says what is missing.
pub async fn prepare(conn: &mut PgConnection) -> Result<String> {
    let available: Option<String> = sqlx::query_scalar(sql(&file().queries.hypopg_available))
        .fetch_optional(&mut *conn)
        .await?;
    if available.is_none() {
        anyhow::bail!(
            "HypoPG is not installed on the server (Debian: postgresql-15-hypopg); candidates are built for real without screening"
        );
    }
    sqlx::query(sql(&file().queries.create_hypopg))
        .execute(&mut *conn)
        .await
        .context("CREATE EXTENSION hypopg on storybench's copy failed (it needs a superuser and a server that allows it); candidates are built for real without screening")?;
    let version: String = sqlx::query_scalar(sql(&file().queries.hypopg_version))
        .fetch_one(&mut *conn)
        .await?;
    Ok(version)
}

/// One candidate against every plan that reads or writes its table.
pub async fn screen(
    conn: &mut PgConnection,
    candidate: &Candidate,
    plans: &[Plan<'_>],
    partitioned: &[String],
    ctx: &RequestContext,
) -> Result<Screened> {
    let mut out = Screened {
        candidate: candidate.clone(),
        key: candidate.key(),
        modelled: true,
        note: None,
        costs: Vec::new(),
        survives: false,
        failed: false,
    };
    if partitioned.contains(&candidate.table) {
        out.modelled = false;
        out.note = Some("HypoPG 1.3.1 cannot model an index on a partitioned table".into());
        return Ok(out);
    }
    let created: Result<(i64, String), sqlx::Error> =
        sqlx::query_as(sql(&file().queries.hypothetical))
            .bind(candidate.hypothetical_sql())
            .fetch_one(&mut *conn)
            .await;
    let (oid, _name) = match created {
        Ok(r) => r,
        Err(e) => {
            out.modelled = false;
            out.note = Some(format!("HypoPG refused it: {e}"));
            return Ok(out);
        }
    };
    let marker = format!("<{oid}>");
    let result: Result<()> = async {
        for plan in plans.iter().filter(|p| p.touches(&candidate.table)) {
            let Some(before) = plan.cost else { continue };
            let raw = exec::explain_as(
                conn,
                &file().queries.explain_screen,
                &plan.spec.sql,
                plan.params,
                &plan.who,
                ctx,
            )
            .await
            .with_context(|| format!("EXPLAIN of {} with it", plan.spec.name))?;
            let after = predicates::total_cost(&raw).unwrap_or(before);
            let uses_index = predicates::indexes_used(&raw)
                .iter()
                .any(|i| i.starts_with(&marker));
            out.costs.push(CostChange {
                query: plan.spec.name.clone(),
                subject: plan.subject.into(),
                before,
                after,
                uses_index,
            });
        }
        Ok(())
    }
    .await;
    sqlx::query(sql(&file().queries.hypothetical_reset))
        .execute(&mut *conn)
        .await?;
    // HypoPG failing on one plan leaves the candidate unscreened, not the advice undone.
    if let Err(e) = result {
        if crate::interrupt::interrupted() {
            return Err(e);
        }
        out.failed = true;
        out.note = Some(format!("HypoPG failed: {e:#}; built for real unscreened"));
        return Ok(out);
    }
    out.survives = out
        .costs
        .iter()
        .any(|c| c.uses_index && c.after <= c.before * (1.0 - MIN_COST_FALL));
    if !out.survives {
        out.note = Some(if out.costs.iter().any(|c| c.uses_index) {
            format!(
                "the planner uses it but no estimated cost falls by {:.0} %",
                MIN_COST_FALL * 100.0
            )
        } else {
            "the planner does not use it".into()
        });
    }
    Ok(out)
}
