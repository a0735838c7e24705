//! Locating the locally installed PostgreSQL server binaries. storybench never downloads them.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The PostgreSQL programs storybench drives, all from one installation.
#[derive(Debug, Clone)]
pub struct PgBinaries {
    pub bindir: PathBuf,
    /// Major version reported by `postgres --version` (e.g. 15).
    pub major: u32,
    pub version: String,
}

impl PgBinaries {
    pub fn tool(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }

    /// Whether this installation has the server library `name` (an extension's `.so`, found
    /// beside the binaries as Debian installs them), so it can be preloaded.
    pub fn has_library(&self, name: &str) -> bool {
        self.bindir
            .parent()
            .is_some_and(|root| root.join("lib").join(format!("{name}.so")).is_file())
    }

    /// Finds the binaries: `PG_BIN`, else `pg_config --bindir`, else the newest
    /// `/usr/lib/postgresql/*/bin`, else `PATH`.
    pub fn locate() -> Result<Self> {
        let bindir = Self::candidate_dirs()
            .into_iter()
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file());
        let Some(bindir) = bindir else {
            bail!(
                "no PostgreSQL server binaries found (looked at $PG_BIN, `pg_config --bindir`, \
                 /usr/lib/postgresql/*/bin and $PATH for initdb and pg_ctl).\n\
                 Install them, e.g. `apt-get install postgresql` on Debian/Ubuntu, or set PG_BIN \
                 to the directory holding initdb, or pass --database-url to use an existing server."
            );
        };
        let out = Command::new(bindir.join("postgres"))
            .arg("--version")
            .output()
            .with_context(|| format!("running {}/postgres --version", bindir.display()))?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let major = parse_major(&version)
            .with_context(|| format!("cannot read the PostgreSQL version from {version:?}"))?;
        Ok(Self {
            bindir,
            major,
            version,
        })
    }

    fn candidate_dirs() -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Some(dir) = std::env::var_os("PG_BIN") {
            // An explicit PG_BIN is the only candidate: silently falling back would surprise.
            return vec![PathBuf::from(dir)];
        }
        if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
            if out.status.success() {
                dirs.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
            }
        }
        dirs.extend(newest_debian_bindirs(Path::new("/usr/lib/postgresql")));
        if let Some(path) = std::env::var_os("PATH") {
            dirs.extend(std::env::split_paths(&path));
        }
        dirs
    }
}

/// `/usr/lib/postgresql/<major>/bin`, newest major first.
fn newest_debian_bindirs(root: &Path) -> Vec<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, e.path().join("bin")))
        })
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found.into_iter().map(|(_, p)| p).collect()
}

/// "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" → 15
pub fn parse_major(version: &str) -> Option<u32> {
    let number = version
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))?;
    let digits: String = number.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_major;

    #[test]
    fn parses_major_versions() {
        assert_eq!(
            parse_major("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"),
            Some(15)
        );
        assert_eq!(parse_major("postgres (PostgreSQL) 17beta1"), Some(17));
        assert_eq!(parse_major("garbage"), None);
    }
}
