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

/// One insert histogram per phase and layout (partitioned, flat).
type PhaseHists = Vec<[Latency; 2]>;

fn phase_hists() -> PhaseHists {
    PHASES
        .iter()
        .map(|_| [Latency::new(), Latency::new()])
        .collect()
}

async fn measure(
    target: &Target,
    conn: &mut PgConnection,
    opts: &PartitionsOptions,
    anchor: NaiveDate,
    months: &[scratch::Bound],
) -> Result<Maintenance> {
    let before = rows_by_month(conn, PARTITIONED).await?;
    let oldest = oldest_month(conn, months, &before).await?;
    let month = oldest.from.format("%Y-%m").to_string();
    let last = months.last().context("no partitions")?;
    let next_from = last.to;
    let next = scratch::Bound {
        suffix: format!("p{}", next_from.format("%Y%m")),
        from: next_from,
        to: utc(next_from.date_naive() + Months::new(1)),
    };
    let mut m = Maintenance {
        month: month.clone(),
        month_rows: rows_in(&before, &oldest),
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
        let wconn = target.connect().await?;
        let (phase, stop) = (phase.clone(), stop.clone());
        let (interval, anchor_ts) = (opts.insert_interval, utc(anchor));
        handles.push(tokio::spawn(writer(
            wconn, w, user, anchor_ts, interval, phase, stop,
        )));
    }
    let ops = operations(conn, &mut m, &phase, opts, &oldest, &next).await;
    stop.store(true, Ordering::SeqCst);
    let (hist, inserted, writer_error) = join_writers(handles).await;
    ops?;
    if let Some(e) = writer_error {
        return Err(e);
    }
    m.inserts = insert_phases(&hist);
    m.consistency = consistency(conn, &oldest, inserted, &month).await?;
    Ok(m)
}

/// Seeded rows of `b`'s month in a `rows_by_month` list.
fn rows_in(before: &[(String, i64)], b: &scratch::Bound) -> i64 {
    let key = b.from.format("%Y-%m").to_string();
    before.iter().find(|m| m.0 == key).map_or(0, |m| m.1)
}

/// The oldest complete month (retention drops whole months; the first month of the
/// seeded history is usually partial), else the oldest month holding rows.
async fn oldest_month(
    conn: &mut PgConnection,
    months: &[scratch::Bound],
    before: &[(String, i64)],
) -> Result<scratch::Bound> {
    let (first_row, _, _): (Option<DateTime<Utc>>, Option<DateTime<Utc>>, i64) =
        sqlx::query_as(sql(&queries().usage_span))
            .fetch_one(&mut *conn)
            .await?;
    let Some(first_row) = first_row else {
        bail!("api_usage is empty: nothing to maintain");
    };
    Ok(months
        .iter()
        .find(|b| b.from >= first_row && rows_in(before, b) > 0)
        .or_else(|| months.iter().find(|b| rows_in(before, b) > 0))
        .context("no month holds rows")?
        .clone())
}

/// One writer task: inserts a row into both copies every `interval` until `stop`, timing
/// each insert into the histogram of the phase it began in. Returns them and its row count.
async fn writer(
    mut conn: PgConnection,
    w: usize,
    user: Uuid,
    anchor_ts: DateTime<Utc>,
    interval: Duration,
    phase: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> Result<(PhaseHists, u64)> {
    let mut hist = phase_hists();
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
            .execute(&mut conn)
            .await
            .with_context(|| format!("concurrent insert into {t}"))?;
            hist[p][i].record(started.elapsed());
        }
        seq += 1;
        tokio::time::sleep(interval).await;
    }
    Ok((hist, seq))
}

/// Waits for every writer: their merged histograms, the rows they inserted, and the last
/// error if one failed (reported after the operations' own error).
async fn join_writers(
    handles: Vec<tokio::task::JoinHandle<Result<(PhaseHists, u64)>>>,
) -> (PhaseHists, i64, Option<anyhow::Error>) {
    let mut hist = phase_hists();
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
    (hist, inserted, writer_error)
}

/// The insert latency of each phase and layout that saw inserts (idle not reported).
fn insert_phases(hist: &PhaseHists) -> Vec<InsertPhase> {
    let mut out = Vec::new();
    for (i, name) in PHASES.iter().enumerate().take(IDLE) {
        for (j, layout) in Layout::ALL.into_iter().enumerate() {
            if !hist[i][j].is_empty() {
                out.push(InsertPhase {
                    phase: name.to_string(),
                    layout,
                    latency: hist[i][j].summary(),
                });
            }
        }
    }
    out
}

/// Both copies must now hold the same rows: the seeded ones outside the month, plus the inserts.
async fn consistency(
    conn: &mut PgConnection,
    oldest: &scratch::Bound,
    inserted: i64,
    month: &str,
) -> Result<Consistency> {
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
    Ok(c)
}

/// The operations in order: (phase name, layout, SQL).
fn steps(oldest: &scratch::Bound, next: &scratch::Bound) -> Vec<(&'static str, Layout, String)> {
    let oldest_part = format!("{PARTITIONED}_{}", oldest.suffix);
    vec![
        (
            "create_partition",
            Layout::Partitioned,
            fill(
                &queries().scratch_partition,
                &[
                    ("table", PARTITIONED),
                    ("part", &format!("{PARTITIONED}_{}", next.suffix)),
                    ("from", &next.from.to_rfc3339()),
                    ("to", &next.to.to_rfc3339()),
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
    ]
}

/// Runs the operations one after the other, each in its own insert phase.
async fn operations(
    conn: &mut PgConnection,
    m: &mut Maintenance,
    phase: &AtomicUsize,
    opts: &PartitionsOptions,
    oldest: &scratch::Bound,
    next: &scratch::Bound,
) -> Result<()> {
    tokio::time::sleep(opts.baseline).await;
    // Settle time around each operation, so inserts that queue behind it are attributed to it.
    let settle = Duration::from_millis(50);
    for (name, layout, text) in steps(oldest, next) {
        crate::interrupt::check()?;
        // Sizes just before removing the month, so the inserts meanwhile do not blur them.
        let before = match name {
            "detach_partition" => Some(("partitioned before", PARTITIONED)),
            "delete_month" => Some(("flat before", FLAT)),
            _ => None,
        };
        push_size(conn, m, before).await?;
        let index = PHASES.iter().position(|p| *p == name).expect("known phase");
        phase.store(index, Ordering::SeqCst);
        tokio::time::sleep(settle).await;
        let started = Instant::now();
        let rows = run_step(conn, name, text, oldest).await?;
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
        let after = match name {
            "drop_partition" => Some(("partitioned after drop", PARTITIONED)),
            "delete_month" => Some(("flat after delete", FLAT)),
            "vacuum" => Some(("flat after vacuum", FLAT)),
            _ => None,
        };
        push_size(conn, m, after).await?;
        crate::say!("  maintenance: {name} on {layout} in {ms:.1} ms");
        tokio::time::sleep(settle).await;
    }
    Ok(())
}

/// One operation's statement; returns the rows it affected.
async fn run_step(
    conn: &mut PgConnection,
    name: &str,
    text: String,
    oldest: &scratch::Bound,
) -> Result<i64> {
    Ok(if name == "delete_month" {
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
    })
}

/// Records a copy's size under `what`, when a step asks for one.
async fn push_size(
    conn: &mut PgConnection,
    m: &mut Maintenance,
    size: Option<(&str, &str)>,
) -> Result<()> {
    if let Some((what, t)) = size {
        m.sizes.push(SizeFigure {
            what: what.into(),
            bytes: scratch::bytes(conn, t).await?,
        });
    }
    Ok(())
}
