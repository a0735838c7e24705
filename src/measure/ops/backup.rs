//! The document's backup script as an operation: `pg_dump --clean --if-exists --no-owner`
//! of the whole database, the per-table dump of stories and heroes, gzip of the full dump.
//! Each program is one step on the operation's clock (like a migration's statements). The
//! rehearsal also restores: a directory-format dump (`pg_dump -Fd -j N`) restored with
//! `pg_restore -j N` into a scratch database storybench creates (and drops), whose
//! fingerprint must be the copy's.

use super::migration::StatementRun;
use crate::pristine::PristineCopy;
use crate::target::Target;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

/// The script's arguments, from `[backup]` in scenarios/ops.toml.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Script {
    pub full: Vec<String>,
    pub full_file: String,
    pub tables: Vec<String>,
    pub tables_file: String,
}

/// What the backup wrote, and the restore check (rehearsal only).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BackupFigures {
    pub full_dump_bytes: u64,
    pub full_gzip_bytes: u64,
    pub tables_dump_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<Restore>,
}

/// The directory dump restored into a scratch database.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Restore {
    pub jobs: usize,
    pub dump_seconds: f64,
    pub dump_bytes: u64,
    pub restore_seconds: f64,
    /// pg_restore's exit status and the tail of what it said (it goes on past errors).
    pub exit_code: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub messages: String,
    pub source_fingerprint: String,
    pub restored_fingerprint: String,
    pub same_fingerprint: bool,
}

/// A private directory for the backup's files, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "storybench-backup-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The URL a child program connects with: the target's, on the target's database.
fn child_url(target: &Target) -> Result<String> {
    let mut url = url::Url::parse(target.url.expose()).context("the database URL")?;
    if let Some(db) = target.database_override() {
        url.set_path(db);
    }
    Ok(url.to_string())
}

fn tool(target: &Target, name: &str) -> PathBuf {
    match &target.embedded {
        Some(c) => c.bins.tool(name),
        None => PathBuf::from(name),
    }
}

/// Runs one program to completion (killed if the command is interrupted), its stdout to
/// `stdout` when given; records it as a step.
async fn step(
    clock: Instant,
    head: String,
    mut cmd: tokio::process::Command,
    stdout: Option<&Path>,
) -> (StatementRun, Result<std::process::Output>) {
    let mut run = StatementRun {
        head,
        started_s: clock.elapsed().as_secs_f64(),
        attempts: 1,
        ..Default::default()
    };
    cmd.kill_on_drop(true).stdin(Stdio::null());
    let outcome = async {
        if let Some(path) = stdout {
            let f = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            cmd.stdout(f);
        } else {
            cmd.stdout(Stdio::null());
        }
        cmd.stderr(Stdio::piped());
        let child = cmd.spawn().context("starting the program")?;
        tokio::select! {
            out = child.wait_with_output() => Ok(out?),
            _ = crate::interrupt::wait() => bail!(crate::interrupt::Interrupted),
        }
    }
    .await;
    run.finished_s = clock.elapsed().as_secs_f64();
    let outcome = outcome.and_then(|out| {
        if out.status.success() {
            Ok(out)
        } else {
            bail!(
                "{} exited with {}: {}",
                run.head,
                out.status,
                tail(&String::from_utf8_lossy(&out.stderr))
            )
        }
    });
    if let Err(e) = &outcome {
        run.error = Some(format!("{e:#}"));
    }
    (run, outcome)
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |it| {
        it.flatten()
            .map(|e| e.metadata().map_or(0, |m| m.len()))
            .sum()
    })
}

/// The document's script, step by step, on `target`.
pub async fn run(
    target: &Target,
    clock: Instant,
) -> (Vec<StatementRun>, Result<()>, BackupFigures) {
    let mut steps = Vec::new();
    let mut figures = BackupFigures::default();
    let outcome = script(target, clock, &mut steps, &mut figures).await;
    (steps, outcome, figures)
}

/// The restore check on `target`, in a directory of its own.
pub async fn restore(target: &Target) -> Result<Restore> {
    let dir = Scratch::new()?;
    let url = child_url(target)?;
    restore_check(target, &url, &dir.0, Instant::now(), &mut Vec::new()).await
}

