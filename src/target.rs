//! Which database a command works on: a `--database-url`, or the embedded cluster.
//! Also the guards every command passes before it touches anything: the `--protect`
//! pattern list and password redaction.

use crate::cluster::{ClusterGuard, EmbeddedCluster};
use anyhow::{bail, Context, Result};
use clap::Args;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::ConnectOptions;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Connection options shared by every command that touches a database.
#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    /// PostgreSQL URL to work on instead of the embedded cluster.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Data directory of the embedded cluster.
    #[arg(
        long,
        env = "STORYBENCH_DATA_DIR",
        default_value = ".storybench/pgdata",
        global = true
    )]
    pub data_dir: PathBuf,
    /// TCP port for the embedded cluster (default: a free one, remembered in the data directory).
    #[arg(long, global = true)]
    pub port: Option<u16>,
    /// Refuse any database whose name contains one of these comma-separated patterns
    /// (case-insensitive; `*` matches anything).
    #[arg(long, default_value = "prod", value_delimiter = ',', global = true)]
    pub protect: Vec<String>,
    /// Keep each stage's pristine copy of the dataset after the command, for inspection
    /// (named in results.json `stages[].copy`); the next command on this host drops it.
    #[arg(long, env = "STORYBENCH_KEEP_COPIES", global = true)]
    pub keep_copies: bool,
    /// Shards of one sharded load share the database: they take storybench's lock in shared
    /// mode (other commands still wait for them, and they for other commands).
    #[arg(skip)]
    pub shared_lock: bool,
}

/// A database URL whose password never reaches logs, results or error messages.
#[derive(Clone)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }
    /// The real URL, for connecting and for child programs only.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
    pub fn database_name(&self) -> Option<String> {
        PgConnectOptions::from_str(&self.0)
            .ok()?
            .get_database()
            .map(str::to_string)
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({})", self.redacted())
    }
}

/// Replaces the password of a URL (and a `password=` parameter) with `***`.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
            if pairs.iter().any(|(k, _)| k == "password") {
                let mut q = parsed.query_pairs_mut();
                q.clear();
                for (k, v) in pairs {
                    q.append_pair(&k, if k == "password" { "***" } else { &v });
                }
            }
            parsed.to_string()
        }
        Err(_) => "<unparseable URL>".to_string(),
    }
}

/// Removes every occurrence of the URL's password from a message (driver errors may echo it).
pub fn scrub(message: &str, url: &SecretUrl) -> String {
    let mut out = message.replace(url.expose(), &url.redacted());
    if let Ok(parsed) = url::Url::parse(url.expose()) {
        if let Some(pw) = parsed.password().filter(|p| !p.is_empty()) {
            out = out.replace(pw, "***");
        }
    }
    out
}

fn matches_pattern(name: &str, pattern: &str) -> bool {
    let name = name.to_lowercase();
    let pattern = pattern.trim().to_lowercase();
    if pattern.is_empty() {
        return false;
    }
    if !pattern.contains('*') {
        return name.contains(&pattern);
    }
    // Glob with `*` only: every literal piece must appear in order.
    let pieces: Vec<&str> = pattern.split('*').collect();
    let mut rest = name.as_str();
    for (i, piece) in pieces.iter().enumerate() {
        if piece.is_empty() {
            continue;
        }
        if i == 0 {
            match rest.strip_prefix(piece) {
                Some(r) => rest = r,
                None => return false,
            }
        } else {
            match rest.find(piece) {
                Some(pos) => rest = &rest[pos + piece.len()..],
                None => return false,
            }
        }
    }
    pieces
        .last()
        .is_none_or(|last| last.is_empty() || name.ends_with(last))
}

/// Refuses URLs naming a protected database before any connection is made.
fn check_protected(url: &SecretUrl, patterns: &[String]) -> Result<()> {
    let name = url
        .database_name()
        .with_context(|| format!("the database URL {url} is malformed or names no database"))?;
    if let Some(p) = patterns.iter().find(|p| matches_pattern(&name, p)) {
        bail!(
            "refusing to touch database {name:?}: its name matches the protected pattern {p:?} (--protect). \
             storybench never runs against such databases."
        );
    }
    Ok(())
}

