//! One storybench at a time on a data directory and on a database, so two processes never
//! seed over each other or measure on each other's load. The second refuses at once with one
//! line naming the holder: a `flock` on `<data-dir>.lock` (beside the data directory, which
//! initdb needs empty) before the embedded cluster is started, and a session advisory lock in
//! the database, held on a connection of its own for the whole command.

use crate::internal_sql::{q, sql};
use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::ConnectOptions;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Advisory lock keys: "STBR" and the dataset's name hashed (two int4 keys, so objsubid = 2
/// in pg_locks), taken in the maintenance database.
const KEY: (i32, i32) = (0x5354_4252, 0);

/// Held while it lives: the file lock on a data directory (none when the lock file cannot
/// be made: the cluster code then reports what is wrong with the place).
pub struct DirLock {
    _file: Option<Flock<std::fs::File>>,
}

/// The command line words that name what a process is doing (never a URL or password).
fn describe_self() -> String {
    const COMMANDS: [&str; 13] = [
        "run",
        "ops",
        "merge",
        "seed",
        "explain",
        "rls",
        "partitions",
        "load",
        "capacity",
        "schema",
        "db",
        "compare",
        "report",
    ];
    let args: Vec<String> = std::env::args().collect();
    let words: Vec<&str> = args
        .iter()
        .skip_while(|a| !COMMANDS.contains(&a.as_str()))
        .take(2)
        .map(String::as_str)
        .filter(|a| !a.starts_with('-') && !a.contains("://"))
        .collect();
    format!(
        "storybench {} (pid {}, since {})",
        words.join(" "),
        std::process::id(),
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
    )
}

fn lock_path(data_dir: &Path) -> PathBuf {
    let mut name = data_dir.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    data_dir.with_file_name(name)
}

/// Locks the data directory or refuses, naming the process that holds it.
pub fn lock_data_dir(data_dir: &Path) -> Result<DirLock> {
    let path = lock_path(data_dir);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(parent);
    }
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) => {
            tracing::debug!("no lock file {}: {e}", path.display());
            return Ok(DirLock { _file: None });
        }
    };
    let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(f) => f,
        Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            bail!(
                "the data directory {} is in use by another {}; wait for it to finish",
                data_dir.display(),
                if holder.is_empty() {
                    "storybench"
                } else {
                    holder
                }
            );
        }
        Err((_, e)) => bail!("locking {}: {e}", path.display()),
    };
    // Say who holds it, for the next one to report.
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(describe_self().as_bytes())?;
    file.flush()?;
    Ok(DirLock { _file: Some(file) })
}

/// The second advisory key: the dataset database's name, hashed (FNV-1a).
fn database_key(name: &str) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h as i32
}

/// Takes the database's advisory lock on a connection of its own (returned: the lock lives
/// as long as it), or refuses, naming the holder. The connection goes to the server's
/// maintenance database, not the dataset: the dataset is the template of every pristine
/// copy and must have no session while one is made.
pub async fn lock_database(
    options: &PgConnectOptions,
    what: &str,
    shared: bool,
) -> Result<PgConnection> {
    let me = describe_self();
    // application_name is how the next process learns who holds the lock (at most 63 bytes).
    let name: String = me.chars().take(63).collect();
    let dataset = options.get_database().unwrap_or("postgres").to_string();
    let key = (KEY.0, database_key(&dataset));
    let mut last = None;
    let mut conn = None;
    for db in ["postgres", "template1"] {
        match options
            .clone()
            .database(db)
            .application_name(&name)
            .log_statements(tracing::log::LevelFilter::Off)
            .connect()
            .await
        {
            Ok(c) => {
                conn = Some(c);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some(mut conn) = conn else {
        return Err(last.expect("tried a database"))
            .with_context(|| format!("connecting to the server of {what} to lock it"));
    };
    let try_lock = if shared {
        &q().try_advisory_lock_shared
    } else {
        &q().try_advisory_lock
    };
    let got: bool = sqlx::query_scalar(sql(try_lock))
        .bind(key.0)
        .bind(key.1)
        .fetch_one(&mut conn)
        .await
        .context("taking storybench's advisory lock")?;
    if got {
        return Ok(conn);
    }
    let holder: Option<(i32, String, String)> = sqlx::query_as(sql(&q().advisory_lock_holder))
        .bind(key.0)
        .bind(key.1)
        .fetch_optional(&mut conn)
        .await?;
    match holder {
        Some((pid, app, since)) => bail!(
            "{what} is in use by another {} (server pid {pid}, connected {since}); wait for it to finish",
            if app.is_empty() { "storybench" } else { &app }
        ),
        None => bail!("{what} is in use by another storybench; wait for it to finish"),
    }
}
