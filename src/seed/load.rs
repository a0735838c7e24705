//! Loading: generator threads on every core feed chunks to `jobs` COPY connections; then
//! keys, FKs, triggers, RLS, the variant's indexes and policies, ANALYZE and the fingerprint.

use super::budget::{ByteBudget, BYTES_IN_FLIGHT};
use super::generate::{copy_statement, ChunkData, Generator, Table};
use super::sql::{q, queries, FINGERPRINT};
use super::{DatasetInfo, SeedReport, TableLoad};
use crate::interrupt;
use crate::schema::{self, Variant};
use crate::target::Target;
use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Bytes handed to a COPY connection at a time.
const COPY_PIECE: usize = 1 << 20;

/// Name of the flat api_usage twin; it receives the same COPY data as the partitioned table.
const FLAT_API_USAGE: &str = "storybench_flat.api_usage";

#[derive(Default, Clone, Copy)]
pub(super) struct Tally {
    rows: u64,
    bytes: u64,
    busy: Duration,
    /// The table's share of the streamed fingerprint: rows the server accepted, hashed.
    pub(super) sum: super::fingerprint::TableSum,
}

type Tallies = Arc<Mutex<BTreeMap<String, Tally>>>;

/// Streams every chunk into the bare tables. Returns per-table tallies.
pub(super) async fn load_chunks(
    target: &Target,
    generator: Arc<Generator>,
    jobs: usize,
) -> Result<BTreeMap<String, Tally>> {
    let chunks = generator.chunk_count();
    let progress = Progress::new(&generator);
    // The bytes in flight bound the memory; the channel only hands chunks over.
    super::budget::return_large_buffers();
    let budget = Arc::new(ByteBudget::new(BYTES_IN_FLIGHT));
    let (tx, rx) = mpsc::channel::<ChunkData>(chunks.max(1));
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let next = Arc::new(AtomicUsize::new(0));

    // Generation is CPU work: plain threads, one per core, pulling chunk numbers.
    let gen_threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let mut producers = Vec::new();
    for _ in 0..gen_threads {
        let (generator, next, tx) = (generator.clone(), next.clone(), tx.clone());
        let budget = budget.clone();
        producers.push(std::thread::spawn(move || loop {
            let i = next.fetch_add(1, Ordering::SeqCst);
            if i >= chunks || interrupt::interrupted() {
                return;
            }
            // The loaders stopped (error or interrupt) when the channel is closed.
            if !budget.wait_for_room(|| interrupt::interrupted() || tx.is_closed()) {
                return;
            }
            let chunk = generator.chunk(i);
            budget.take(chunk.bytes());
            if tx.blocking_send(chunk).is_err() {
                return;
            }
        }));
    }
    drop(tx);

    let tallies: Tallies = Arc::default();
    let mut loaders = tokio::task::JoinSet::new();
    for _ in 0..jobs {
        let mut conn = bulk_connection(target).await?;
        let (rx, tallies, progress) = (rx.clone(), tallies.clone(), progress.clone());
        let budget = budget.clone();
        loaders.spawn(async move {
            loop {
                let chunk = { rx.lock().await.recv().await };
                let Some(chunk) = chunk else {
                    return Ok::<(), anyhow::Error>(());
                };
                interrupt::check()?;
                for data in &chunk.tables {
                    copy_table(
                        &mut conn,
                        copy_statement(data.table),
                        data.table.name(),
                        data,
                        &tallies,
                    )
                    .await?;
                    if data.table == Table::ApiUsage {
                        let flat = flat_statement(copy_statement(data.table))?;
                        copy_table(&mut conn, &flat, FLAT_API_USAGE, data, &tallies).await?;
                    }
                    progress.advance(data.table, data.rows, data.copy.len());
                }
                let bytes = chunk.bytes();
                drop(chunk);
                budget.release(bytes);
                progress.chunk_done();
            }
        });
    }
    let mut first_error = None;
    while let Some(joined) = loaders.join_next().await {
        let outcome = joined.map_err(anyhow::Error::from).and_then(|r| r);
        if let Err(e) = outcome {
            if first_error.is_none() {
                first_error = Some(e);
                // Dropping the receiver unblocks the generators; other loaders stop at their next chunk.
                loaders.abort_all();
            }
        }
    }
    drop(rx);
    for p in producers {
        let _ = p.join();
    }
    progress.finish();
    if let Some(e) = first_error {
        return Err(e);
    }
    interrupt::check()?;
    let result = tallies.lock().expect("tallies").clone();
    Ok(result)
}

