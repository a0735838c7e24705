//! `storybench advise citus`: what would break, and what the schema would need, with the
//! app's tables distributed by Citus on `user_id`. Citus is not packaged for this machine,
//! so this reads the catalog (on a pristine copy, each policy set applied in turn) and
//! applies Citus's published rules; every rule names its source (docs/scale-out.md).

use crate::sql_files::sql;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;
use std::collections::BTreeMap;

crate::sql_file!(fn file() -> File = "schema/citus_check.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    queries: Queries,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Queries {
    tables: String,
    unique_keys: String,
    foreign_keys: String,
    policies: String,
    claims_functions: String,
}

#[cfg(test)]
pub(crate) fn load_all() {
    file();
}

/// The column the app's tables are distributed on, and the users table's own key.
const DISTRIBUTION_COLUMN: &str = "user_id";
const USERS_TABLE: &str = "auth.users";

/// Where Citus's rules come from (docs/scale-out.md cites each).
pub mod source {
    pub const POLICY_SUBQUERY: &str = "citusdata/citus src/backend/distributed/commands/policy.c, ErrorIfUnsupportedPolicyExpr: \"Subqueries are not supported in policies on distributed tables\"";
    pub const SET_PROPAGATION: &str = "citusdata/citus src/backend/distributed/commands/variableset.c, ShouldPropagateSetCommand: only SET LOCAL (and RESET) statements, only with citus.propagate_set_commands = 'local'";
    pub const CONSTRAINTS: &str = "docs.citusdata.com/en/stable/develop/reference_ddl.html: unique and foreign-key constraints on distributed tables must include the distribution column; foreign keys from reference tables to distributed tables are not supported";
    pub const NULL_DISTRIBUTION: &str = "Citus rejects a row whose distribution column is NULL (\"cannot perform an INSERT with NULL in the partition column\")";
}

/// How a table would be placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// Hash-distributed on its own user column, co-located with the users.
    Distributed,
    /// A child of a distributed table without the user column: needs one to co-locate.
    NeedsColumn,
    /// No user in it: a reference table (copied to every node).
    Reference,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TablePlan {
    pub table: String,
    pub placement: Placement,
    /// The distribution column (existing, or to add for `needs_column`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub note: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    PolicySubquery,
    ClaimsNotPropagated,
    ForeignKeyWithoutDistributionColumn,
    ForeignKeyFromReferenceTable,
    UniqueWithoutDistributionColumn,
    NullableDistributionColumn,
}

/// Something that would break (or be refused) on Citus, with the fix and its source.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub table: String,
    /// The constraint, policy or function concerned.
    pub object: String,
    /// The policy set in force when it was found (policy problems only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<String>,
    pub detail: String,
    pub fix: String,
    pub source: String,
}

/// Per policy set: how many of its policies Citus would refuse.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PolicySetCheck {
    pub policies: String,
    pub total: usize,
    pub with_subquery: usize,
}

/// The `advise citus` section of results.json.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CitusSection {
    pub distribution_column: String,
    pub tables: Vec<TablePlan>,
    pub policy_sets: Vec<PolicySetCheck>,
    pub problems: Vec<Problem>,
}

struct TableRow {
    name: String,
    partitioned: bool,
    has_user_id: bool,
    user_id_not_null: bool,
}

struct KeyRow {
    table_name: String,
    key_name: String,
    columns: Vec<String>,
}

struct ForeignKeyRow {
    name: String,
    from_table: String,
    from_columns: Vec<String>,
    to_table: String,
    to_columns: Vec<String>,
}

struct PolicyRow {
    table_name: String,
    policy: String,
    using_expr: String,
    check_expr: String,
}

fn dist_column(table: &str) -> &'static str {
    if table == USERS_TABLE {
        "id"
    } else {
        DISTRIBUTION_COLUMN
    }
}

/// The schema's placement and constraint problems (independent of the policy set).
pub async fn check_schema(conn: &mut PgConnection) -> Result<CitusSection> {
    let (tables, keys, fks) = read_schema(conn).await?;
    let placement = place(&tables, &fks);
    let mut section = CitusSection {
        distribution_column: DISTRIBUTION_COLUMN.into(),
        ..Default::default()
    };
    for t in &tables {
        let p = placement[&t.name];
        section.tables.push(table_plan(t, p, &fks, &placement));
        section.problems.extend(nullable_column(t, p));
    }
    for k in &keys {
        section.problems.extend(key_problem(k, &placement));
    }
    for fk in &fks {
        section.problems.extend(foreign_key_problem(fk, &placement));
    }
    claims_problems(conn, &mut section).await?;
    Ok(section)
}

