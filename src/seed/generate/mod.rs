//! The data generator: every table's rows for a chunk of users, in binary COPY format.
//!
//! Determinism: every user draws from its own ChaCha8 streams, seeded from a hash of
//! (seed, user index, stream), so a chunk's bytes depend only on the inputs, never on
//! which thread builds it or how chunks are scheduled; `users_per_chunk` is fixed by
//! the profile. Times are microseconds since 2000-01-01 UTC, relative to the anchor.

mod heroes;
mod json;
mod moderation;
mod scenes;
mod stories;
mod text;
mod usage;
mod users;

#[cfg(test)]
mod tests;

use super::copy_binary::{CopyWriter, PG_EPOCH_UNIX_MICROS};
use super::profile::{Profile, FUNCTIONS, LANGUAGES};
use anyhow::{bail, Result};
use rand::{RngExt, SeedableRng};
use std::collections::HashMap;
use uuid::Uuid;

pub(crate) type Rng8 = rand_chacha::ChaCha8Rng;

pub(crate) const SECOND: i64 = 1_000_000;
pub(crate) const MINUTE: i64 = 60 * SECOND;
pub(crate) const HOUR: i64 = 60 * MINUTE;
pub(crate) const DAY: i64 = 24 * HOUR;
/// Nothing a user does is later than this before the anchor, so that the API calls
/// that follow a story (audio, scenes, images) still land before it.
pub(crate) const QUIET_BEFORE_ANCHOR: i64 = 10 * MINUTE;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Users,
    Heroes,
    CustomEvents,
    Stories,
    StoryScenes,
    StoryIllustrations,
    HeroGallery,
    PlayEvents,
    ApiUsage,
    RateLimits,
    CacheEntries,
    ContentFlags,
    AuditLog,
}

impl Table {
    pub const ALL: [Table; 13] = [
        Table::Users,
        Table::Heroes,
        Table::CustomEvents,
        Table::Stories,
        Table::StoryScenes,
        Table::StoryIllustrations,
        Table::HeroGallery,
        Table::PlayEvents,
        Table::ApiUsage,
        Table::RateLimits,
        Table::CacheEntries,
        Table::ContentFlags,
        Table::AuditLog,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Table::Users => "auth.users",
            Table::Heroes => "public.heroes",
            Table::CustomEvents => "public.custom_events",
            Table::Stories => "public.stories",
            Table::StoryScenes => "public.story_scenes",
            Table::StoryIllustrations => "public.story_illustrations",
            Table::HeroGallery => "public.hero_gallery",
            Table::PlayEvents => "public.play_events",
            Table::ApiUsage => "public.api_usage",
            Table::RateLimits => "public.rate_limits",
            Table::CacheEntries => "public.cache_entries",
            Table::ContentFlags => "public.content_flags",
            Table::AuditLog => "public.audit_log",
        }
    }
}

/// The COPY statement (from `seed/copy.toml`) whose column order the generator writes.
pub fn copy_statement(table: Table) -> &'static str {
    copy_file()
        .copy
        .get(table.name())
        .unwrap_or_else(|| panic!("seed/copy.toml has no statement for {}", table.name()))
}

/// `seed/copy.toml`: one COPY statement per table, keyed by the table's name.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CopyFile {
    copy: HashMap<String, String>,
}

crate::sql_file!(fn copy_file() -> CopyFile = "seed/copy.toml");

/// Every table has its COPY statement, and the file names no other table.
#[cfg(test)]
pub(crate) fn load_all() {
    for t in Table::ALL {
        let _ = copy_statement(t);
    }
    assert_eq!(
        copy_file().copy.len(),
        Table::ALL.len(),
        "seed/copy.toml names other tables"
    );
}

/// Complete COPY payloads (header + rows + trailer) for every table, for one chunk.
pub struct ChunkData {
    pub tables: Vec<TableData>,
}

impl ChunkData {
    /// The memory its payloads hold (buffer capacities, not lengths).
    pub fn bytes(&self) -> u64 {
        self.tables.iter().map(|t| t.copy.capacity() as u64).sum()
    }
}

