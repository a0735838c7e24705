//! Partition maintenance vs DELETE, on scratch copies of api_usage (a monthly-partitioned
//! one and a flat one, same rows), while a few tasks keep inserting into both through
//! their own connections: time to create next month's partition, to detach and drop the
//! oldest month, vs DELETE of that month from the flat copy (and VACUUM), table sizes,
//! and how long inserts stall during each operation (HDR histograms per phase).

use super::scaling::{bounds, Grain};
use super::scratch;
use super::types::*;
use super::{queries, PartitionsOptions};
use crate::latency::Latency;
use crate::schema::Layout;
use crate::sql_files::{fill, sql};
use crate::target::Target;
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Duration as ChronoDuration, Months, NaiveDate, Utc};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Row};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const PARTITIONED: &str = "maint_partitioned";
const FLAT: &str = "maint_flat";
/// Insert phases: the operation running when an insert began. `idle` is not reported.
const PHASES: [&str; 7] = [
    "baseline",
    "create_partition",
    "detach_partition",
    "drop_partition",
    "delete_month",
    "vacuum",
    "idle",
];
const IDLE: usize = 6;

fn utc(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()
}

pub async fn run(
    target: &Target,
    conn: &mut PgConnection,
    opts: &PartitionsOptions,
    anchor: NaiveDate,
) -> Result<Maintenance> {
    let (first, last) = crate::schema::partition_range(anchor);
    let months = bounds(Grain::Month, utc(first), utc(last));
    let outcome = async {
        let load = scratch::create_copy(conn, PARTITIONED, &months).await?;
        scratch::index_copy(conn, PARTITIONED, true).await?;
        let load_flat = scratch::create_copy(conn, FLAT, &[]).await?;
        scratch::index_copy(conn, FLAT, false).await?;
        crate::say!(
            "  maintenance: copies loaded in {load:.1} s (partitioned) and {load_flat:.1} s (flat)"
        );
        measure(target, conn, opts, anchor, &months).await
    }
    .await;
    for t in [PARTITIONED, FLAT] {
        scratch::drop_copy(conn, t).await?;
    }
    outcome
}

async fn rows_by_month(conn: &mut PgConnection, table: &str) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(AssertSqlSafe(fill(
        &queries().maint_rows_by_month,
        &[("table", table)],
    )))
    .fetch_all(&mut *conn)
    .await?)
}

