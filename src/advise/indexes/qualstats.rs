//! Predicates from pg_qualstats: every catalog query executed once under its own role and
//! claims on storybench's copy with pg_qualstats on for that session only, and the
//! predicates the executor evaluated (RLS quals included) read back per query. They add
//! columns a plan's text may not show (a join's inner key, a filter under an initplan).

use super::predicates::{Relations, TableUse};
use super::{file, Plan};
use crate::measure::exec::{self, RequestContext};
use crate::sql_files::{fill, sql};
use crate::target::Target;
use anyhow::{Context, Result};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Row};
use std::collections::BTreeMap;

/// What pg_qualstats gave: per plan (index into the plans), the tables and columns its
/// executed predicates asked for; or why there is nothing.
pub enum Outcome {
    Read {
        version: String,
        uses: Vec<(usize, Vec<TableUse>)>,
        predicates: usize,
    },
    Unavailable(String),
}

/// Runs every plan's query once with pg_qualstats on, on a connection of its own (the
/// setting never reaches the connections that measure).
pub async fn read(
    target: &Target,
    plans: &[Plan<'_>],
    relations: &Relations,
    ctx: &RequestContext,
) -> Result<Outcome> {
    let mut conn = target.connect().await?;
    let q = &file().queries;
    let preloaded: bool = sqlx::query_scalar(sql(&q.qualstats_preloaded))
        .fetch_one(&mut conn)
        .await?;
    let available: Option<String> = sqlx::query_scalar(sql(&q.qualstats_available))
        .fetch_optional(&mut conn)
        .await?;
    let Some(version) = available else {
        return Ok(Outcome::Unavailable(
            "pg_qualstats is not installed on the server (Debian: postgresql-15-pg-qualstats): candidates come from the plans only".into(),
        ));
    };
    if !preloaded {
        return Ok(Outcome::Unavailable(
            "pg_qualstats is installed but the server does not preload it (shared_preload_libraries; the embedded cluster does): candidates come from the plans only".into(),
        ));
    }
    sqlx::query(sql(&q.create_qualstats))
        .execute(&mut conn)
        .await
        .context("CREATE EXTENSION pg_qualstats (needs a superuser) on storybench's copy")?;
    let schema: String = sqlx::query_scalar(sql(&q.qualstats_schema))
        .fetch_one(&mut conn)
        .await?;
    let read_sql = fill(&q.qualstats_read, &[("schema", &schema)]);
    sqlx::query(sql(&q.qualstats_on)).execute(&mut conn).await?;
    let mut seen = snapshot(&mut conn, &read_sql).await?;
    let mut uses = Vec::new();
    let mut predicates = 0;
    for (i, plan) in plans.iter().enumerate() {
        crate::interrupt::check()?;
        // One execution as the app runs it (a write rolled back): the predicates evaluated.
        if let Err(e) = exec::timed(
            &mut conn,
            plan.spec,
            &plan.spec.sql,
            plan.params,
            &plan.who,
            ctx,
            false,
        )
        .await
        {
            tracing::warn!("pg_qualstats: {} failed: {e:#}", plan.spec.name);
            continue;
        }
        let now = snapshot(&mut conn, &read_sql).await?;
        let grown: Vec<&Predicate> = now
            .iter()
            .filter(|(id, p)| seen.get(*id).is_none_or(|s| s.occurrences < p.occurrences))
            .map(|(_, p)| p)
            .collect();
        predicates += grown.len();
        uses.push((i, table_uses(&grown, relations)));
        seen = now;
    }
    Ok(Outcome::Read {
        version,
        uses,
        predicates,
    })
}

#[derive(Clone, Debug)]
struct Predicate {
    relation: String,
    column: String,
    operator: String,
    join: bool,
    constant: Option<String>,
    occurrences: i64,
}

async fn snapshot(conn: &mut PgConnection, read_sql: &str) -> Result<BTreeMap<String, Predicate>> {
    let rows = sqlx::query(AssertSqlSafe(read_sql.to_string()))
        .fetch_all(&mut *conn)
        .await?;
    let mut out = BTreeMap::new();
    for r in rows {
        out.insert(
            r.try_get::<String, _>(0)?,
            Predicate {
                relation: r.try_get(1)?,
                column: r.try_get(2)?,
                operator: r.try_get(3)?,
                join: r.try_get(4)?,
                constant: r.try_get(5)?,
                occurrences: r.try_get(6)?,
            },
        );
    }
    Ok(out)
}

/// The predicates as the candidates read a plan: equality and range columns per table (a
/// partition folded into its parent), a constant as a possible partial predicate.
fn table_uses(predicates: &[&Predicate], relations: &Relations) -> Vec<TableUse> {
    let mut uses: BTreeMap<String, TableUse> = BTreeMap::new();
    for p in predicates {
        let Some((table, _)) = relations.by_relation.get(&p.relation) else {
            continue;
        };
        let u = uses.entry(table.clone()).or_insert_with(|| TableUse {
            table: table.clone(),
            ..Default::default()
        });
        match p.operator.as_str() {
            "=" => {
                u.equality.insert(p.column.clone());
                if let (Some(c), false) = (&p.constant, p.join) {
                    u.partial.insert(format!("{} = {c}", p.column));
                }
            }
            "<" | "<=" | ">" | ">=" => {
                u.range.insert(p.column.clone());
            }
            _ => {}
        }
    }
    uses.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_become_equality_range_and_partial_tests_on_the_parent_table() {
        let mut relations = Relations::default();
        relations.by_relation.insert(
            "public.api_usage_p202611".into(),
            ("public.api_usage".into(), Default::default()),
        );
        let p = |column: &str, operator: &str, constant: Option<&str>, join: bool| Predicate {
            relation: "public.api_usage_p202611".into(),
            column: column.into(),
            operator: operator.into(),
            join,
            constant: constant.map(str::to_string),
            occurrences: 1,
        };
        let all = [
            p("user_id", "=", None, false),
            p("created_at", ">=", None, false),
            p("function_name", "=", Some("'generate'::text"), false),
            p("id", "=", Some("x"), true),
            p("payload", "@>", None, false),
        ];
        let refs: Vec<&Predicate> = all.iter().collect();
        let uses = table_uses(&refs, &relations);
        assert_eq!(uses.len(), 1);
        let u = &uses[0];
        assert_eq!(u.table, "public.api_usage");
        let eq: Vec<&str> = u.equality.iter().map(String::as_str).collect();
        assert_eq!(eq, ["function_name", "id", "user_id"]);
        assert!(u.range.contains("created_at"));
        let partial: Vec<&str> = u.partial.iter().map(String::as_str).collect();
        assert_eq!(partial, ["function_name = 'generate'::text"]);
    }
}
