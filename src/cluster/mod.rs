//! The embedded PostgreSQL cluster: initdb, start, stop and status of a private server
//! built from the locally installed binaries, in a persistent data directory.
//!
//! As root (CI), `initdb` and `pg_ctl` refuse to run, so they run as the `postgres` OS
//! user through `runuser`, on a data directory that user owns.

mod binaries;
mod owner;
pub(crate) mod settings;

pub use binaries::PgBinaries;

use anyhow::{anyhow, bail, Context, Result};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The database storybench creates and works in inside its embedded cluster.
const EMBEDDED_DATABASE: &str = "storybench";
const SUPERUSER: &str = "postgres";
const CONF_FILE: &str = "storybench.conf";
const LOG_FILE: &str = "server.log";
/// Unix socket paths are limited to 107 bytes; past this the cluster uses TCP only.
const MAX_SOCKET_DIR_LEN: usize = 90;

#[derive(Debug, Clone)]
pub struct EmbeddedCluster {
    pub data_dir: PathBuf,
    pub bins: PgBinaries,
    /// Port the user asked for; `None` lets storybench choose a free one.
    pub requested_port: Option<u16>,
}

/// What `pg_ctl status` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterState {
    NotInitialized,
    Stopped,
    Running,
}

impl EmbeddedCluster {
    pub fn new(data_dir: &Path, requested_port: Option<u16>) -> Result<Self> {
        let bins = PgBinaries::locate()?;
        let data_dir = absolute(data_dir)?;
        Ok(Self {
            data_dir,
            bins,
            requested_port,
        })
    }

    pub fn log_path(&self) -> PathBuf {
        self.data_dir.join(LOG_FILE)
    }

    pub fn state(&self) -> Result<ClusterState> {
        if !self.data_dir.join("PG_VERSION").is_file() {
            return Ok(ClusterState::NotInitialized);
        }
        let out = self.run_pg(
            Command::new(self.bins.tool("pg_ctl"))
                .arg("status")
                .arg("-D")
                .arg(&self.data_dir),
        )?;
        Ok(match out.status.code() {
            Some(0) => ClusterState::Running,
            _ => ClusterState::Stopped,
        })
    }

    /// Initializes the data directory if needed and starts the server if it is down.
    /// Returns true when this call started it.
    pub fn ensure_running(&self) -> Result<bool> {
        // Read-only checks first: the version, then the owner, before pg_ctl touches anything.
        if self.data_dir.join("PG_VERSION").is_file() {
            self.check_version()?;
        }
        owner::check_owner(&self.data_dir)?;
        match self.state()? {
            ClusterState::Running => Ok(false),
            ClusterState::NotInitialized => {
                self.init()?;
                self.start()?;
                Ok(true)
            }
            ClusterState::Stopped => {
                self.start()?;
                Ok(true)
            }
        }
    }

    /// The superuser URL of the storybench database (unix socket when the path allows it).
    pub fn url(&self) -> Result<String> {
        let port = self.configured_port()?;
        Ok(match self.socket_dir() {
            Some(dir) => format!(
                "postgres://{SUPERUSER}@localhost:{port}/{EMBEDDED_DATABASE}?host={}",
                dir.display()
            ),
            None => format!("postgres://{SUPERUSER}@127.0.0.1:{port}/{EMBEDDED_DATABASE}"),
        })
    }

    fn socket_dir(&self) -> Option<&Path> {
        (self.data_dir.as_os_str().len() <= MAX_SOCKET_DIR_LEN).then_some(self.data_dir.as_path())
    }