async fn measure(
    target: &Target,
    conn: &mut PgConnection,
    opts: &PartitionsOptions,
    anchor: NaiveDate,
    months: &[scratch::Bound],
) -> Result<Maintenance> {
    let before = rows_by_month(conn, PARTITIONED).await?;
    let (first_row, _, _): (Option<DateTime<Utc>>, Option<DateTime<Utc>>, i64) =
        sqlx::query_as(sql(&queries().usage_span))
            .fetch_one(&mut *conn)
            .await?;
    let Some(first_row) = first_row else {
        bail!("api_usage is empty: nothing to maintain");
    };
    let rows_in = |b: &scratch::Bound| {
        let key = b.from.format("%Y-%m").to_string();
        before.iter().find(|m| m.0 == key).map_or(0, |m| m.1)
    };
    // The oldest complete month (retention drops whole months; the first month of the
    // seeded history is usually partial), else the oldest month holding rows.
    let oldest = months
        .iter()
        .find(|b| b.from >= first_row && rows_in(b) > 0)
        .or_else(|| months.iter().find(|b| rows_in(b) > 0))
        .context("no month holds rows")?
        .clone();
    let month = oldest.from.format("%Y-%m").to_string();
    let month_rows = rows_in(&oldest);
    let last = months.last().context("no partitions")?;
    let next_from = last.to;
    let next_to = utc(next_from.date_naive() + Months::new(1));
    let next_suffix = format!("p{}", next_from.format("%Y%m"));
    let mut m = Maintenance {
        month: month.clone(),
        month_rows,
        next_month: next_from.format("%Y-%m").to_string(),
        writers: opts.writers.max(1),
        insert_interval_ms: opts.insert_interval.as_secs_f64() * 1000.0,
        ..Default::default()
    };
    m.rows = before.iter().map(|r| r.1).sum();
    let user: Uuid = sqlx::query_scalar(sql(&queries().maint_user))
        .fetch_one(&mut *conn)
        .await?;

    // Writers: each inserts the same row into both copies, one after the other.
    let phase = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for w in 0..m.writers {
        let mut wconn = target.connect().await?;
        let (phase, stop) = (phase.clone(), stop.clone());
        let interval = opts.insert_interval;
        let anchor_ts = utc(anchor);
        handles.push(tokio::spawn(async move {
            let mut hist: Vec<[Latency; 2]> = PHASES
                .iter()
                .map(|_| [Latency::new(), Latency::new()])
                .collect();
            let mut seq: u64 = 0;
            while !stop.load(Ordering::SeqCst) {
                let p = phase.load(Ordering::SeqCst);
                let id = Uuid::new_v4();
                let request = format!("req_sbmaint_{w}_{seq}");
                let created = anchor_ts - ChronoDuration::seconds((seq % 43_200) as i64 + 1);
                for (i, t) in [PARTITIONED, FLAT].iter().enumerate() {
                    let started = Instant::now();
                    sqlx::query(AssertSqlSafe(fill(
                        &queries().maint_insert,
                        &[("table", t)],
                    )))
                    .bind(id)
                    .bind(user)
                    .bind(&request)
                    .bind(100 + (seq % 900) as i32)
                    .bind(created)
                    .execute(&mut wconn)
                    .await
                    .with_context(|| format!("concurrent insert into {t}"))?;
                    hist[p][i].record(started.elapsed());
                }
                seq += 1;
                tokio::time::sleep(interval).await;
            }
            Ok::<_, anyhow::Error>((hist, seq))
        }));
    }

    let ops = operations(
        conn,
        &mut m,
        &phase,
        opts,
        &oldest,
        next_from,
        next_to,
        &next_suffix,
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    let mut hist: Vec<[Latency; 2]> = PHASES
        .iter()
        .map(|_| [Latency::new(), Latency::new()])
        .collect();
    let mut inserted = 0i64;
    let mut writer_error = None;
    for h in handles {
        match h.await {
            Ok(Ok((wh, n))) => {
                inserted += n as i64;
                for (acc, w) in hist.iter_mut().zip(&wh) {
                    acc[0].merge(&w[0]);
                    acc[1].merge(&w[1]);
                }
            }
            Ok(Err(e)) => writer_error = Some(e),
            Err(e) => writer_error = Some(anyhow::anyhow!("insert task failed: {e}")),
        }
    }
    ops?;
    if let Some(e) = writer_error {
        return Err(e);
    }
    for (i, name) in PHASES.iter().enumerate().take(IDLE) {
        for (j, layout) in Layout::ALL.into_iter().enumerate() {
            if !hist[i][j].is_empty() {
                m.inserts.push(InsertPhase {
                    phase: name.to_string(),
                    layout,
                    latency: hist[i][j].summary(),
                });
            }
        }
    }

    // Both copies must now hold the same rows: the seeded ones outside the month, plus the inserts.
    let expected_seeded: i64 = sqlx::query_scalar(sql(&queries().maint_expected_rows))
        .bind(oldest.from)
        .bind(oldest.to)
        .fetch_one(&mut *conn)
        .await?;
    let mut c = Consistency {
        inserted_rows: inserted,
        expected_rows: expected_seeded + inserted,
        partitioned_months: rows_by_month(conn, PARTITIONED).await?,
        flat_months: rows_by_month(conn, FLAT).await?,
        ..Default::default()
    };
    for (t, rows, digest) in [
        (
            PARTITIONED,
            &mut c.partitioned_rows,
            &mut c.partitioned_digest,
        ),
        (FLAT, &mut c.flat_rows, &mut c.flat_digest),
    ] {
        let row = sqlx::query(AssertSqlSafe(fill(
            &queries().maint_digest,
            &[("table", t)],
        )))
        .fetch_one(&mut *conn)
        .await?;
        *rows = row.try_get(0)?;
        *digest = row.try_get(1)?;
    }
    c.consistent = c.partitioned_digest == c.flat_digest
        && c.partitioned_rows == c.flat_rows
        && c.partitioned_rows == c.expected_rows
        && c.partitioned_months == c.flat_months
        && !c.partitioned_months.iter().any(|r| r.0 == month);
    m.consistency = c;
    Ok(m)
}

/// Runs the operations one after the other, each in its own insert phase.
#[allow(clippy::too_many_arguments)]
async fn operations(
    conn: &mut PgConnection,
    m: &mut Maintenance,
    phase: &AtomicUsize,
    opts: &PartitionsOptions,
    oldest: &scratch::Bound,
    next_from: DateTime<Utc>,
    next_to: DateTime<Utc>,
    next_suffix: &str,
) -> Result<()> {
    tokio::time::sleep(opts.baseline).await;
    let oldest_part = format!("{PARTITIONED}_{}", oldest.suffix);
    let steps: Vec<(&str, Layout, String)> = vec![
        (
            "create_partition",
            Layout::Partitioned,
            fill(
                &queries().scratch_partition,
                &[
                    ("table", PARTITIONED),
                    ("part", &format!("{PARTITIONED}_{next_suffix}")),
                    ("from", &next_from.to_rfc3339()),
                    ("to", &next_to.to_rfc3339()),
                ],
            ),
        ),
        (
            "detach_partition",
            Layout::Partitioned,
            fill(
                &queries().maint_detach,
                &[("table", PARTITIONED), ("part", &oldest_part)],
            ),
        ),
        (
            "drop_partition",
            Layout::Partitioned,
            fill(&queries().maint_drop_partition, &[("part", &oldest_part)]),
        ),
        (
            "delete_month",
            Layout::Flat,
            fill(&queries().maint_delete, &[("table", FLAT)]),
        ),
        (
            "vacuum",
            Layout::Flat,
            fill(&queries().maint_vacuum, &[("table", FLAT)]),
        ),
    ];
    // Settle time around each operation, so inserts that queue behind it are attributed to it.
    let settle = Duration::from_millis(50);
    for (name, layout, text) in steps {
        crate::interrupt::check()?;
        // Sizes just before removing the month, so the inserts meanwhile do not blur them.
        let before = match name {
            "detach_partition" => Some(("partitioned before", PARTITIONED)),
            "delete_month" => Some(("flat before", FLAT)),
            _ => None,
        };
        if let Some((what, t)) = before {
            m.sizes.push(SizeFigure {
                what: what.into(),
                bytes: scratch::bytes(conn, t).await?,
            });
        }
        let index = PHASES.iter().position(|p| *p == name).expect("known phase");
        phase.store(index, Ordering::SeqCst);
        tokio::time::sleep(settle).await;
        let started = Instant::now();
        let rows = if name == "delete_month" {
            sqlx::query(AssertSqlSafe(text))
                .bind(oldest.from)
                .bind(oldest.to)
                .execute(&mut *conn)
                .await?
                .rows_affected() as i64
        } else {
            sqlx::raw_sql(AssertSqlSafe(text))
                .execute(&mut *conn)
                .await
                .with_context(|| format!("maintenance step {name}"))?
                .rows_affected() as i64
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        tokio::time::sleep(settle * 2).await;
        phase.store(IDLE, Ordering::SeqCst);
        m.operations.push(MaintenanceOp {
            name: name.into(),
            layout,
            ms,
            rows: if name == "detach_partition" {
                m.month_rows
            } else {
                rows
            },
        });
        let size = match name {
            "drop_partition" => Some(("partitioned after drop", PARTITIONED)),
            "delete_month" => Some(("flat after delete", FLAT)),
            "vacuum" => Some(("flat after vacuum", FLAT)),
            _ => None,
        };
        if let Some((what, t)) = size {
            m.sizes.push(SizeFigure {
                what: what.into(),
                bytes: scratch::bytes(conn, t).await?,
            });
        }
        crate::say!("  maintenance: {name} on {layout} in {ms:.1} ms");
        tokio::time::sleep(settle).await;
    }
    Ok(())
}
