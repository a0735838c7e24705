//! Server settings profiles (`--settings doc|default|tuned`) and how the embedded cluster
//! takes one: a second storybench-owned file, `storybench_profile.conf`, included from the
//! end of `storybench.conf`, then a restart. `shared_buffers` and `max_connections` are
//! postmaster settings: the document's `ALTER DATABASE … SET` cannot change them, only the
//! server's configuration and a restart can (schema/README.md, deviations).

use super::{chown_to_postgres, EmbeddedCluster, CONF_FILE};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The profile file, removed again when the profile's measurement ends.
const PROFILE_FILE: &str = "storybench_profile.conf";
const INCLUDE_LINE: &str = "include_if_exists = 'storybench_profile.conf'";

/// The settings every profile sets (the document's four).
pub const NAMES: [&str; 4] = [
    "effective_cache_size",
    "max_connections",
    "shared_buffers",
    "work_mem",
];

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum, PartialOrd,
)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// The document's shared_buffers 256MB, effective_cache_size 1GB, work_mem 4MB,
    /// max_connections 200.
    Doc,
    /// PostgreSQL's own defaults.
    Default,
    /// Sized for the machine the server runs on (docs/settings.md gives the rule).
    Tuned,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Doc => "doc",
            Profile::Default => "default",
            Profile::Tuned => "tuned",
        }
    }

    /// The values this profile sets, in [`NAMES`] order (the machine matters for `tuned` only).
    pub fn values(self, machine: &Machine) -> Vec<(&'static str, String)> {
        let v: [String; 4] = match self {
            Profile::Doc => ["1GB".into(), "200".into(), "256MB".into(), "4MB".into()],
            // PostgreSQL 15's documented defaults (initdb picks shared_buffers 128MB where
            // the kernel allows; effective_cache_size 4GB, work_mem 4MB, 100 connections).
            Profile::Default => ["4GB".into(), "100".into(), "128MB".into(), "4MB".into()],
            Profile::Tuned => {
                let t = machine.tuned();
                [
                    mb(t.effective_cache_mb),
                    t.max_connections.to_string(),
                    mb(t.shared_buffers_mb),
                    mb(t.work_mem_mb),
                ]
            }
        };
        NAMES.iter().copied().zip(v).collect()
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn mb(n: u64) -> String {
    format!("{n}MB")
}

/// The machine the embedded server runs on (this one).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    pub cores: usize,
    pub ram_bytes: u64,
}

/// The `tuned` profile's figures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tuned {
    pub shared_buffers_mb: u64,
    pub effective_cache_mb: u64,
    pub work_mem_mb: u64,
    pub max_connections: u64,
}

impl Machine {
    /// Cores usable by this process (cgroup quota included) and RAM (MemTotal, or the
    /// cgroup's memory.max when lower).
    pub fn read() -> Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let meminfo = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
        let kb: u64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|r| r.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no MemTotal in /proc/meminfo")?;
        let mut ram_bytes = kb * 1024;
        if let Some(limit) = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
        {
            ram_bytes = ram_bytes.min(limit);
        }
        Ok(Self { cores, ram_bytes })
    }

    /// The rule (docs/settings.md): shared_buffers 25 % of RAM (128MB to 8GB),
    /// effective_cache_size 75 % of RAM, max_connections 25 per core (100 to 500),
    /// work_mem (RAM − shared_buffers) / (3 × max_connections) (4MB to 256MB).
    pub fn tuned(&self) -> Tuned {
        let ram_mb = self.ram_bytes / (1024 * 1024);
        let shared_buffers_mb = (ram_mb / 4).clamp(128, 8192);
        let max_connections = (self.cores as u64 * 25).clamp(100, 500);
        let work_mem_mb =
            (ram_mb.saturating_sub(shared_buffers_mb) / (3 * max_connections)).clamp(4, 256);
        Tuned {
            shared_buffers_mb,
            effective_cache_mb: (ram_mb * 3 / 4).max(128),
            work_mem_mb,
            max_connections,
        }
    }
}