async fn copy_table(
    conn: &mut PgConnection,
    statement: &str,
    name: &str,
    data: &super::generate::TableData,
    tallies: &Tallies,
) -> Result<()> {
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw(statement)
        .await
        .map_err(|e| copy_error(name, e))?;
    // In pieces: the connection's write buffer keeps the size of the largest send.
    for piece in data.copy.chunks(COPY_PIECE) {
        copy.send(piece).await.map_err(|e| copy_error(name, e))?;
    }
    let rows = copy.finish().await.map_err(|e| copy_error(name, e))?;
    if rows != data.rows {
        bail!(
            "COPY into {name} stored {rows} rows, expected {}",
            data.rows
        );
    }
    let mut t = tallies.lock().expect("tallies");
    let e = t.entry(name.to_string()).or_default();
    e.rows += rows;
    e.bytes += data.copy.len() as u64;
    e.busy += started.elapsed();
    e.sum.add(data.sum);
    Ok(())
}

/// A failed COPY as one line. When the connection dies (pg_terminate_backend, a crash, a
/// restart) the server's reason is usually lost with the socket, so say what happened.
fn copy_error(name: &str, e: sqlx::Error) -> anyhow::Error {
    match e {
        sqlx::Error::Io(io) => anyhow::anyhow!(
            "COPY into {name}: lost the connection to the server ({io}): it was terminated \
             (e.g. pg_terminate_backend) or the server went away"
        ),
        other => anyhow::anyhow!("COPY into {name}: {other}"),
    }
}

/// A connection of the seeder's own, with its session settings for bulk work.
async fn bulk_connection(target: &Target) -> Result<PgConnection> {
    let mut conn = target.connect().await?;
    for stmt in &queries().bulk_session {
        conn.execute(q(stmt)).await.with_context(|| stmt.clone())?;
    }
    Ok(conn)
}

/// The flat twin's COPY: the same columns and data, into `storybench_flat.api_usage`.
fn flat_statement(partitioned: &str) -> Result<String> {
    if !partitioned.contains("public.api_usage ") {
        bail!("seed/copy.toml: the api_usage statement must name public.api_usage");
    }
    Ok(partitioned.replacen("public.api_usage ", &format!("{FLAT_API_USAGE} "), 1))
}

/// Adds everything that follows the load, checks it is all valid, and ANALYZEs in parallel.
pub(super) async fn after_load(
    target: &Target,
    conn: &mut PgConnection,
    variant: &Variant,
    jobs: usize,
    report: &mut SeedReport,
) -> Result<()> {
    // The DDL and ANALYZE run on `jobs` connections of their own, like pg_restore -j.
    let mut conns = Vec::with_capacity(jobs.max(1));
    for _ in 0..jobs.max(1) {
        conns.push(bulk_connection(target).await?);
    }
    let timings = schema::finish_timed(&mut conns, variant).await?;
    report.keys_seconds = timings.keys.as_secs_f64();
    report.fks_indexes_seconds = timings.fks_and_indexes.as_secs_f64();
    interrupt::check()?;

    let started = Instant::now();
    schema::on_connections(
        &mut conns,
        queries().steady_state_tables.clone(),
        async |c, stmt| {
            c.execute(q(&stmt)).await.with_context(|| stmt.clone())?;
            Ok(())
        },
    )
    .await?;
    report.analyze_seconds = started.elapsed().as_secs_f64();

    let not_valid: Vec<String> = sqlx::query_scalar(q(&queries().not_valid_constraints))
        .fetch_all(&mut *conn)
        .await?;
    let disabled: Vec<String> = sqlx::query_scalar(q(&queries().disabled_triggers))
        .fetch_all(&mut *conn)
        .await?;
    if !not_valid.is_empty() || !disabled.is_empty() {
        bail!("after the seed, constraints not validated: {not_valid:?}; disabled triggers: {disabled:?}");
    }
    Ok(())
}

/// The database-side fingerprint of the whole dataset (`seed/fingerprint.sql`), and its
/// row counts per table: a full pass over every table, so only `seed --verify` and the
/// check after a crash pay for it.
pub async fn db_fingerprint(conn: &mut PgConnection) -> Result<(String, serde_json::Value)> {
    let mut tx = conn.begin().await?;
    tx.execute(q(&queries().set_utc)).await?;
    let row: (String, serde_json::Value) =
        sqlx::query_as(q(FINGERPRINT)).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(row)
}

