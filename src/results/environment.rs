//! The environment a run measured: server version and settings, machine, storybench build.

use crate::internal_sql::{q, sql};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;
use std::collections::BTreeMap;

/// Server settings that change what a benchmark measures.
const KEY_SETTINGS: &[&str] = &[
    "shared_buffers",
    "effective_cache_size",
    "work_mem",
    "maintenance_work_mem",
    "max_connections",
    "max_wal_size",
    "synchronous_commit",
    "fsync",
    "full_page_writes",
    "wal_level",
    "jit",
    "random_page_cost",
    "effective_io_concurrency",
    "max_parallel_workers_per_gather",
    "default_toast_compression",
    "track_io_timing",
    "shared_preload_libraries",
    "huge_pages",
    "plan_cache_mode",
    "enable_partitionwise_aggregate",
];

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Environment {
    pub postgres_version: String,
    pub postgres_version_num: i32,
    /// Whether the server's major is one storybench was tested with (`tested_majors`);
    /// absent in results written before this was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres_major_tested: Option<bool>,
    #[serde(default)]
    pub tested_majors: Vec<u32>,
    pub settings: BTreeMap<String, String>,
    /// "embedded" or "external".
    pub server: String,
    /// Redacted URL (never the password).
    pub database_url: String,
    pub cores: usize,
    pub memory_bytes: u64,
    pub os: String,
    pub hostname: String,
    pub storybench_version: String,
    pub git_revision: Option<String>,
}

impl Environment {
    pub async fn collect(
        conn: &mut PgConnection,
        server: &str,
        redacted_url: &str,
    ) -> Result<Self> {
        let (version, num): (String, i32) = sqlx::query_as(sql(&q().server_version))
            .fetch_one(&mut *conn)
            .await?;
        let names: Vec<String> = KEY_SETTINGS.iter().map(|s| s.to_string()).collect();
        let rows: Vec<(String, String)> = sqlx::query_as(sql(&q().server_settings))
            .bind(&names)
            .fetch_all(&mut *conn)
            .await?;
        let uts = nix::sys::utsname::uname().ok();
        Ok(Self {
            postgres_version: version,
            postgres_version_num: num,
            postgres_major_tested: Some(crate::pg_version::is_tested(crate::pg_version::major_of(
                num,
            ))),
            tested_majors: crate::pg_version::TESTED_MAJORS.to_vec(),
            settings: rows.into_iter().collect(),
            server: server.to_string(),
            database_url: redacted_url.to_string(),
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            memory_bytes: total_memory(),
            os: uts
                .as_ref()
                .map(|u| {
                    format!(
                        "{} {} {}",
                        u.sysname().to_string_lossy(),
                        u.release().to_string_lossy(),
                        u.machine().to_string_lossy()
                    )
                })
                .unwrap_or_default(),
            hostname: uts
                .map(|u| u.nodename().to_string_lossy().to_string())
                .unwrap_or_default(),
            storybench_version: env!("CARGO_PKG_VERSION").to_string(),
            git_revision: git_revision(),
        })
    }
}

fn total_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn git_revision() -> Option<String> {
    let out = std::process::Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short=12",
            "HEAD",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