pub struct TableData {
    pub table: Table,
    pub rows: u64,
    pub copy: Vec<u8>,
    /// The payload's share of the streamed fingerprint, hashed on the generator's thread.
    pub sum: crate::seed::fingerprint::TableSum,
}

/// The id of the user with this global index: computable without generating anything
/// (moderators are users 0..staff).
pub fn user_id(seed: u64, index: u64) -> Uuid {
    let a = mix(mix(seed ^ 0x5553_4552_5f49_4400) ^ index);
    let b = mix(a ^ 0xa076_1d64_78bd_642f);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_le_bytes());
    bytes[8..].copy_from_slice(&b.to_le_bytes());
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// splitmix64's finaliser: a well-mixed 64-bit hash step.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Independent random streams of one user.
#[derive(Clone, Copy)]
pub(crate) enum Stream {
    Plan = 1,
    User,
    Heroes,
    Events,
    Stories,
    Scenes,
    Plays,
    Api,
    Flags,
    Cache,
    Monitor,
    AvatarApi,
    /// Keyed by block of users, not by user: the activity strata.
    Strata,
}

pub(crate) fn stream_rng(seed: u64, user: u64, stream: Stream) -> Rng8 {
    let base = mix(mix(mix(seed) ^ user) ^ (stream as u64).wrapping_mul(0xd6e8_feb8_6659_fd93));
    let mut key = [0u8; 32];
    for (i, part) in key.chunks_exact_mut(8).enumerate() {
        part.copy_from_slice(&mix(base ^ i as u64).to_le_bytes());
    }
    Rng8::from_seed(key)
}

pub(crate) fn random_uuid(rng: &mut Rng8) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

pub(crate) fn pick<'a, T>(rng: &mut Rng8, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

pub(crate) fn pick_str<'a, S: AsRef<str>>(rng: &mut Rng8, items: &'a [S]) -> &'a str {
    pick(rng, items).as_ref()
}

/// A discrete distribution from weights (cumulative table + binary search).
#[derive(Debug, Clone)]
pub(crate) struct Weighted(Vec<f64>);

impl Weighted {
    pub fn new(weights: impl IntoIterator<Item = f64>) -> Self {
        let mut sum = 0.0;
        Weighted(
            weights
                .into_iter()
                .map(|w| {
                    sum += w;
                    sum
                })
                .collect(),
        )
    }

    pub fn sample(&self, rng: &mut Rng8) -> usize {
        let x = rng.random::<f64>() * self.0.last().copied().unwrap_or(0.0);
        self.0.partition_point(|c| *c <= x).min(self.0.len() - 1)
    }
}

/// Log-normal response time per backend function.
#[derive(Debug, Clone)]
pub(crate) struct FunctionModel {
    pub name: &'static str,
    pub mu: f64,
    pub sigma: f64,
    pub nano_usd_per_token: u64,
}

pub struct Generator {
    pub(crate) p: Profile,
    seed: u64,
    total_users: u64,
    pub(crate) texts: text::Texts,
    /// The anchor and the start of the history window, in PostgreSQL microseconds.
    pub(crate) anchor: i64,
    pub(crate) start: i64,
    pub(crate) hours: Weighted,
    pub(crate) languages: Weighted,
    pub(crate) hero_counts: Weighted,
    pub(crate) gallery_counts: Weighted,
    pub(crate) ill_status: Weighted,
    pub(crate) ill_status_recent: Weighted,
    pub(crate) severity: Weighted,
    pub(crate) story_mu: f64,
    pub(crate) functions: Vec<FunctionModel>,
}

/// Illustration statuses in the order of the weights.
pub(crate) const ILL_STATUSES: [&str; 5] =
    ["pending", "processing", "completed", "failed", "retrying"];
pub(crate) const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