async fn script(
    target: &Target,
    clock: Instant,
    steps: &mut Vec<StatementRun>,
    figures: &mut BackupFigures,
) -> Result<()> {
    let s = super::backup_script();
    let url = child_url(target)?;
    let dir = Scratch::new()?;
    let today = chrono::Utc::now().date_naive();
    let full = dir.0.join(today.format(&s.full_file).to_string());
    let tables = dir.0.join(today.format(&s.tables_file).to_string());
    let pg_dump = tool(target, "pg_dump");
    let mut push = |(run, out): (StatementRun, Result<std::process::Output>)| {
        steps.push(run);
        out.map(|_| ())
    };

    let mut cmd = tokio::process::Command::new(&pg_dump);
    cmd.arg(&url).args(&s.full);
    let head = format!(
        "pg_dump $DATABASE_URL {} > {}",
        s.full.join(" "),
        name(&full)
    );
    push(step(clock, head, cmd, Some(&full)).await)?;
    figures.full_dump_bytes = size(&full);

    let mut cmd = tokio::process::Command::new(&pg_dump);
    cmd.arg(&url).args(&s.tables);
    let head = format!(
        "pg_dump $DATABASE_URL {} > {}",
        s.tables.join(" "),
        name(&tables)
    );
    push(step(clock, head, cmd, Some(&tables)).await)?;
    figures.tables_dump_bytes = size(&tables);

    let mut cmd = tokio::process::Command::new("gzip");
    cmd.arg(&full);
    push(step(clock, format!("gzip {}", name(&full)), cmd, None).await)?;
    figures.full_gzip_bytes = size(&full.with_extension("sql.gz"));
    Ok(())
}

fn name(p: &Path) -> String {
    p.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into())
}

/// Dumps `target` in directory format and restores it into a scratch database; compares the
/// fingerprints. The scratch database is dropped whatever happens.
async fn restore_check(
    target: &Target,
    url: &str,
    dir: &Path,
    clock: Instant,
    steps: &mut Vec<StatementRun>,
) -> Result<Restore> {
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let dump = dir.join("directory_dump");
    let mut cmd = tokio::process::Command::new(tool(target, "pg_dump"));
    cmd.arg(url)
        .args([
            "--format=directory",
            "--no-owner",
            &format!("--jobs={jobs}"),
        ])
        .arg("--file")
        .arg(&dump);
    let (run, out) = step(
        clock,
        format!("pg_dump -Fd -j {jobs} --no-owner (for the restore)"),
        cmd,
        None,
    )
    .await;
    let dump_seconds = run.finished_s - run.started_s;
    steps.push(run);
    out?;
    let scratch = PristineCopy::create_empty(target, "restore").await?;
    crate::say!("  ops: restoring the backup into {}", scratch.name());
    let outcome = async {
        let mut cmd = tokio::process::Command::new(tool(target, "pg_restore"));
        cmd.args(["--no-owner", &format!("--jobs={jobs}"), "--dbname"])
            .arg(child_url(scratch.target())?)
            .arg(&dump);
        let (mut run, out) = step(
            clock,
            format!("pg_restore -j {jobs} --no-owner into a scratch database"),
            cmd,
            None,
        )
        .await;
        // pg_restore goes on past errors and says so in its exit status: the fingerprint
        // decides whether the data came back; its messages are kept.
        let (exit_code, messages) = match out {
            Ok(o) => (0, tail(&String::from_utf8_lossy(&o.stderr))),
            Err(e) if crate::interrupt::interrupted() => return Err(e),
            Err(e) => {
                run.error = None;
                (1, format!("{e:#}"))
            }
        };
        let restore_seconds = run.finished_s - run.started_s;
        steps.push(run);
        let (source_fingerprint, _) = crate::seed::db_fingerprint(&mut target.connect().await?)
            .await
            .context("the copy's fingerprint")?;
        let (restored_fingerprint, _) =
            crate::seed::db_fingerprint(&mut scratch.target().connect().await?)
                .await
                .context("the restored database's fingerprint")?;
        Ok(Restore {
            jobs,
            dump_seconds,
            dump_bytes: dir_size(&dump),
            restore_seconds,
            exit_code,
            messages,
            same_fingerprint: source_fingerprint == restored_fingerprint,
            source_fingerprint,
            restored_fingerprint,
        })
    }
    .await;
    let dropped = scratch.drop().await;
    let r = outcome?;
    dropped?;
    Ok(r)
}