/// The resolved database of one command, plus the embedded cluster it may have started.
pub struct Target {
    pub url: SecretUrl,
    pub embedded: Option<EmbeddedCluster>,
    guard: Option<ClusterGuard>,
    /// The server's major, checked against [`crate::pg_version`] on the first connection.
    server_major: tokio::sync::OnceCell<u32>,
    /// Another database on the same server (a pristine copy, the maintenance database).
    database: Option<String>,
    /// `--keep-copies`: pristine copies outlive their stage.
    pub keep_copies: bool,
    /// The database's advisory lock, taken on the first connection (src/lock.rs); only the
    /// command's own target takes it, not its copies.
    db_lock: Option<tokio::sync::OnceCell<std::sync::Mutex<PgConnection>>>,
    /// Take that lock in shared mode (the shards of one load).
    shared_lock: bool,
    /// The data directory's file lock (embedded cluster), released after `guard` stops it.
    _dir_lock: Option<crate::lock::DirLock>,
}

impl Target {
    /// Resolves `--database-url` or starts the embedded cluster when it is down
    /// (it is stopped again by [`Target::finish`] or on drop).
    pub fn resolve(args: &DbArgs) -> Result<Self> {
        if let Some(raw) = &args.database_url {
            let url = SecretUrl::new(raw.clone());
            PgConnectOptions::from_str(raw).map_err(|e| {
                anyhow::anyhow!(
                    "malformed --database-url {url}: {}",
                    scrub(&e.to_string(), &url)
                )
            })?;
            check_protected(&url, &args.protect)?;
            return Ok(Self {
                url,
                embedded: None,
                guard: None,
                server_major: Default::default(),
                database: None,
                keep_copies: args.keep_copies,
                db_lock: Some(Default::default()),
                shared_lock: args.shared_lock,
                _dir_lock: None,
            });
        }
        let cluster = EmbeddedCluster::new(&args.data_dir, args.port)?;
        // Refuse binaries that are too old before initdb writes anything.
        crate::pg_version::check(
            cluster.bins.major,
            &format!("the embedded cluster ({})", cluster.bins.bindir.display()),
        )?;
        // Before starting it: two processes must not init or start one cluster together.
        let dir_lock = crate::lock::lock_data_dir(&cluster.data_dir)?;
        let started = cluster.ensure_running()?;
        let url = SecretUrl::new(cluster.url()?);
        check_protected(&url, &args.protect)?;
        let guard = ClusterGuard::new(cluster.clone(), started);
        Ok(Self {
            url,
            embedded: Some(cluster),
            guard: Some(guard),
            server_major: Default::default(),
            database: None,
            keep_copies: args.keep_copies,
            db_lock: Some(Default::default()),
            shared_lock: args.shared_lock,
            _dir_lock: Some(dir_lock),
        })
    }

    /// The same server and credentials, another database. The result never stops the
    /// embedded cluster (the original target owns it).
    pub fn on_database(&self, name: &str) -> Target {
        Target {
            url: self.url.clone(),
            embedded: self.embedded.clone(),
            guard: None,
            server_major: self.server_major.clone(),
            database: Some(name.to_string()),
            keep_copies: self.keep_copies,
            db_lock: None,
            shared_lock: false,
            _dir_lock: None,
        }
    }

    /// The database this target connects to, when it is not the URL's own.
    pub fn database_override(&self) -> Option<&str> {
        self.database.as_deref()
    }

    pub fn describe(&self) -> String {
        match &self.embedded {
            Some(c) => format!(
                "embedded PostgreSQL {} at {}",
                c.bins.major,
                c.data_dir.display()
            ),
            None => format!("external server {}", self.url),
        }
    }