    fn init(&self) -> Result<()> {
        self.prepare_data_dir()?;
        tracing::info!(data_dir = %self.data_dir.display(), "initializing embedded PostgreSQL {}", self.bins.major);
        let out = self.run_pg(
            Command::new(self.bins.tool("initdb"))
                .arg("-D")
                .arg(&self.data_dir)
                .args([
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]),
        )?;
        if !out.status.success() {
            bail!(
                "initdb failed for {}:\n{}",
                self.data_dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let port = match self.requested_port {
            Some(p) => p,
            None => free_port()?,
        };
        self.write_conf(port)?;
        let conf = self.data_dir.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf)
            .with_context(|| format!("reading {}", conf.display()))?;
        text.push_str(&format!("\ninclude_if_exists = '{CONF_FILE}'\n"));
        std::fs::write(&conf, text).with_context(|| format!("writing {}", conf.display()))?;
        Ok(())
    }

    /// storybench's own server settings, in a file included from postgresql.conf.
    fn write_conf(&self, port: u16) -> Result<()> {
        let socket = self
            .socket_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        // pg_cron (ops' scheduled cleanup) and pg_qualstats (advise's predicates) must be
        // preloaded; each only when installed, so a server without them still starts.
        // pg_qualstats stays off until a session that reads it turns it on.
        let mut preload = vec!["pg_stat_statements"];
        let mut extra = String::new();
        if self.bins.has_library("pg_cron") {
            preload.push("pg_cron");
            // The maintenance database: jobs run in a copy through cron.schedule_in_database,
            // so the seeded dataset never holds the extension.
            extra.push_str("cron.database_name = 'postgres'\n");
        }
        if self.bins.has_library("pg_qualstats") {
            preload.push("pg_qualstats");
            extra.push_str("pg_qualstats.enabled = off\n");
        }
        let preload = preload.join(",");
        let text = format!(
            "# Written by storybench; edit freely, storybench rewrites only the port when it is taken.\n\
             port = {port}\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{socket}'\n\
             max_connections = 200\n\
             shared_buffers = '256MB'\n\
             shared_preload_libraries = '{preload}'\n\
             pg_stat_statements.track = all\n\
             track_io_timing = on\n\
             max_wal_size = '4GB'\n\
             checkpoint_timeout = '15min'\n\
             log_min_messages = warning\n\
             log_min_error_statement = panic\n\
             {extra}"
        );
        let path = self.data_dir.join(CONF_FILE);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        self.chown_to_postgres(&path)
    }

    fn configured_port(&self) -> Result<u16> {
        let path = self.data_dir.join(CONF_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (is the embedded cluster initialized? run `storybench db start`)",
                path.display()
            )
        })?;
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("port"))
            .filter_map(|rest| rest.trim().strip_prefix('=')?.trim().parse().ok())
            .next()
            .ok_or_else(|| anyhow!("no port in {}", path.display()))
    }

    fn start(&self) -> Result<()> {
        let mut port = self.configured_port()?;
        if !port_is_free(port) {
            match self.requested_port {
                Some(p) => {
                    bail!("port {p} is taken by another program; choose another with --port")
                }
                None => {
                    let new_port = free_port()?;
                    tracing::warn!("port {port} is taken by another program; the embedded cluster moves to port {new_port}");
                    self.write_conf(new_port)?;
                    port = new_port;
                }
            }
        }
        tracing::info!(port, "starting embedded PostgreSQL");
        let out = self.run_pg(
            Command::new(self.bins.tool("pg_ctl"))
                .arg("start")
                .arg("-D")
                .arg(&self.data_dir)
                .arg("-l")
                .arg(self.log_path())
                .args(["-w", "-t", "60", "-s"]),
        )?;
        if !out.status.success() {
            bail!(
                "the embedded PostgreSQL server failed to start ({}).\nLast lines of {}:\n{}",
                String::from_utf8_lossy(&out.stderr).trim(),
                self.log_path().display(),
                self.log_tail(20)
            );
        }
        self.create_database()
    }

    pub fn stop(&self) -> Result<()> {
        if self.state()? != ClusterState::Running {
            return Ok(());
        }
        tracing::info!("stopping embedded PostgreSQL");
        let out = self.run_pg(
            Command::new(self.bins.tool("pg_ctl"))
                .arg("stop")
                .arg("-D")
                .arg(&self.data_dir)
                .args(["-m", "fast", "-w", "-t", "60", "-s"]),
        )?;
        // The server may have gone away between the check and pg_ctl (an immediate shutdown,
        // a crash): that is stopped, not a second error.
        if !out.status.success() && self.state()? == ClusterState::Running {
            bail!(
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Creates the `storybench` database once; the cluster is ours, so this touches nothing else.
    fn create_database(&self) -> Result<()> {
        let port = self.configured_port()?.to_string();
        let host = self
            .socket_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "127.0.0.1".into());
        let psql = |sql: &str| -> Result<Output> {
            self.run_pg(
                Command::new(self.bins.tool("psql"))
                    .args([
                        "-X", "-q", "-t", "-A", "-h", &host, "-p", &port, "-U", SUPERUSER, "-d",
                        "postgres", "-c",
                    ])
                    .arg(sql),
            )
        };
        let exists = psql(&format!(
            "SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DATABASE}'"
        ))?;
        if String::from_utf8_lossy(&exists.stdout).trim() == "1" {
            return Ok(());
        }
        let out = psql(&format!("CREATE DATABASE {EMBEDDED_DATABASE}"))?;
        if !out.status.success() {
            bail!(
                "creating database {EMBEDDED_DATABASE}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path())
            .unwrap_or_else(|e| format!("(cannot read the log: {e})"));
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn check_version(&self) -> Result<()> {
        let path = self.data_dir.join("PG_VERSION");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let data_major: u32 = text
            .trim()
            .parse()
            .with_context(|| format!("{} is not a version", path.display()))?;
        if data_major != self.bins.major {
            bail!(
                "the data directory {} was made by PostgreSQL {data_major}, but the binaries found are {} ({}).\n\
                 Use another --data-dir, set PG_BIN to PostgreSQL {data_major}'s bin directory, or remove the directory \
                 if it holds nothing you need.",
                self.data_dir.display(),
                self.bins.major,
                self.bins.bindir.display()
            );
        }
        Ok(())
    }

    /// Makes sure the data directory can hold a new cluster: absent, or empty, and reachable
    /// by the user the server runs as.
    fn prepare_data_dir(&self) -> Result<()> {
        let dir = &self.data_dir;
        if dir.exists() {
            if !dir.is_dir() {
                bail!(
                    "data directory {} exists and is not a directory",
                    dir.display()
                );
            }
            let mut entries = std::fs::read_dir(dir)
                .with_context(|| format!("reading data directory {}", dir.display()))?;
            if entries.next().is_some() {
                bail!(
                    "data directory {} is not empty and holds no PostgreSQL cluster (no PG_VERSION); \
                     storybench will not write into it. Choose another --data-dir.",
                    dir.display()
                );
            }
        } else {
            std::fs::create_dir_all(dir).with_context(|| {
                format!(
                    "creating data directory {} (choose another with --data-dir)",
                    dir.display()
                )
            })?;
        }
        if is_root() {
            self.chown_to_postgres(dir)?;
            let probe = Command::new("runuser")
                .args(["-u", "postgres", "--", "test", "-w"])
                .arg(dir)
                .status()
                .context("running runuser")?;
            if !probe.success() {
                bail!(
                    "running as root, the embedded server runs as the `postgres` OS user, which cannot reach {} \
                     (a parent directory is not searchable by it). Choose a --data-dir it can reach, e.g. under /tmp.",
                    dir.display()
                );
            }
        }
        set_mode(dir, 0o700)
    }

    fn chown_to_postgres(&self, path: &Path) -> Result<()> {
        chown_to_postgres(path)
    }

    /// Runs a PostgreSQL program, as `postgres` through `runuser` when we are root.
    fn run_pg(&self, cmd: &mut Command) -> Result<Output> {
        let program = cmd.get_program().to_owned();
        let mut actual = if is_root() {
            let mut wrapped = Command::new("runuser");
            wrapped
                .args(["-u", SUPERUSER, "--"])
                .arg(&program)
                .args(cmd.get_args());
            wrapped
        } else {
            let mut plain = Command::new(&program);
            plain.args(cmd.get_args());
            plain
        };
        // The server must not inherit our stdout: `db start` prints the URL as its last line.
        actual.stdin(std::process::Stdio::null());
        actual.current_dir("/");
        actual
            .output()
            .with_context(|| format!("running {}", Path::new(&program).display()))
    }
}

/// Hands a path to the `postgres` OS user when we are root (the server, and pgbouncer,
/// run as it and must own what they write).
pub fn chown_to_postgres(path: &Path) -> Result<()> {
    if !is_root() {
        return Ok(());
    }
    let user = owner::postgres_user()?;
    nix::unistd::chown(path, Some(user.uid), Some(user.gid))
        .with_context(|| format!("chown {} to postgres", path.display()))
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Ok(std::env::current_dir()
            .context("reading the current directory")?
            .join(path))
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting permissions of {}", path.display()))
}

pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free TCP port")?;
    Ok(listener.local_addr()?.port())
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Stops the embedded cluster at the end of a command if that command started it,
/// including when the command fails or is interrupted.
pub struct ClusterGuard {
    cluster: Option<EmbeddedCluster>,
}

impl ClusterGuard {
    pub fn new(cluster: EmbeddedCluster, started_here: bool) -> Self {
        Self {
            cluster: started_here.then_some(cluster),
        }
    }

    pub fn finish(mut self) -> Result<()> {
        match self.cluster.take() {
            Some(c) => c.stop(),
            None => Ok(()),
        }
    }
}

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        if let Some(c) = self.cluster.take() {
            if let Err(e) = c.stop() {
                eprintln!("storybench: could not stop the embedded cluster: {e:#}");
            }
        }
    }
}