/// The tables, their unique keys and their foreign keys, from the catalog.
async fn read_schema(
    conn: &mut PgConnection,
) -> Result<(Vec<TableRow>, Vec<KeyRow>, Vec<ForeignKeyRow>)> {
    let q = &file().queries;
    let tables: Vec<TableRow> = sqlx::query_as(sql(q.tables.as_str()))
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(
            |(name, partitioned, has_user_id, user_id_not_null)| TableRow {
                name,
                partitioned,
                has_user_id,
                user_id_not_null,
            },
        )
        .collect();
    let keys: Vec<KeyRow> = sqlx::query_as(sql(q.unique_keys.as_str()))
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(table_name, key_name, columns)| KeyRow {
            table_name,
            key_name,
            columns,
        })
        .collect();
    let fks: Vec<ForeignKeyRow> = sqlx::query_as(sql(q.foreign_keys.as_str()))
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(
            |(name, from_table, from_columns, to_table, to_columns)| ForeignKeyRow {
                name,
                from_table,
                from_columns,
                to_table,
                to_columns,
            },
        )
        .collect();
    Ok((tables, keys, fks))
}

/// Where a table goes on Citus, and why.
fn table_plan(
    t: &TableRow,
    p: Placement,
    fks: &[ForeignKeyRow],
    placement: &BTreeMap<String, Placement>,
) -> TablePlan {
    let (column, note) = match p {
        Placement::Distributed if t.name == USERS_TABLE => (
            Some("id".into()),
            "distributed by id (the user id), the co-location group's anchor".into(),
        ),
        Placement::Distributed => (
            Some(DISTRIBUTION_COLUMN.into()),
            format!(
                "distributed by user_id, co-located with auth.users{}",
                if t.partitioned {
                    "; its date partitions are distributed with it"
                } else {
                    ""
                }
            ),
        ),
        Placement::NeedsColumn => (
            Some(DISTRIBUTION_COLUMN.into()),
            format!(
                "needs a user_id column (filled from {}) to be distributed and co-located",
                parent_of(&t.name, fks, placement).unwrap_or("its parent")
            ),
        ),
        Placement::Reference => (
            None,
            "no user in its rows: a reference table, copied to every node".into(),
        ),
    };
    TablePlan {
        table: t.name.clone(),
        placement: p,
        column,
        note,
    }
}

/// A distributed table whose user_id may be NULL.
fn nullable_column(t: &TableRow, p: Placement) -> Option<Problem> {
    if p != Placement::Distributed || !t.has_user_id || t.user_id_not_null {
        return None;
    }
    Some(Problem {
        kind: ProblemKind::NullableDistributionColumn,
        table: t.name.clone(),
        object: "user_id".into(),
        policies: None,
        detail: "user_id may be NULL; Citus refuses a row without a distribution value".into(),
        fix: format!(
            "ALTER TABLE {} ALTER COLUMN user_id SET NOT NULL (after giving system rows an owner)",
            t.name
        ),
        source: source::NULL_DISTRIBUTION.into(),
    })
}

/// A unique key of a distributed table that leaves out the distribution column.
fn key_problem(k: &KeyRow, placement: &BTreeMap<String, Placement>) -> Option<Problem> {
    let p = placement
        .get(&k.table_name)
        .copied()
        .unwrap_or(Placement::Reference);
    let col = dist_column(&k.table_name);
    if p == Placement::Reference || k.columns.iter().any(|c| c == col) {
        return None;
    }
    Some(Problem {
        kind: ProblemKind::UniqueWithoutDistributionColumn,
        table: k.table_name.clone(),
        object: k.key_name.clone(),
        policies: None,
        detail: format!(
            "unique on ({}) without {col}: Citus cannot enforce it across shards",
            k.columns.join(", ")
        ),
        fix: format!("make it unique on ({col}, {})", k.columns.join(", ")),
        source: source::CONSTRAINTS.into(),
    })
}

