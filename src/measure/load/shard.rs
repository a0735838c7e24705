//! Sharded load generation: N storybench processes (pods, machines) each run part of one
//! open-model load against one database, starting together at a shared wall-clock time, and
//! `storybench merge` adds their results up exactly (HDR histograms are added, never
//! percentiles averaged). Shard I of N takes rate/N of the arrivals, its share of the users
//! and a disjoint, deterministic part of the seeded app users (every N-th by activity, so
//! each shard's mix matches the whole).

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `I/N`: shard I (0-based, as Kubernetes' JOB_COMPLETION_INDEX) of N.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not I/N (e.g. 0/3)"))?;
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: I is not a number"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: N is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!(
                "{text:?}: need 0 ≤ I < N (shards are numbered from 0)"
            ));
        }
        Ok(Self { index, count })
    }

    /// This shard's part of a total rate.
    pub fn rate(&self, total: f64) -> f64 {
        total / self.count as f64
    }

    /// This shard's part of `total` users: as even as integers allow, the first shards
    /// taking the remainder, so the parts add up to the total.
    pub fn users(&self, total: usize) -> usize {
        let (n, i) = (self.count as usize, self.index as usize);
        total / n + usize::from(i < total % n)
    }

    /// The arrival stream's seed: each shard draws its own, reproducibly.
    pub fn seed(&self, seed: u64) -> u64 {
        seed ^ (0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(self.index as u64 + 1))
    }
}

/// `--start-at`: Unix seconds (fractions allowed) or RFC 3339.
pub fn parse_start_at(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(secs) = text.trim().parse::<f64>() {
        let whole = secs.floor();
        return DateTime::from_timestamp(whole as i64, ((secs - whole) * 1e9) as u32)
            .ok_or_else(|| format!("{text:?} is not a time"));
    }
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{text:?} is neither Unix seconds nor RFC 3339: {e}"))
}

/// What a shard's results record of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub index: u32,
    pub count: u32,
    /// The shared start (`--start-at`).
    pub start_at: DateTime<Utc>,
    /// When this shard's measurement actually began (after its users started and the
    /// warm-up): the timelines are aligned on these, and their spread is the clock skew.
    pub measure_started_at: DateTime<Utc>,
    /// The shared copy of the dataset the shards ran on.
    pub copy: String,
}

/// The name of the pristine copy all shards of one load run on: the same in every shard
/// (from the shared start and the options), different for another sharded load.
pub fn copy_name(start_at: &DateTime<Utc>, config: &serde_json::Value) -> String {
    let text = format!("{}|{config}", start_at.timestamp_millis());
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("sbcopy_shard_{h:016x}")
}

/// Checks the shared start and says when the users begin: they connect and read their
/// rows now, and begin at `start_at` (at once when it has passed).
pub fn announce_start(start_at: DateTime<Utc>) -> Result<()> {
    match (start_at - Utc::now()).to_std() {
        Ok(wait) if wait > std::time::Duration::from_secs(24 * 3600) => {
            bail!("--start-at {start_at} is more than a day away")
        }
        Ok(wait) => crate::say!(
            "  shard: users connect now and begin at the shared start {start_at} (in {:.1} s)",
            wait.as_secs_f64()
        ),
        Err(_) => crate::say!(
            "  shard: the shared start {start_at} has passed: beginning at once (merge refuses shards further apart than --max-skew)"
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_the_load_exactly() {
        assert!(Shard::parse("3/3").is_err());
        assert!(Shard::parse("x").is_err());
        let shards: Vec<Shard> = (0..3)
            .map(|i| Shard::parse(&format!("{i}/3")).unwrap())
            .collect();
        assert_eq!(shards.iter().map(|s| s.users(16)).sum::<usize>(), 16);
        assert_eq!(shards[0].users(16), 6);
        assert!((shards.iter().map(|s| s.rate(90.0)).sum::<f64>() - 90.0).abs() < 1e-9);
        assert_ne!(shards[0].seed(42), shards[1].seed(42));
        let t = parse_start_at("1764633600.5").unwrap();
        assert_eq!(t, parse_start_at("2025-12-02T00:00:00.5Z").unwrap());
        let cfg = serde_json::json!({"rate": 90});
        assert_eq!(copy_name(&t, &cfg), copy_name(&t, &cfg));
        assert!(copy_name(&t, &cfg).len() <= 63);
    }
}
