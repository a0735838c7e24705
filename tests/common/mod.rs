//! Test harness: one real embedded PostgreSQL cluster per test binary, started on first use
//! in a private temp directory and stopped (and removed) when the binary exits; a fresh
//! database per test.

#![allow(dead_code)]

mod child;
#[allow(unused_imports)]
pub use child::Watched;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use storybench::cluster::EmbeddedCluster;

struct Shared {
    cluster: EmbeddedCluster,
    root: PathBuf,
}

static SHARED: OnceLock<Shared> = OnceLock::new();
static STOPPED: Mutex<bool> = Mutex::new(false);
static COUNTER: AtomicU32 = AtomicU32::new(0);
/// Temp directories made by this test binary, removed when it exits.
static TEMP_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

extern "C" fn stop_at_exit() {
    let mut stopped = STOPPED.lock().unwrap_or_else(|e| e.into_inner());
    if *stopped {
        return;
    }
    *stopped = true;
    if let Some(s) = SHARED.get() {
        let _ = s.cluster.stop();
        let _ = std::fs::remove_dir_all(&s.root);
    }
    for dir in TEMP_DIRS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A private directory the `postgres` OS user can reach when tests run as root.
pub fn temp_root(tag: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!(
        "storybench-test-{tag}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&root).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    TEMP_DIRS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(root.clone());
    unsafe {
        // Idempotent: the handler runs once (guarded by STOPPED) however often it is registered.
        nix::libc::atexit(stop_at_exit);
    }
    root
}

fn shared() -> &'static Shared {
    SHARED.get_or_init(|| {
        let root = temp_root("cluster");
        let cluster = EmbeddedCluster::new(&root.join("pgdata"), None)
            .expect("PostgreSQL binaries for the tests");
        cluster.ensure_running().expect("start the test cluster");
        require_password_for(&cluster, PASSWORD_ROLE);
        unsafe {
            nix::libc::atexit(stop_at_exit);
        }
        Shared { cluster, root }
    })
}

/// The one role the test cluster authenticates by password (scram-sha-256, on the unix
/// socket and TCP); every other role stays `trust`. Tests create it with a password.
pub const PASSWORD_ROLE: &str = "storybench_pw";

/// Puts password lines for `role` at the top of pg_hba.conf (first match wins) and reloads.
fn require_password_for(cluster: &EmbeddedCluster, role: &str) {
    let hba = cluster.data_dir.join("pg_hba.conf");
    let old = std::fs::read_to_string(&hba).unwrap();
    let lines = format!(
        "local all {role} scram-sha-256\nhost all {role} 127.0.0.1/32 scram-sha-256\nhost all {role} ::1/128 scram-sha-256\n"
    );
    // Rewriting in place keeps the file's owner (postgres when the tests run as root).
    std::fs::write(&hba, format!("{lines}{old}")).unwrap();
    let out = Command::new(cluster.bins.tool("psql"))
        .args(["-X", "-q", "-t", "-A", "-c", "SELECT pg_reload_conf()"])
        .arg(cluster.url().unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "reloading pg_hba.conf: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The shared test cluster's URL for the database `name`.
pub fn url_for(name: &str) -> String {
    let mut url = url::Url::parse(&shared().cluster.url().unwrap()).unwrap();
    url.set_path(name);
    url.to_string()
}

/// A fresh, empty database on the shared cluster.
/// Drops a database of the test cluster (a copy a test kept with `--keep-copies`).
pub async fn drop_database(name: &str) {
    let mut admin = connect(&url_for("postgres")).await;
    admin
        .execute(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .await
        .unwrap();
}

pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn new(tag: &str) -> Self {
        let name = format!("t_{tag}_{}", COUNTER.fetch_add(1, Ordering::SeqCst));
        let mut admin = connect(&url_for("postgres")).await;
        admin
            .execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
            .await
            .unwrap();
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap();
        Self {
            url: url_for(&name),
            name,
        }
    }

    pub async fn conn(&self) -> PgConnection {
        connect(&self.url).await
    }

    /// Runs the storybench binary against this database.
    pub fn storybench(&self, args: &[&str]) -> Output {
        storybench_cmd()
            .arg("--database-url")
            .arg(&self.url)
            .args(args)
            .output()
            .unwrap()
    }

    /// pg_dump of the whole database (schema and data), to prove a command changed nothing.
    pub fn dump(&self) -> String {
        let bins = &shared().cluster.bins;
        let out = Command::new(bins.tool("pg_dump"))
            .arg("--no-comments")
            .arg(&self.url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // pg_dump wraps its output in \restrict lines with a random key: not content.
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

pub async fn connect(url: &str) -> PgConnection {
    PgConnectOptions::from_str(url)
        .unwrap()
        .log_statements(tracing_off())
        .connect()
        .await
        .unwrap()
}

fn tracing_off() -> tracing::log::LevelFilter {
    tracing::log::LevelFilter::Off
}

/// The storybench binary with the project directory as working directory.
pub fn storybench_cmd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_storybench"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1");
    cmd
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The path of a fixture file: tests/fixtures/<name>.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The 20 ms pg_sleep scenario (tests/fixtures/sleep/, its catalog beside it): what two
/// users serve is bounded from below whatever the machine.
pub fn sleep_scenario() -> String {
    fixture("sleep/sleep.toml").display().to_string()
}

/// Runs a fixture SQL file (tests/fixtures/<name>) in one transaction.
pub async fn run_fixture(conn: &mut PgConnection, name: &str) {
    let path = fixture(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut tx = conn.begin().await.unwrap();
    tx.execute(sqlx::raw_sql(AssertSqlSafe(text)))
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    tx.commit().await.unwrap();
}

/// The date every seeded test pins (`--anchor`), so test data never depends on today.
pub const ANCHOR: &str = "2026-11-20";

/// Seeds the tiny profile at [`ANCHOR`] into `db`, results under `out`; asserts it worked.
pub fn seed_tiny(db: &TestDb, out: &std::path::Path) {
    let out = db.storybench(&[
        "seed",
        "--profile",
        "tiny",
        "--anchor",
        ANCHOR,
        "--out",
        &out.to_string_lossy(),
    ]);
    assert!(out.status.success(), "seed: {}", stderr(&out));
}

/// Polls the server at `url` until at least `n` of storybench's sessions run a statement
/// containing `text` (a load is really running), instead of sleeping and hoping.
pub async fn wait_for_sessions(url: &str, text: &str, n: i64) {
    let started = std::time::Instant::now();
    loop {
        if let Ok(mut c) = PgConnectOptions::from_str(url).unwrap().connect().await {
            let running: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'storybench' AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
            )
            .bind(text)
            .fetch_one(&mut c)
            .await
            .unwrap_or(0);
            if running >= n {
                return;
            }
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "no {n} sessions running {text:?} within 60 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// pgbouncer directories storybench left in front of the server on `port` (should be none:
/// a pooled command stops its pgbouncer and removes its directory).
pub fn pgbouncers_left_for(port: u16) -> usize {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("storybench-pgbouncer-")
        })
        .filter(|e| {
            std::fs::read_to_string(e.path().join("pgbouncer.ini"))
                .is_ok_and(|t| t.contains(&format!("port={port}\n")))
        })
        .count()
}