/// A foreign key Citus cannot keep: from a reference table to a distributed one, or
/// between distributed tables without pairing their distribution columns.
fn foreign_key_problem(
    fk: &ForeignKeyRow,
    placement: &BTreeMap<String, Placement>,
) -> Option<Problem> {
    let from = placement
        .get(&fk.from_table)
        .copied()
        .unwrap_or(Placement::Reference);
    let to = placement
        .get(&fk.to_table)
        .copied()
        .unwrap_or(Placement::Reference);
    if to == Placement::Reference {
        return None; // distributed → reference and reference → reference are supported
    }
    if from == Placement::Reference {
        return Some(Problem {
            kind: ProblemKind::ForeignKeyFromReferenceTable,
            table: fk.from_table.clone(),
            object: fk.name.clone(),
            policies: None,
            detail: format!("a reference table referencing distributed {}", fk.to_table),
            fix: format!(
                "distribute {} by user_id too, or drop the constraint",
                fk.from_table
            ),
            source: source::CONSTRAINTS.into(),
        });
    }
    let (fc, tc) = (dist_column(&fk.from_table), dist_column(&fk.to_table));
    let paired = fk
        .from_columns
        .iter()
        .zip(&fk.to_columns)
        .any(|(f, t)| f == fc && t == tc);
    if paired && from == Placement::Distributed {
        return None;
    }
    Some(Problem {
        kind: ProblemKind::ForeignKeyWithoutDistributionColumn,
        table: fk.from_table.clone(),
        object: fk.name.clone(),
        policies: None,
        detail: format!(
            "({}) → {}({}) does not pair {fc} with {tc}: the rows it joins may live on different nodes",
            fk.from_columns.join(", "),
            fk.to_table,
            fk.to_columns.join(", ")
        ),
        fix: if fk.to_table == USERS_TABLE {
            format!(
                "({}) names another user, who lives on another shard: drop the constraint and check it in the app, \
                 or keep the column without a foreign key",
                fk.from_columns.join(", ")
            )
        } else {
            format!(
            "FOREIGN KEY ({fc}, {}) REFERENCES {} ({tc}, {}), with a UNIQUE ({tc}, {}) on {}",
            fk.from_columns.join(", "),
            fk.to_table,
            fk.to_columns.join(", "),
            fk.to_columns.join(", "),
            fk.to_table
            )
        },
        source: source::CONSTRAINTS.into(),
    })
}

/// The request's claims: set with `set_config()`, they never reach the workers.
async fn claims_problems(conn: &mut PgConnection, section: &mut CitusSection) -> Result<()> {
    let rows: Vec<(String, bool, bool)> =
        sqlx::query_as(sql(file().queries.claims_functions.as_str()))
            .fetch_all(&mut *conn)
            .await?;
    let readers: Vec<&str> = rows.iter().filter(|r| r.2).map(|r| r.0.as_str()).collect();
    section.problems.push(Problem {
        kind: ProblemKind::ClaimsNotPropagated,
        table: "(every distributed table under RLS)".into(),
        object: if readers.is_empty() { "request.jwt.claims".into() } else { readers.join(", ") },
        policies: None,
        detail: format!(
            "the policies read the claims ({}); PostgREST and storybench set them with set_config('request.jwt.claims', …, true), \
             a function call Citus does not propagate, so on a worker the claims are empty and a user sees none of their rows",
            if readers.is_empty() { "request.jwt.claims".to_string() } else { readers.join(", ") }
        ),
        fix: "inside each request: SET LOCAL citus.propagate_set_commands = 'local'; SET LOCAL \"request.jwt.claims\" = '…' \
              (and SET LOCAL ROLE), or route every query to one shard by its user_id so it runs where the claims were set"
            .into(),
        source: source::SET_PROPAGATION.into(),
    });
    for (name, _, _) in rows.iter().filter(|r| r.1) {
        section.problems.push(Problem {
            kind: ProblemKind::ClaimsNotPropagated,
            table: "-".into(),
            object: name.clone(),
            policies: None,
            detail: format!("{name} calls set_config(): the value stays on the coordinator"),
            fix: "use SET LOCAL (propagated with citus.propagate_set_commands = 'local')".into(),
            source: source::SET_PROPAGATION.into(),
        });
    }
    Ok(())
}

/// The policies in force (one policy set) that Citus would refuse.
pub async fn check_policies(
    conn: &mut PgConnection,
    set: &str,
    section: &mut CitusSection,
) -> Result<()> {
    let rows: Vec<PolicyRow> = sqlx::query_as(sql(file().queries.policies.as_str()))
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(table_name, policy, using_expr, check_expr)| PolicyRow {
            table_name,
            policy,
            using_expr,
            check_expr,
        })
        .collect();
    let placed: BTreeMap<&str, Placement> = section
        .tables
        .iter()
        .map(|t| (t.table.as_str(), t.placement))
        .collect();
    let mut check = PolicySetCheck {
        policies: set.into(),
        total: rows.len(),
        with_subquery: 0,
    };
    for r in &rows {
        if placed
            .get(r.table_name.as_str())
            .copied()
            .unwrap_or(Placement::Reference)
            == Placement::Reference
        {
            continue;
        }
        if !has_subquery(&r.using_expr) && !has_subquery(&r.check_expr) {
            continue;
        }
        check.with_subquery += 1;
        let both = format!("{} {}", r.using_expr, r.check_expr);
        // A scalar sub-select of auth.uid()/auth.role() (the initplan form) vs a parent lookup.
        let scalar_only = !both.contains("EXISTS") && !both.contains(" IN (");
        section.problems.push(Problem {
            kind: ProblemKind::PolicySubquery,
            table: r.table_name.clone(),
            object: r.policy.clone(),
            policies: Some(set.into()),
            detail: format!(
                "USING {} {}: a sub-select, which Citus refuses on a distributed table (\"cannot create policy\")",
                short(&r.using_expr),
                if r.check_expr.is_empty() { String::new() } else { format!("WITH CHECK {}", short(&r.check_expr)) }
            ),
            fix: if scalar_only {
                "call auth.uid() / auth.role() without the sub-select (evaluated per row again: measure it on the shards)".into()
            } else {
                "compare the row's own user_id with auth.uid() (add user_id to the table, as co-location needs anyway) instead of looking up the parent".into()
            },
            source: source::POLICY_SUBQUERY.into(),
        });
    }
    section.policy_sets.push(check);
    Ok(())
}