impl EmbeddedCluster {
    /// Writes the profile file, includes it from storybench.conf and restarts the server.
    /// Returns storybench.conf as it was, for [`restore_profile`](Self::restore_profile).
    /// A server that does not start with the profile is restored before the error returns.
    fn apply_profile(&self, values: &[(&str, String)], label: &str) -> Result<String> {
        let conf = self.data_dir.join(CONF_FILE);
        let original = std::fs::read_to_string(&conf)
            .with_context(|| format!("reading {}", conf.display()))?;
        let profile = self.data_dir.join(PROFILE_FILE);
        if profile.exists() {
            bail!(
                "{} exists: another storybench is measuring a settings profile on this cluster, \
                 or one was killed mid-profile (remove the file and restart the server to go back \
                 to its own settings)",
                profile.display()
            );
        }
        let mut text = format!(
            "# Written by storybench for the settings profile {label}; removed when it ends.\n"
        );
        for (name, value) in values {
            text.push_str(&format!("{name} = '{}'\n", value.replace('\'', "''")));
        }
        std::fs::write(&profile, text).with_context(|| format!("writing {}", profile.display()))?;
        chown_to_postgres(&profile)?;
        let mut with_include = original.clone();
        if !with_include.ends_with('\n') {
            with_include.push('\n');
        }
        with_include.push_str(INCLUDE_LINE);
        with_include.push('\n');
        std::fs::write(&conf, with_include)
            .with_context(|| format!("writing {}", conf.display()))?;
        if let Err(e) = self.restart() {
            let undo = self.restore_profile(&original);
            return Err(e.context(format!(
                "the server did not start with the settings profile {label} (restored: {})",
                match undo {
                    Ok(()) => "yes".to_string(),
                    Err(u) => format!("no: {u:#}"),
                }
            )));
        }
        Ok(original)
    }

    /// Removes the profile file, puts storybench.conf back as it was and restarts.
    fn restore_profile(&self, original_conf: &str) -> Result<()> {
        let profile = self.data_dir.join(PROFILE_FILE);
        if profile.exists() {
            std::fs::remove_file(&profile)
                .with_context(|| format!("removing {}", profile.display()))?;
        }
        let conf = self.data_dir.join(CONF_FILE);
        std::fs::write(&conf, original_conf)
            .with_context(|| format!("writing {}", conf.display()))?;
        self.restart()
    }

    /// A fast restart (sessions are ended; the caller holds none it still needs).
    pub fn restart(&self) -> Result<()> {
        self.stop()?;
        self.start()
    }
}

/// Restores the embedded cluster if the profile's measurement ends without doing it (a
/// panic, an early return): the file is removed and the server restarted on drop.
pub struct ProfileGuard<'a> {
    cluster: &'a EmbeddedCluster,
    original_conf: Option<String>,
}

impl<'a> ProfileGuard<'a> {
    pub fn apply(
        cluster: &'a EmbeddedCluster,
        values: &[(&str, String)],
        label: &str,
    ) -> Result<Self> {
        let original = cluster.apply_profile(values, label)?;
        Ok(Self {
            cluster,
            original_conf: Some(original),
        })
    }

    pub fn restore(mut self) -> Result<()> {
        match self.original_conf.take() {
            Some(o) => self.cluster.restore_profile(&o),
            None => Ok(()),
        }
    }
}

impl Drop for ProfileGuard<'_> {
    fn drop(&mut self) {
        if let Some(o) = self.original_conf.take() {
            if let Err(e) = self.cluster.restore_profile(&o) {
                eprintln!("storybench: could not restore the server's own settings: {e:#}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuned_follows_the_rule() {
        let m = Machine {
            cores: 2,
            ram_bytes: 16 * 1024 * 1024 * 1024,
        };
        let t = m.tuned();
        assert_eq!(t.shared_buffers_mb, 4096);
        assert_eq!(t.effective_cache_mb, 12288);
        assert_eq!(t.max_connections, 100);
        assert_eq!(t.work_mem_mb, (16384 - 4096) / 300);
        let small = Machine {
            cores: 64,
            ram_bytes: 256 * 1024 * 1024,
        }
        .tuned();
        assert_eq!(small.shared_buffers_mb, 128);
        assert_eq!(small.work_mem_mb, 4);
        assert_eq!(small.max_connections, 500);
        assert_eq!(
            Profile::Doc.values(&m),
            vec![
                ("effective_cache_size", "1GB".to_string()),
                ("max_connections", "200".into()),
                ("shared_buffers", "256MB".into()),
                ("work_mem", "4MB".into())
            ]
        );
    }
}
