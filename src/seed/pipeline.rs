//! `storybench seed`: the whole seed, from the safety checks to the recorded fingerprint.

use super::load;
use super::{dataset, generate, profile, validate_options, DatasetInfo, SeedOptions, SeedReport};
use crate::schema;
use crate::target::Target;
use anyhow::{bail, Context, Result};
use std::sync::Arc;
use std::time::Instant;

/// Seeds the target: refuses existing data unless `reset`, then loads, finishes the schema,
/// analyzes, fingerprints and records the dataset as complete.
pub async fn seed(target: &Target, opts: &SeedOptions) -> Result<(DatasetInfo, SeedReport)> {
    validate_options(opts)?;
    let profile = profile::load(&opts.profile)?;
    let generator = Arc::new(generate::Generator::new(
        &profile,
        opts.scale,
        opts.seed,
        opts.anchor,
    )?);
    let mut conn = target.connect().await?;
    schema::check_ownership(&mut conn).await?;
    if let Some(existing) = dataset(&mut conn).await? {
        if !opts.reset {
            bail!(
                "this database already holds a storybench dataset (profile {} × {}, seed {}, {}); \
                 pass --reset to replace it. Nothing was changed.",
                existing.profile,
                existing.scale,
                existing.seed,
                existing.status
            );
        }
    }
    check_disk_space(target, &generator)?;
    let current = schema::current_variant(&mut conn).await?;
    let variant = opts.variant.resolve(current.as_ref());
    // Tables must be bare for the load: drop storybench's own objects (only those).
    schema::reset(&mut conn).await?;

    let started = Instant::now();
    schema::create_bare(&mut conn, opts.anchor).await?;
    let mut info = DatasetInfo {
        status: "loading".into(),
        profile: opts.profile.clone(),
        scale: opts.scale,
        seed: opts.seed,
        anchor: opts.anchor,
        fingerprint: None,
        db_fingerprint: None,
        row_counts: serde_json::Value::Null,
        seeded_at: chrono::Utc::now(),
        sealed_state: None,
        verified: None,
    };
    load::record_dataset(&mut conn, &info).await?;
    if let Some(method) = &opts.toast_compression {
        load::set_compression(&mut conn, method).await?;
    }
    let mut report = SeedReport {
        jobs: opts.jobs,
        ..Default::default()
    };
    report.toast_compression = opts
        .toast_compression
        .clone()
        .unwrap_or(load::toast_compression(&mut conn).await?);

    tracing::info!(
        users = generator.total_users(),
        chunks = generator.chunk_count(),
        jobs = opts.jobs,
        "seeding {} × {}",
        opts.profile,
        opts.scale
    );
    let load_started = Instant::now();
    let tallies = load::load_chunks(target, generator.clone(), opts.jobs).await?;
    report.load_seconds = load_started.elapsed().as_secs_f64();
    load::after_load(target, &mut conn, &variant, opts.jobs, &mut report).await?;
    report.seconds = started.elapsed().as_secs_f64();

    report.tables = load::table_loads(&mut conn, &tallies).await?;
    report.total_rows = report.tables.iter().map(|t| t.rows).sum();
    report.total_bytes = report
        .tables
        .iter()
        .map(|t| t.heap_bytes + t.toast_bytes + t.index_bytes)
        .sum();
    report.rows_per_second = report.total_rows as f64 / report.seconds.max(1e-9);
    report.mb_per_second = report.total_bytes as f64 / 1_048_576.0 / report.seconds.max(1e-9);
    // The fingerprint comes from the bytes loaded: no pass over the database.
    let (fingerprint, counts) = load::streamed_fingerprint(&tallies);
    info.status = "complete".into();
    info.fingerprint = Some(fingerprint);
    info.row_counts = counts;
    // Seal: measuring commands verify nothing wrote to the dataset since this counter.
    info.sealed_state = Some(crate::pristine::write_counter(&mut conn).await?);
    if opts.verify {
        let started = Instant::now();
        info.db_fingerprint = Some(verify_counts(&mut conn, &info.row_counts).await?);
        report.verify_seconds = Some(started.elapsed().as_secs_f64());
    }
    load::record_dataset(&mut conn, &info).await?;
    Ok((info, report))
}

/// `seed --verify`: the database-side fingerprint, after checking the database holds the
/// rows the stream counted, table by table.
async fn verify_counts(
    conn: &mut sqlx::PgConnection,
    streamed: &serde_json::Value,
) -> Result<String> {
    let (fingerprint, counts) = load::db_fingerprint(conn).await?;
    let counts = counts
        .as_object()
        .context("row counts of seed/fingerprint.sql")?;
    let streamed = streamed.as_object().context("streamed row counts")?;
    let mut differ = Vec::new();
    for (table, n) in streamed {
        // The SQL names public tables without their schema.
        let short = table.strip_prefix("public.").unwrap_or(table);
        let found = counts.get(table).or_else(|| counts.get(short));
        if found.and_then(|v| v.as_u64()) != n.as_u64() {
            differ.push(format!("{table}: {n} streamed, {found:?} in the database"));
        }
    }
    if !differ.is_empty() {
        bail!(
            "seed --verify: the database does not hold the rows loaded: {}",
            differ.join("; ")
        );
    }
    Ok(fingerprint)
}

/// Refuses up front when the embedded cluster's disk cannot hold the dataset.
fn check_disk_space(target: &Target, generator: &generate::Generator) -> Result<()> {
    let Some(cluster) = &target.embedded else {
        return Ok(());
    };
    let expected: u64 = generator.estimate().iter().map(|(_, _, bytes)| bytes).sum();
    // Indexes, the flat api_usage twin and WAL come on top of the raw row bytes.
    let needed = expected.saturating_mul(2);
    let stat = nix::sys::statvfs::statvfs(&cluster.data_dir).context("reading free disk space")?;
    let free = stat.blocks_available() as u64 * stat.fragment_size() as u64;
    if free < needed {
        bail!(
            "not enough disk space for this seed: about {} needed, {} free at {}. Use a smaller --scale or another --data-dir.",
            crate::format::human_bytes(needed as f64),
            crate::format::human_bytes(free as f64),
            cluster.data_dir.display()
        );
    }
    Ok(())
}
