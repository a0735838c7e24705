//! btree vs BRIN on api_usage.created_at, both layouts: size, build time and latency of
//! the range queries. Everything happens in one transaction that is rolled back: the
//! strategy's created_at indexes are set aside, each comparison index is built, measured
//! and dropped, so nothing the comparison builds can outlive it (not even a crash).
//! The transaction holds the tables' locks meanwhile; nothing else runs during a stage.

use super::layouts::Drawn;
use super::probe::{self, Arm};
use super::types::*;
use super::{context, queries, roles, PartitionsOptions};
use crate::catalog::QuerySpec;
use crate::measure::exec::principal_for;
use crate::schema::Layout;
use crate::sql_files::{fill, sql};
use anyhow::{Context, Result};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection};
use std::time::Instant;

const KINDS: [&str; 2] = ["btree", "brin"];

pub async fn compare(
    conn: &mut PgConnection,
    opts: &PartitionsOptions,
    specs: &[&QuerySpec],
    drawn: &[Drawn],
) -> Result<IndexComparison> {
    drop_leftovers(conn).await?;
    let range: Vec<(&QuerySpec, &Drawn)> = specs
        .iter()
        .copied()
        .zip(drawn)
        .filter(|(s, _)| roles().created_at_range.contains(&s.name))
        .collect();
    let mut out = IndexComparison::default();
    if range.is_empty() {
        return Ok(out);
    }
    let mut tx = conn.begin().await?;
    out.set_aside = set_aside(&mut tx).await?;
    for kind in KINDS {
        crate::interrupt::check()?;
        let (figures, names) = build(&mut tx, kind).await?;
        out.kinds.push(figures);
        for (spec, d) in &range {
            out.queries
                .extend(query_runs(&mut tx, opts, spec, d, kind, &names).await);
        }
        for name in [&queries().cmp_index_partitioned, &queries().cmp_index_flat] {
            let index = fill(name, &[("kind", kind)]);
            sqlx::raw_sql(AssertSqlSafe(fill(
                &queries().drop_index,
                &[("index", &index)],
            )))
            .execute(&mut *tx)
            .await?;
        }
    }
    // Undo everything: the set-aside indexes come back, the comparison indexes never existed.
    tx.rollback().await?;
    Ok(out)
}