/// Per-table sizes after the load, merged with the COPY tallies.
pub(super) async fn table_loads(
    conn: &mut PgConnection,
    tallies: &BTreeMap<String, Tally>,
) -> Result<Vec<TableLoad>> {
    let mut names: Vec<String> = Table::ALL.iter().map(|t| t.name().to_string()).collect();
    names.push(FLAT_API_USAGE.to_string());
    let sizes: Vec<(String, i64, i64, i64)> = sqlx::query_as(q(&queries().table_sizes))
        .bind(&names)
        .fetch_all(&mut *conn)
        .await?;
    let sizes: BTreeMap<String, (i64, i64, i64)> = sizes
        .into_iter()
        .map(|(n, h, t, i)| (n, (h, t, i)))
        .collect();
    Ok(names
        .iter()
        .map(|name| {
            let tally = tallies.get(name).copied().unwrap_or_default();
            let (heap, toast, index) = sizes.get(name).copied().unwrap_or_default();
            let secs = tally.busy.as_secs_f64();
            TableLoad {
                table: name.clone(),
                rows: tally.rows,
                heap_bytes: heap as u64,
                toast_bytes: toast as u64,
                index_bytes: index as u64,
                seconds: secs,
                rows_per_second: if secs > 0.0 {
                    tally.rows as f64 / secs
                } else {
                    0.0
                },
                mb_per_second: if secs > 0.0 {
                    (heap + toast) as f64 / 1_048_576.0 / secs
                } else {
                    0.0
                },
            }
        })
        .collect())
}

/// The streamed fingerprint and row counts from the load's tallies; every table is listed,
/// also one that received no rows.
pub(super) fn streamed_fingerprint(
    tallies: &BTreeMap<String, Tally>,
) -> (String, serde_json::Value) {
    let mut sums: BTreeMap<String, super::fingerprint::TableSum> = Table::ALL
        .iter()
        .map(|t| (t.name().to_string(), Default::default()))
        .collect();
    sums.insert(FLAT_API_USAGE.to_string(), Default::default());
    for (name, tally) in tallies {
        sums.insert(name.clone(), tally.sum);
    }
    super::fingerprint::fingerprint(&sums)
}

pub(super) async fn set_compression(conn: &mut PgConnection, method: &str) -> Result<()> {
    let mut tx = conn.begin().await?;
    sqlx::query(q(&queries().set_compression_method))
        .bind(method)
        .execute(&mut *tx)
        .await?;
    tx.execute(q(&queries().set_compression))
        .await
        .with_context(|| format!("setting TOAST compression {method}"))?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn toast_compression(conn: &mut PgConnection) -> Result<String> {
    Ok(sqlx::query_scalar(q(&queries().toast_compression))
        .fetch_one(&mut *conn)
        .await?)
}

pub(super) async fn record_dataset(conn: &mut PgConnection, info: &DatasetInfo) -> Result<()> {
    schema::set_meta(conn, "dataset", &serde_json::to_value(info)?).await
}

/// A bar per table (rows, rows/s) and one for the bytes streamed (MB/s) on a terminal;
/// plain progress lines every ~10 % otherwise.
#[derive(Clone)]
struct Progress {
    bars: Arc<BTreeMap<Table, ProgressBar>>,
    bytes: ProgressBar,
    chunks_done: Arc<AtomicUsize>,
    chunks: usize,
    plain: bool,
}

impl Progress {
    fn new(generator: &Generator) -> Self {
        let template = "{prefix:>20} {bar:32} {pos:>10}/{len:<10} {per_sec:>12}";
        let bars: BTreeMap<Table, ProgressBar> = generator
            .estimate()
            .into_iter()
            .map(|(table, rows, _)| {
                let bar = crate::progress::bar(Some(rows), template);
                bar.set_prefix(table.name().trim_start_matches("public.").to_string());
                (table, bar)
            })
            .collect();
        let bytes = crate::progress::bar(
            None,
            "{prefix:>20} {spinner} {binary_bytes:>10} streamed, {binary_bytes_per_sec} {elapsed}",
        );
        bytes.set_prefix("COPY");
        Self {
            plain: bytes.is_hidden(),
            bars: Arc::new(bars),
            bytes,
            chunks_done: Arc::default(),
            chunks: generator.chunk_count(),
        }
    }

    fn advance(&self, table: Table, rows: u64, bytes: usize) {
        if let Some(bar) = self.bars.get(&table) {
            bar.inc(rows);
        }
        self.bytes.inc(bytes as u64);
    }

    fn chunk_done(&self) {
        let done = self.chunks_done.fetch_add(1, Ordering::SeqCst) + 1;
        let step = (self.chunks / 10).max(1);
        if self.plain && (done.is_multiple_of(step) || done == self.chunks) {
            crate::say!(
                "  seed: {done}/{} chunks loaded ({:.0} %)",
                self.chunks,
                100.0 * done as f64 / self.chunks as f64
            );
        }
    }

    fn finish(&self) {
        for bar in self.bars.values() {
            bar.finish_and_clear();
        }
        self.bytes.finish_and_clear();
    }
}