impl Generator {
    pub fn new(
        profile: &Profile,
        scale: f64,
        seed: u64,
        anchor: chrono::NaiveDate,
    ) -> Result<Self> {
        if !scale.is_finite() || scale <= 0.0 {
            bail!("scale must be a number > 0; got {scale}");
        }
        profile.validate()?;
        let p = profile.clone();
        let texts = text::Texts::load()?;
        let to_pg = |d: chrono::NaiveDate| {
            d.and_hms_opt(0, 0, 0)
                .expect("midnight")
                .and_utc()
                .timestamp_micros()
                - PG_EPOCH_UNIX_MICROS
        };
        let Some(start_date) = anchor.checked_sub_months(chrono::Months::new(p.history_months))
        else {
            bail!("anchor {anchor} is too early");
        };
        let total_users = ((scale * p.users_per_unit).round() as u64).max(10);
        let keyed = |w: &std::collections::BTreeMap<String, f64>, keys: &[&str]| {
            Weighted::new(keys.iter().map(|k| w.get(*k).copied().unwrap_or(0.0)))
        };
        let functions = FUNCTIONS
            .iter()
            .map(|name| {
                let f = &p.api_usage.functions[*name];
                FunctionModel {
                    name,
                    mu: f.median_ms.ln(),
                    sigma: f.sigma,
                    nano_usd_per_token: f.nano_usd_per_token,
                }
            })
            .collect();
        Ok(Generator {
            seed,
            total_users,
            texts,
            anchor: to_pg(anchor),
            start: to_pg(start_date),
            hours: Weighted::new(p.time.hour_weights.iter().copied()),
            languages: keyed(&p.users.language_weights, &LANGUAGES),
            hero_counts: Weighted::new(p.heroes.count_weights.iter().copied()),
            gallery_counts: Weighted::new(p.heroes.gallery_weights.iter().copied()),
            ill_status: keyed(&p.illustrations.status_weights, &ILL_STATUSES),
            ill_status_recent: keyed(&p.illustrations.recent_status_weights, &ILL_STATUSES),
            severity: keyed(&p.content_flags.severity_weights, &SEVERITIES),
            story_mu: p.stories.mean_per_user.ln() - p.stories.sigma * p.stories.sigma / 2.0,
            functions,
            p,
        })
    }

    pub fn total_users(&self) -> u64 {
        self.total_users
    }

    pub fn chunk_count(&self) -> usize {
        self.total_users.div_ceil(self.p.users_per_chunk) as usize
    }

    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }

    /// Every table's rows for users `[i·users_per_chunk, …)`.
    pub fn chunk(&self, i: usize) -> ChunkData {
        let first = i as u64 * self.p.users_per_chunk;
        let last = (first + self.p.users_per_chunk).min(self.total_users);
        let mut out = Out::new();
        let mut scratch = Scratch::default();
        if first == 0 {
            usage::monitor(self, &mut out);
        }
        for index in first..last {
            self.user(index, &mut out, &mut scratch);
        }
        out.finish()
    }

    /// Generates one user and everything they own.
    fn user(&self, index: u64, out: &mut Out, scratch: &mut Scratch) {
        let mut u = users::plan(self, index);
        heroes::write(self, &mut u, out);
        let mut events = heroes::plan_events(self, &u);
        stories::write(self, &mut u, &mut events, out, scratch);
        heroes::write_events(self, &u, &events, out);
        users::write(self, &u, out, scratch);
        usage::rate_limits(self, &mut u, out);
        usage::cache(self, &u, out, scratch);
    }

    /// Expected rows and bytes per table at this scale. Exact for small scales (≤ 400
    /// users: everything is generated); otherwise a few hundred users spread evenly over
    /// the index range are generated and scaled up.
    pub fn estimate(&self) -> Vec<(Table, u64, u64)> {
        const SAMPLE: u64 = 400;
        let n = self.total_users;
        let step = if n <= SAMPLE { 1 } else { n / SAMPLE };
        let mut scratch = Scratch::default();
        // Counted user by user and dropped: the sample's data (~100 MB of the default
        // profile) would otherwise be the seeder's largest allocation.
        let (mut rows, mut bytes) = (vec![0u64; Table::ALL.len()], vec![0u64; Table::ALL.len()]);
        let mut sampled = 0u64;
        let mut index = 0;
        while index < n && sampled < SAMPLE {
            let mut out = Out::new();
            self.user(index, &mut out, &mut scratch);
            for (k, w) in out.w.iter().enumerate() {
                rows[k] += w.rows();
                bytes[k] += w.payload_len() as u64;
            }
            sampled += 1;
            index += step;
        }
        let factor = n as f64 / sampled as f64;
        let mut monitor = Out::new();
        usage::monitor(self, &mut monitor);
        Table::ALL
            .iter()
            .map(|&t| {
                let (k, m) = (t as usize, &monitor.w[t as usize]);
                let rows = (rows[k] as f64 * factor).round() as u64 + m.rows();
                let bytes = (bytes[k] as f64 * factor).round() as u64 + m.len() as u64;
                (t, rows, bytes)
            })
            .collect()
    }

    /// A time in `[lo, hi)` with the day uniform and the hour from the bedtime-peaked
    /// hour-of-day weights; falls back to uniform when the range is narrow.
    pub(crate) fn evening_time(&self, rng: &mut Rng8, lo: i64, hi: i64) -> i64 {
        if hi <= lo + 1 {
            return lo;
        }
        let (d0, d1) = (lo.div_euclid(DAY), (hi - 1).div_euclid(DAY));
        for _ in 0..8 {
            let day = rng.random_range(d0..=d1);
            let t = day * DAY + self.hours.sample(rng) as i64 * HOUR + rng.random_range(0..HOUR);
            if t >= lo && t < hi {
                return t;
            }
        }
        rng.random_range(lo..hi)
    }

    /// Log-normal response time of function `f`, in ms (capped at the 150 s edge timeout).
    pub(crate) fn response_ms(&self, rng: &mut Rng8, f: usize) -> i64 {
        let m = &self.functions[f];
        let z: f64 = rng.sample(rand_distr::StandardNormal);
        ((m.mu + m.sigma * z).exp().round() as i64).clamp(5, 150_000)
    }
}