/// Leftovers could only come from a server crash mid-build; drop them by their prefix.
async fn drop_leftovers(conn: &mut PgConnection) -> Result<()> {
    let leftovers: Vec<String> = sqlx::query_scalar(sql(&queries().leftover_cmp_indexes))
        .fetch_all(&mut *conn)
        .await?;
    for index in leftovers {
        sqlx::raw_sql(AssertSqlSafe(fill(
            &queries().drop_index,
            &[("index", &index)],
        )))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Drops the strategy's created_at indexes inside the transaction; returns their names.
async fn set_aside(tx: &mut PgConnection) -> Result<Vec<String>> {
    let names: Vec<String> = sqlx::query_scalar(sql(&queries().created_at_indexes))
        .fetch_all(&mut *tx)
        .await?;
    for index in &names {
        sqlx::raw_sql(AssertSqlSafe(fill(
            &queries().drop_index,
            &[("index", index)],
        )))
        .execute(&mut *tx)
        .await
        .with_context(|| format!("setting {index} aside"))?;
    }
    Ok(names)
}

/// Builds the `kind` index on both layouts: its sizes and build times, and the names of
/// the indexes it made (a partitioned index has one per partition).
async fn build(tx: &mut PgConnection, kind: &str) -> Result<(IndexKind, Vec<String>)> {
    let mut figures = IndexKind {
        kind: kind.into(),
        ..Default::default()
    };
    let mut names = Vec::new();
    for (layout, create, name) in [
        (
            Layout::Partitioned,
            &queries().create_cmp_index_partitioned,
            &queries().cmp_index_partitioned,
        ),
        (
            Layout::Flat,
            &queries().create_cmp_index_flat,
            &queries().cmp_index_flat,
        ),
    ] {
        let index = fill(name, &[("kind", kind)]);
        let unqualified = index.rsplit('.').next().unwrap_or(&index);
        let started = Instant::now();
        sqlx::raw_sql(AssertSqlSafe(fill(
            create,
            &[("name", unqualified), ("kind", kind)],
        )))
        .execute(&mut *tx)
        .await
        .with_context(|| format!("building the {kind} index on the {layout} layout"))?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let bytes: i64 = sqlx::query_scalar(sql(&queries().index_bytes))
            .bind(&index)
            .fetch_one(&mut *tx)
            .await?;
        let tree: Vec<String> = sqlx::query_scalar(sql(&queries().index_tree_names))
            .bind(&index)
            .fetch_all(&mut *tx)
            .await?;
        names.extend(tree);
        if layout == Layout::Partitioned {
            (figures.partitioned_bytes, figures.partitioned_build_ms) = (bytes, ms);
        } else {
            (figures.flat_bytes, figures.flat_build_ms) = (bytes, ms);
        }
    }
    crate::say!(
        "  created_at {kind}: partitioned {} (built in {:.0} ms), flat {} ({:.0} ms)",
        crate::format::human_bytes(figures.partitioned_bytes as f64),
        figures.partitioned_build_ms,
        crate::format::human_bytes(figures.flat_bytes as f64),
        figures.flat_build_ms
    );
    Ok((figures, names))
}

/// One range query on both layouts with the `kind` index: access paths, whether one of
/// `names` serves it, and its latency (the layouts interleaved by the engine).
async fn query_runs(
    tx: &mut PgConnection,
    opts: &PartitionsOptions,
    spec: &QuerySpec,
    d: &Drawn,
    kind: &str,
    names: &[String],
) -> Vec<IndexQueryRun> {
    let who = principal_for(spec, d.user);
    let (ctx_p, ctx_f) = (
        context(Layout::Partitioned, opts),
        context(Layout::Flat, opts),
    );
    let arms = [&ctx_p, &ctx_f].map(|ctx| Arm {
        sql: &spec.sql,
        params: &d.params,
        who: &who,
        ctx,
        settings: vec![],
    });
    let mut runs: Vec<IndexQueryRun> = Layout::ALL
        .iter()
        .map(|l| IndexQueryRun {
            query: spec.name.clone(),
            layout: *l,
            kind: kind.into(),
            ..Default::default()
        })
        .collect();
    for (arm, run) in arms.iter().zip(runs.iter_mut()) {
        match probe::explain(tx, arm, false)
            .await
            .and_then(|raw| crate::plan::summarize(&raw))
        {
            Ok(plan) => access_paths(&plan, names, run),
            Err(e) => run.error = Some(format!("{e:#}")),
        }
    }
    let measured = probe::measure(tx, &arms, &[None, None], &opts.engine()).await;
    for (arm, run) in measured.arms.into_iter().zip(runs.iter_mut()) {
        if !arm.latency.is_empty() {
            run.latency = Some(arm.latency.summary());
        }
        if let Some(e) = arm.error {
            run.error = Some(e);
        }
    }
    runs
}

/// The plan's distinct access paths to api_usage (partitions share them: one line per
/// path), and whether one of the comparison indexes `names` is among them.
fn access_paths(plan: &crate::plan::PlanSummary, names: &[String], run: &mut IndexQueryRun) {
    let usage: Vec<_> = plan
        .relations
        .iter()
        .filter(|r| r.relation.starts_with("api_usage"))
        .collect();
    let mut access: Vec<String> = usage.iter().map(|r| r.access_with_index()).collect();
    access.sort();
    access.dedup();
    run.access = access;
    run.index_used = usage.iter().any(|r| {
        r.index
            .as_deref()
            .is_some_and(|i| i.split(", ").any(|one| names.iter().any(|n| n == one)))
    });
}
