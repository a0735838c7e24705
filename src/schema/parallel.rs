//! Running the DDL that follows a bulk load on several connections, as `pg_restore -j`
//! does: each statement is its own transaction, the biggest tables go first, and the
//! server's locks serialise statements that cannot run together (two foreign keys on
//! the same table, say) while the other connections carry on.

use crate::internal_sql::{q, sql};
use crate::interrupt;
use crate::sqlfile::{run_statement, Statement};
use anyhow::Result;
use sqlx::postgres::PgConnection;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Runs `statements` over `conns`, largest table first; stops at the first error.
pub async fn run_parallel(conns: &mut [PgConnection], statements: Vec<Statement>) -> Result<()> {
    let Some(first) = conns.first_mut() else {
        anyhow::bail!("no connection to run the schema statements on");
    };
    let ordered = largest_first(first, statements).await?;
    on_connections(conns, ordered, async |conn, stmt| {
        run_statement(conn, &stmt).await
    })
    .await
}

/// Runs `run` once per item, in order, each connection taking the next item as soon as it
/// is free; stops at the first error (the others finish their current item) or on Ctrl-C.
pub async fn on_connections<T>(
    conns: &mut [PgConnection],
    items: Vec<T>,
    run: impl AsyncFn(&mut PgConnection, T) -> Result<()>,
) -> Result<()> {
    let queue = Mutex::new(items.into_iter());
    let failed = AtomicBool::new(false);
    let run = &run;
    let workers = conns.iter_mut().map(|conn| {
        let (queue, failed) = (&queue, &failed);
        async move {
            loop {
                if failed.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let next = queue.lock().expect("work queue").next();
                let Some(item) = next else { return Ok(()) };
                let result = match interrupt::check() {
                    Ok(()) => run(conn, item).await,
                    Err(e) => Err(e.into()),
                };
                if let Err(e) = result {
                    failed.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
    });
    futures::future::try_join_all(workers).await.map(|_| ())
}

/// Orders statements by the heap size of the table they work on, biggest first: the
/// longest jobs start early so the connections finish together (longest-processing-time).
async fn largest_first(
    conn: &mut PgConnection,
    statements: Vec<Statement>,
) -> Result<Vec<Statement>> {
    let tables: Vec<String> = statements.iter().filter_map(|s| table_of(&s.sql)).collect();
    let sizes: HashMap<String, i64> = sqlx::query_as(sql(&q().heap_sizes))
        .bind(&tables)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
    let mut keyed: Vec<(i64, usize, Statement)> = statements
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let size = table_of(&s.sql)
                .and_then(|t| sizes.get(&t).copied())
                .unwrap_or(0);
            (size, i, s)
        })
        .collect();
    // Stable for equal sizes: file order decides (keys before the FKs that need them).
    keyed.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    Ok(keyed.into_iter().map(|(_, _, s)| s).collect())
}

/// The table an `ALTER TABLE` or `CREATE INDEX … ON` statement works on.
fn table_of(sql: &str) -> Option<String> {
    let words: Vec<&str> = sql
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .flat_map(str::split_whitespace)
        .collect();
    let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
    let after = if upper.first().map(String::as_str) == Some("ALTER") {
        upper.iter().position(|w| w == "TABLE")?
    } else {
        upper.iter().position(|w| w == "ON")?
    };
    words[after + 1..]
        .iter()
        .zip(&upper[after + 1..])
        .find(|(_, u)| !matches!(u.as_str(), "ONLY" | "IF" | "EXISTS"))
        .map(|(w, _)| w.trim_end_matches(';').to_string())
}

#[cfg(test)]
mod tests {
    use super::table_of;

    #[test]
    fn finds_the_table_of_ddl_statements() {
        assert_eq!(
            table_of("ALTER TABLE public.stories ADD CONSTRAINT x PRIMARY KEY (id);").as_deref(),
            Some("public.stories")
        );
        assert_eq!(
            table_of(
                "ALTER TABLE ONLY auth.users\n ADD CONSTRAINT y FOREIGN KEY (a) REFERENCES b (c);"
            )
            .as_deref(),
            Some("auth.users")
        );
        assert_eq!(
            table_of("CREATE UNIQUE INDEX i ON public.heroes USING btree (user_id) WHERE x;")
                .as_deref(),
            Some("public.heroes")
        );
        assert_eq!(table_of("SELECT 1;"), None);
    }
}