/// Per-table COPY writers of a chunk.
pub(crate) struct Out {
    pub w: Vec<CopyWriter>,
}

impl Out {
    fn new() -> Self {
        Out {
            w: Table::ALL
                .iter()
                .map(|_| CopyWriter::with_capacity(1 << 16))
                .collect(),
        }
    }

    pub fn t(&mut self, table: Table) -> &mut CopyWriter {
        &mut self.w[table as usize]
    }

    fn finish(self) -> ChunkData {
        let tables = Table::ALL
            .iter()
            .zip(self.w)
            .map(|(&table, w)| {
                let (rows, copy) = w.finish();
                let (hashed, sum) = crate::seed::fingerprint::payload_sum(&copy)
                    .expect("the COPY writer produces complete payloads");
                debug_assert_eq!(hashed, rows);
                let sum = crate::seed::fingerprint::TableSum { rows, sum };
                TableData {
                    table,
                    rows,
                    copy,
                    sum,
                }
            })
            .collect();
        ChunkData { tables }
    }
}

/// Reusable buffers (no per-row allocation for the big strings).
#[derive(Default)]
pub(crate) struct Scratch {
    pub content: String,
    pub ends: Vec<(usize, u32)>,
    pub scene_ids: Vec<Uuid>,
    /// Illustrations of the current story: id, created_at, completed.
    pub ills: Vec<(Uuid, i64, bool)>,
    pub a: String,
    pub b: String,
    pub c: String,
}

/// Writes `t` (PostgreSQL microseconds) as JSON's timestamp text, as `to_jsonb` does in UTC.
pub(crate) fn push_timestamp(out: &mut Vec<u8>, t: i64) {
    use std::io::Write;
    let unix = t + PG_EPOCH_UNIX_MICROS;
    let dt = chrono::DateTime::from_timestamp_micros(unix).expect("timestamp in range");
    let _ = write!(out, "\"{}", dt.format("%Y-%m-%dT%H:%M:%S"));
    let micros = unix.rem_euclid(SECOND);
    if micros != 0 {
        let mut frac = format!("{micros:06}");
        while frac.ends_with('0') {
            frac.pop();
        }
        let _ = write!(out, ".{frac}");
    }
    out.extend_from_slice(b"+00:00\"");
}

/// Lower-case hex of a uuid's 16 bytes (for generation ids and request ids).
pub(crate) fn push_hex(out: &mut String, id: &Uuid) {
    out.push_str(id.simple().encode_lower(&mut [0u8; 32]));
}
