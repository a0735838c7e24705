//! pgbouncer (the Debian package, 1.18) started by storybench in front of the server, on a
//! free loopback port, with a `*` entry so it serves whichever database the load runs on
//! (a pristine copy). It runs from a private directory named after storybench's pid; a
//! directory left by a storybench that died is swept (its pgbouncer stopped) by the next one.

use super::PoolMode;
use crate::cluster::{chown_to_postgres, free_port, is_root};
use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sqlx::postgres::PgConnectOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DIR_PREFIX: &str = "storybench-pgbouncer-";

/// A running pgbouncer; stopped, and its directory removed, when dropped.
pub struct Pgbouncer {
    child: Child,
    dir: PathBuf,
    pub port: u16,
    pub version: String,
}

/// Finds the pgbouncer binary, or says how to install it.
fn binary() -> Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join("pgbouncer"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow!("--pooler pgbouncer:… needs pgbouncer, which is not installed (apt-get install pgbouncer)")
        })
}

fn version(bin: &Path) -> Result<String> {
    let out = Command::new(bin)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?")
        .to_string())
}

/// A value of pgbouncer's connection strings, quoted when it has to be.
fn quoted(value: &str) -> String {
    if value
        .chars()
        .any(|c| c.is_whitespace() || c == '\'' || c == '\\')
    {
        format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
    } else {
        value.to_string()
    }
}

impl Pgbouncer {
    /// Starts pgbouncer in front of the server `server` points at, with `pool_size` server
    /// connections per database and user, and waits until it accepts connections.
    pub fn start(
        server: &PgConnectOptions,
        password: &str,
        mode: PoolMode,
        pool_size: u32,
        wait_timeout: Duration,
    ) -> Result<Self> {
        sweep_stale();
        let bin = binary()?;
        let version = version(&bin)?;
        let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        let port = free_port()?;
        let user = server.get_username().to_string();
        let userlist = dir.join("userlist.txt");
        // Loopback clients are trusted; the file gives pgbouncer the user (and its password, if
        // the server asks for one: pgbouncer cannot read it from the client under trust).
        std::fs::write(
            &userlist,
            format!(
                "\"{}\" \"{}\"\n",
                user.replace('"', "\"\""),
                password.replace('"', "\"\"")
            ),
        )?;
        std::fs::set_permissions(&userlist, std::fs::Permissions::from_mode(0o600))?;
        let ini = dir.join("pgbouncer.ini");
        let host = server.get_host().to_string();
        let text = format!(
            "; written by storybench for one load; removed when it ends\n\
             [databases]\n\
             * = host={host} port={server_port}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {userlist}\n\
             admin_users = {user}\n\
             pool_mode = {mode}\n\
             default_pool_size = {pool_size}\n\
             max_db_connections = {pool_size}\n\
             max_client_conn = 4000\n\
             query_wait_timeout = {wait}\n\
             ignore_startup_parameters = extra_float_digits\n\
             stats_period = 1\n\
             logfile = {log}\n\
             pidfile = {pid}\n{setuid}",
            host = quoted(&host),
            server_port = server.get_port(),
            userlist = userlist.display(),
            user = quoted(&user),
            mode = mode.as_str(),
            wait = wait_timeout.as_secs().max(1),
            log = dir.join("pgbouncer.log").display(),
            pid = dir.join("pgbouncer.pid").display(),
            // pgbouncer refuses to run as root; it switches to `postgres` after reading its files.
            setuid = if is_root() { "user = postgres\n" } else { "" },
        );
        std::fs::write(&ini, text)?;
        for f in [&dir, &userlist, &ini] {
            chown_to_postgres(f)?;
        }
        let stderr = std::fs::File::create(dir.join("stderr.log"))?;
        let child = Command::new(&bin)
            .arg(&ini)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut me = Self {
            child,
            dir,
            port,
            version,
        };
        me.wait_ready()?;
        tracing::info!(port, mode = mode.as_str(), pool_size, "pgbouncer started");
        Ok(me)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("pgbouncer exited at start ({status}):\n{}", self.log_tail());
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "pgbouncer did not accept connections within 10 s:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self) -> String {
        let mut text = String::new();
        for f in ["stderr.log", "pgbouncer.log"] {
            if let Ok(t) = std::fs::read_to_string(self.dir.join(f)) {
                let lines: Vec<&str> = t.lines().collect();
                text.push_str(&lines[lines.len().saturating_sub(10)..].join("\n"));
            }
        }
        text
    }

    /// Options for a client of this pgbouncer, as the server's user.
    pub fn client_options(&self, server: &PgConnectOptions) -> PgConnectOptions {
        PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port)
            .username(server.get_username())
            .application_name("storybench")
    }
}

impl Drop for Pgbouncer {
    fn drop(&mut self) {
        stop(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// SIGTERM (pgbouncer's immediate shutdown), then SIGKILL if it lingers.
fn stop(child: &mut Child) {
    let pid = Pid::from_raw(child.id() as i32);
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Stops the pgbouncer of a storybench that died (SIGKILL) and removes its directory.
fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(owner) = name
            .strip_prefix(DIR_PREFIX)
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if owner == std::process::id() as i32 || kill(Pid::from_raw(owner), None).is_ok() {
            continue;
        }
        if let Some(pid) = std::fs::read_to_string(e.path().join("pgbouncer.pid"))
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
        {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        crate::say!("  pooler: stopped the pgbouncer of storybench process {owner}, which is gone");
        let _ = std::fs::remove_dir_all(e.path());
    }
}
