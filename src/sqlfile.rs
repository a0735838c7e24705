//! Running the SQL files under `schema/` and `seed/`: one script per call, errors name
//! the file and line the server complained about.

use crate::paths::{line_of_offset, read_project_file};
use anyhow::{anyhow, Result};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Executor};
use std::path::Path;

/// Executes a project SQL file as one simple-protocol script on `conn`.
pub async fn run_file(conn: &mut PgConnection, rel: impl AsRef<Path>) -> Result<()> {
    let (path, text) = read_project_file(rel)?;
    run_script(conn, &path, &text).await
}

/// Executes a script, mapping a server error position back to `path:line`.
pub async fn run_script(conn: &mut PgConnection, path: &Path, text: &str) -> Result<()> {
    conn.execute(sqlx::raw_sql(AssertSqlSafe(text.to_string())))
        .await
        .map(|_| ())
        .map_err(|e| script_error(e, path, text))
}

fn script_error(e: sqlx::Error, path: &Path, text: &str) -> anyhow::Error {
    if let sqlx::Error::Database(db) = &e {
        let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
        if let Some(pg) = pg {
            if let Some(sqlx::postgres::PgErrorPosition::Original(pos)) = pg.position() {
                // PostgreSQL positions are 1-based character offsets.
                let byte = text
                    .char_indices()
                    .nth(pos.saturating_sub(1))
                    .map(|(b, _)| b)
                    .unwrap_or(0);
                return anyhow!(
                    "{}:{}: {}",
                    path.display(),
                    line_of_offset(text, byte),
                    pg.message()
                );
            }
            let mut msg = format!("{}: {}", path.display(), pg.message());
            if let Some(w) = pg.r#where() {
                msg.push_str(&format!(" (at {w})"));
            }
            return anyhow!(msg);
        }
    }
    anyhow!("{}: {e}", path.display())
}
