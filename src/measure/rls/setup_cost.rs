//! What PostgREST's per-request set-up costs on its own: the same trivial transaction
//! with and without `set_config(role)` + `set_config(request.jwt.claims)`, interleaved.

use super::types::SetupCost;
use crate::auth::{begin_request, Principal};
use crate::interrupt;
use crate::latency::Latency;
use anyhow::Result;
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection};
use std::time::Instant;

pub async fn measure(
    conn: &mut PgConnection,
    statement: &str,
    who: &Principal,
    runs: usize,
    warmup: usize,
) -> Result<SetupCost> {
    let mut bare = Latency::new();
    let mut with_claims = Latency::new();
    for i in 0..warmup + runs {
        if i % 100 == 0 {
            interrupt::check()?;
        }
        // Alternate which variant goes first so neither always runs on a warmer connection.
        for claims in if i % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        } {
            let started = Instant::now();
            let mut tx = conn.begin().await?;
            if claims {
                begin_request(&mut tx, who).await?;
            }
            sqlx::query(AssertSqlSafe(statement.to_string()))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            let elapsed = started.elapsed();
            if i >= warmup {
                if claims {
                    with_claims.record(elapsed);
                } else {
                    bare.record(elapsed);
                }
            }
        }
    }
    let (b, c) = (bare.summary(), with_claims.summary());
    Ok(SetupCost {
        statement: statement.to_string(),
        overhead_p50_ms: c.p50_ms - b.p50_ms,
        overhead_mean_ms: c.mean_ms - b.mean_ms,
        ratio_p50: if b.p50_ms > 0.0 {
            c.p50_ms / b.p50_ms
        } else {
            0.0
        },
        bare: b,
        with_claims: c,
    })
}