/// Whether a deparsed expression holds a sub-select (the server prints SubLinks as `(SELECT`).
fn has_subquery(expr: &str) -> bool {
    let upper = expr.to_uppercase();
    upper.contains("(SELECT") || upper.contains("( SELECT") || upper.contains("EXISTS")
}

fn short(expr: &str) -> String {
    let one_line: String = expr.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 120 {
        format!("{}…", one_line.chars().take(120).collect::<String>())
    } else {
        one_line
    }
}

/// Distributed: own user column (or the users table); needs-column: references one that
/// is distributed (to a fixpoint, for grandchildren); reference: the rest.
fn place(tables: &[TableRow], fks: &[ForeignKeyRow]) -> BTreeMap<String, Placement> {
    let mut placed: BTreeMap<String, Placement> = tables
        .iter()
        .map(|t| {
            let p = if t.has_user_id || t.name == USERS_TABLE {
                Placement::Distributed
            } else {
                Placement::Reference
            };
            (t.name.clone(), p)
        })
        .collect();
    loop {
        let mut changed = false;
        for fk in fks {
            let to = placed.get(&fk.to_table).copied();
            if placed.get(&fk.from_table) == Some(&Placement::Reference)
                && matches!(to, Some(Placement::Distributed | Placement::NeedsColumn))
            {
                placed.insert(fk.from_table.clone(), Placement::NeedsColumn);
                changed = true;
            }
        }
        if !changed {
            return placed;
        }
    }
}

fn parent_of<'a>(
    table: &str,
    fks: &'a [ForeignKeyRow],
    placed: &BTreeMap<String, Placement>,
) -> Option<&'a str> {
    // The owning parent, not a reference to some other user (a reviewer, say).
    fks.iter()
        .filter(|fk| fk.from_table == table && fk.to_table != USERS_TABLE)
        .find(|fk| placed.get(&fk.to_table) == Some(&Placement::Distributed))
        .or_else(|| fks.iter().find(|fk| fk.from_table == table))
        .map(|fk| fk.to_table.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, user: bool) -> TableRow {
        TableRow {
            name: name.into(),
            partitioned: false,
            has_user_id: user,
            user_id_not_null: user,
        }
    }

    fn fk(from: &str, to: &str) -> ForeignKeyRow {
        ForeignKeyRow {
            name: format!("{from}_fk"),
            from_table: from.into(),
            from_columns: vec!["parent_id".into()],
            to_table: to.into(),
            to_columns: vec!["id".into()],
        }
    }

    #[test]
    fn children_and_grandchildren_of_user_tables_need_the_column_and_the_rest_are_reference() {
        let tables = [
            table("auth.users", false),
            table("public.stories", true),
            table("public.scenes", false),
            table("public.art", false),
            table("public.cache", false),
        ];
        let fks = [
            fk("public.art", "public.scenes"),
            fk("public.scenes", "public.stories"),
        ];
        let p = place(&tables, &fks);
        assert_eq!(p["auth.users"], Placement::Distributed);
        assert_eq!(p["public.stories"], Placement::Distributed);
        assert_eq!(p["public.scenes"], Placement::NeedsColumn);
        assert_eq!(p["public.art"], Placement::NeedsColumn);
        assert_eq!(p["public.cache"], Placement::Reference);
    }

    #[test]
    fn sub_selects_are_told_from_plain_comparisons() {
        assert!(has_subquery("(( SELECT auth.uid() AS uid) = user_id)"));
        assert!(has_subquery(
            "(EXISTS ( SELECT 1 FROM stories s WHERE (s.id = story_id)))"
        ));
        assert!(!has_subquery("(auth.uid() = user_id)"));
    }
}