    pub fn connect_options(&self) -> Result<PgConnectOptions> {
        let opts = PgConnectOptions::from_str(self.url.expose()).map_err(|e| {
            anyhow::anyhow!(
                "malformed database URL {}: {}",
                self.url,
                scrub(&e.to_string(), &self.url)
            )
        })?;
        let opts = match &self.database {
            Some(db) => opts.database(db),
            None => opts,
        };
        Ok(opts
            .application_name("storybench")
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Debug, Duration::from_secs(10)))
    }

    /// A pool for set-up work (schema, seeding, sampling). Load workers own connections instead.
    pub async fn pool(&self, max: u32) -> Result<PgPool> {
        PgPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(15))
            .connect_with(self.connect_options()?)
            .await
            .map_err(|e| connect_error(e, &self.url))
    }

    pub async fn connect(&self) -> Result<PgConnection> {
        let mut conn = self
            .connect_options()?
            .connect()
            .await
            .map_err(|e| connect_error(e, &self.url))?;
        self.server_major
            .get_or_try_init(|| server_major(&mut conn, &self.url))
            .await?;
        if let Some(lock) = &self.db_lock {
            lock.get_or_try_init(|| async {
                let what = format!("the database {}", self.url);
                crate::lock::lock_database(&self.connect_options()?, &what, self.shared_lock)
                    .await
                    .map(std::sync::Mutex::new)
            })
            .await?;
        }
        Ok(conn)
    }

    /// Stops the embedded cluster if this command started it.
    pub fn finish(mut self) -> Result<()> {
        // Release the database lock before the server goes away.
        drop(self.db_lock.take().and_then(|l| l.into_inner()));
        match self.guard.take() {
            Some(g) => g.finish(),
            None => Ok(()),
        }
    }
}

/// Reads the server's major once and refuses or warns per [`crate::pg_version`].
async fn server_major(conn: &mut PgConnection, url: &SecretUrl) -> Result<u32> {
    let (_, num): (String, i32) = sqlx::query_as(crate::internal_sql::sql(
        &crate::internal_sql::q().server_version,
    ))
    .fetch_one(&mut *conn)
    .await
    .context("reading the server version")?;
    let major = crate::pg_version::major_of(num);
    crate::pg_version::check(major, &format!("the server at {url}"))?;
    Ok(major)
}

fn connect_error(e: sqlx::Error, url: &SecretUrl) -> anyhow::Error {
    let detail = scrub(&e.to_string(), url);
    let hint = match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("28P01") => " (wrong password)",
        sqlx::Error::Database(db) if db.code().as_deref() == Some("3D000") => {
            " (the database does not exist)"
        }
        sqlx::Error::Io(_) => " (is the server running and reachable?)",
        sqlx::Error::PoolTimedOut => " (timed out: is the server running and reachable?)",
        _ => "",
    };
    anyhow::anyhow!("cannot connect to {url}: {detail}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://bob:secret@db:5432/app"),
            "postgres://bob:***@db:5432/app"
        );
        assert!(!redact_url("postgres://bob@db/app?password=hunter2").contains("hunter2"));
        let u = SecretUrl::new("postgres://bob:s3cr3t@db/app");
        assert_eq!(
            scrub("failed for s3cr3t at postgres://bob:s3cr3t@db/app", &u),
            "failed for *** at postgres://bob:***@db/app"
        );
    }

    #[test]
    fn protect_patterns() {
        let pats = vec!["prod".to_string()];
        assert!(check_protected(&SecretUrl::new("postgres://x@h/my_prod_db"), &pats).is_err());
        assert!(check_protected(&SecretUrl::new("postgres://x@h/PRODUCTION"), &pats).is_err());
        assert!(check_protected(&SecretUrl::new("postgres://x@h/storybench"), &pats).is_ok());
        assert!(matches_pattern("app_live", "app_*"));
        assert!(!matches_pattern("myapp_live", "app_*"));
        assert!(matches_pattern("staging-eu", "*-eu"));
    }
}
