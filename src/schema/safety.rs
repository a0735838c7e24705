//! What storybench owns, and the refusal to work in a database holding anything else.

use crate::internal_sql::{q, sql};
use anyhow::{bail, Result};
use sqlx::postgres::PgConnection;

/// How a database stands before storybench changes anything in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// No user objects at all: storybench may set it up.
    Empty,
    /// Set up by storybench and holding nothing else.
    Ours,
}

pub async fn owned_identities(conn: &mut PgConnection) -> Result<Vec<String>> {
    let has_meta: bool = sqlx::query_scalar(sql(&q().has_meta))
        .fetch_one(&mut *conn)
        .await?;
    if !has_meta {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_scalar(sql(&q().owned_objects))
        .fetch_all(&mut *conn)
        .await?)
}

/// Refuses (changing nothing) when the database holds objects storybench did not create.
pub async fn check_ownership(conn: &mut PgConnection) -> Result<Ownership> {
    let owned = owned_identities(conn).await?;
    let foreign: Vec<String> = sqlx::query_scalar(sql(&q().foreign_objects))
        .bind(&owned)
        .fetch_all(&mut *conn)
        .await?;
    if !foreign.is_empty() {
        let db: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&mut *conn)
            .await?;
        let shown: Vec<&str> = foreign.iter().take(8).map(String::as_str).collect();
        bail!(
            "refusing to work in database {db:?}: it holds {} object(s) storybench did not create ({}{}). \
             storybench only works in a database it created or one with no user objects, and has changed nothing. \
             Point --database-url at an empty database, or omit it to use the embedded cluster.",
            foreign.len(),
            shown.join(", "),
            if foreign.len() > shown.len() { ", …" } else { "" }
        );
    }
    Ok(if owned.is_empty() {
        Ownership::Empty
    } else {
        Ownership::Ours
    })
}

/// Records every object in storybench's schemas (call right after creating them in a
/// database that was empty) and the roles it created.
pub async fn record_owned(
    conn: &mut PgConnection,
    schemas: &[&str],
    new_roles: &[String],
) -> Result<()> {
    let schemas: Vec<String> = schemas.iter().map(|s| s.to_string()).collect();
    let rows: Vec<(String, String)> = sqlx::query_as(sql(&q().objects_in_schemas))
        .bind(&schemas)
        .fetch_all(&mut *conn)
        .await?;
    let (mut kinds, mut ids): (Vec<String>, Vec<String>) = rows.into_iter().unzip();
    for role in new_roles {
        kinds.push("role".into());
        ids.push(role.clone());
    }
    sqlx::query(sql(&q().record_owned))
        .bind(&kinds)
        .bind(&ids)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
