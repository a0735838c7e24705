//! The isolation audit: as each sampled user (and as anon), try to read, insert, update and
//! delete other users' rows in every table, PostgREST-style, always rolled back. Anything
//! that gets through is a leak.

use super::scenario::{param_count, AuditTarget, RlsScenario};
use super::types::{AuditLeak, AuditSet, AuditTable};
use crate::auth::{begin_request, Principal};
use crate::interrupt;
use anyhow::{Context, Result};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection};
use uuid::Uuid;

/// Leaks and errors listed in results beyond their counts: the first few of each.
const MAX_DETAILS: usize = 40;

/// Who attacks: a label for messages, the principal, and the id "other users" differ from.
pub struct Attacker {
    pub label: String,
    pub who: Principal,
    pub id: Uuid,
}

enum Outcome {
    Rows(u64),
    Denied,
    Failed(String),
}

#[derive(PartialEq)]
enum Verdict {
    Leak,
    Blocked,
    Allowed,
    Error,
}

/// Audits the policies in force (whatever they are: nothing is re-applied here).
pub async fn audit_policies(
    conn: &mut PgConnection,
    scenario: &RlsScenario,
    attackers: &[Attacker],
    victims: &[Uuid],
    policies: &str,
    as_found: bool,
) -> Result<AuditSet> {
    let mut set = AuditSet {
        policies: policies.to_string(),
        as_found,
        ..Default::default()
    };
    for target in &scenario.audit.target {
        set.tables.push(AuditTable {
            target: target.name.clone(),
            ..Default::default()
        });
    }
    for (k, attacker) in attackers.iter().enumerate() {
        interrupt::check()?;
        let victim = victims
            .iter()
            .cycle()
            .skip(k + 1)
            .take(victims.len())
            .find(|v| **v != attacker.id)
            .copied()
            .unwrap_or(Uuid::nil());
        for (ti, target) in scenario.audit.target.iter().enumerate() {
            let row = find_row(conn, target, attacker.id, victim).await?;
            let Some(row) = row else {
                let note = format!("{} (no row of another user)", target.name);
                if !set.skipped.contains(&note) {
                    set.skipped.push(note);
                }
                continue;
            };
            for (action, sql) in [
                ("SELECT", &target.select),
                ("INSERT", &target.insert),
                ("UPDATE", &target.update),
                ("DELETE", &target.delete),
            ] {
                let outcome = attempt(conn, &attacker.who, sql, &row, action == "SELECT").await?;
                let verdict = judge(&outcome, action == "SELECT", target.visible_ok);
                let table = &mut set.tables[ti];
                table.attempts += 1;
                set.attempts += 1;
                let what = format!(
                    "{} {action} on {} row {} (owner {})",
                    attacker.label,
                    target.name,
                    row[0],
                    if row[1].is_empty() { "-" } else { &row[1] }
                );
                match verdict {
                    Verdict::Leak => {
                        table.leaks += 1;
                        set.leaks += 1;
                        record_leak(&mut set.leaks_found, &target.name, action, &attacker.who);
                        if set.leak_details.len() < MAX_DETAILS {
                            let n = match outcome {
                                Outcome::Rows(n) => n,
                                _ => 0,
                            };
                            set.leak_details
                                .push(format!("{what}: {n} row(s) got through"));
                        }
                    }
                    Verdict::Blocked => {
                        table.blocked += 1;
                        set.blocked += 1;
                    }
                    Verdict::Allowed => {
                        table.allowed += 1;
                        set.allowed += 1;
                    }
                    Verdict::Error => {
                        table.errors += 1;
                        set.errors += 1;
                        if set.error_details.len() < MAX_DETAILS {
                            if let Outcome::Failed(e) = &outcome {
                                set.error_details.push(format!("{what}: {e}"));
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(set)
}

/// Counts a leak under its (table, verb, role): every kind is listed, unlike the capped details.
fn record_leak(found: &mut Vec<AuditLeak>, target: &str, verb: &str, who: &Principal) {
    let role = who.role();
    match found
        .iter_mut()
        .find(|l| l.target == target && l.verb == verb && l.role == role)
    {
        Some(l) => l.attempts += 1,
        None => found.push(AuditLeak {
            target: target.to_string(),
            verb: verb.to_string(),
            role: role.to_string(),
            attempts: 1,
        }),
    }
}

fn judge(outcome: &Outcome, is_select: bool, visible_ok: bool) -> Verdict {
    match outcome {
        Outcome::Rows(0) | Outcome::Denied => Verdict::Blocked,
        Outcome::Rows(_) if is_select && visible_ok => Verdict::Allowed,
        Outcome::Rows(_) => Verdict::Leak,
        Outcome::Failed(_) => Verdict::Error,
    }
}

/// Another user's row, read as storybench's own connection (RLS does not apply to it).
async fn find_row(
    conn: &mut PgConnection,
    target: &AuditTarget,
    attacker: Uuid,
    victim: Uuid,
) -> Result<Option<[String; 3]>> {
    let mut q = sqlx::query_as::<_, (String, String, String)>(AssertSqlSafe(target.find.clone()));
    let args = [attacker.to_string(), victim.to_string()];
    for a in args.iter().take(param_count(&target.find)) {
        q = q.bind(a.clone());
    }
    let row = q
        .fetch_optional(&mut *conn)
        .await
        .with_context(|| format!("finding another user's row in {}", target.name))?;
    Ok(row.map(|(a, b, c)| [a, b, c]))
}

/// One attempt in its own request transaction, always rolled back.
async fn attempt(
    conn: &mut PgConnection,
    who: &Principal,
    sql: &str,
    row: &[String; 3],
    is_select: bool,
) -> Result<Outcome> {
    let mut tx = conn.begin().await?;
    begin_request(&mut tx, who).await?;
    let n = param_count(sql);
    let outcome = if is_select {
        let mut q = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.to_string()));
        for a in row.iter().take(n) {
            q = q.bind(a.clone());
        }
        q.fetch_one(&mut *tx).await.map(|c| c.max(0) as u64)
    } else {
        let mut q = sqlx::query(AssertSqlSafe(sql.to_string()));
        for a in row.iter().take(n) {
            q = q.bind(a.clone());
        }
        q.execute(&mut *tx).await.map(|d| d.rows_affected())
    };
    let outcome = match outcome {
        Ok(rows) => Outcome::Rows(rows),
        Err(e) => {
            let code = e
                .as_database_error()
                .and_then(|d| d.code().map(|c| c.to_string()));
            match code.as_deref() {
                // insufficient_privilege: "new row violates row-level security policy", or no grant.
                Some("42501") => Outcome::Denied,
                Some(_) => Outcome::Failed(format!("{e}")),
                // Not the server refusing: the connection itself failed.
                None => return Err(anyhow::Error::new(e).context("audit attempt")),
            }
        }
    };
    tx.rollback().await?;
    Ok(outcome)
}
