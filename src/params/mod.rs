//! Parameter samplers drawn from the seeded population: users by activity (heavy-tailed),
//! the heavy and the median user, rows of a user, time windows relative to the dataset's
//! anchor. Deterministic from a seed, so every variant is measured with the same values.

use crate::catalog::{QuerySpec, Sampler};
use anyhow::{Context, Result};
use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, Utc};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgArguments, PgConnection};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Postgres};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    queries: PopulationQueries,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopulationQueries {
    users_by_activity: String,
    user_stories: String,
    user_heroes: String,
    user_scenes: String,
    user_events: String,
    pub result_digest: String,
    pub explain: String,
    pub request_settings: String,
    pub wal_insert_lsn: String,
    pub wal_since: String,
    pub secondary_index_bytes: String,
}

crate::sql_file!(fn file() -> File = "scenarios/population.toml");

pub fn queries() -> &'static PopulationQueries {
    &file().queries
}

fn sql(text: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(text.to_string())
}

const FUNCTIONS: &[&str] = &[
    "generate-story",
    "generate-audio",
    "extract-scenes",
    "generate-illustration",
    "generate-avatar",
];
const CATEGORIES: &[&str] = &[
    "adventure",
    "fantasy",
    "science",
    "nature",
    "friendship",
    "mystery",
];
const WORDS: &[&str] = &[
    "moon", "forest", "dragon", "lantern", "river", "whisper", "star", "castle", "kitten", "cloud",
    "brave", "gentle", "journey", "secret", "garden", "ocean", "sleepy", "golden", "owl", "meadow",
    "dream", "friend", "quiet", "bridge",
];

/// One bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Uuid(Uuid),
    Text(String),
    Timestamptz(DateTime<Utc>),
    Int(i32),
}

impl ParamValue {
    /// A short display form for results (long texts abbreviated).
    pub fn display(&self) -> String {
        match self {
            ParamValue::Uuid(u) => u.to_string(),
            ParamValue::Text(t) if t.len() > 40 => format!(
                "{}… ({} chars)",
                &t[..t.char_indices().nth(30).map_or(t.len(), |(i, _)| i)],
                t.len()
            ),
            ParamValue::Text(t) => t.clone(),
            ParamValue::Timestamptz(t) => t.to_rfc3339(),
            ParamValue::Int(i) => i.to_string(),
        }
    }
}

/// Binds values to a query in order.
pub fn bind<'q>(
    mut query: Query<'q, Postgres, PgArguments>,
    values: &[ParamValue],
) -> Query<'q, Postgres, PgArguments> {
    for v in values {
        query = match v {
            ParamValue::Uuid(u) => query.bind(*u),
            ParamValue::Text(t) => query.bind(t.clone()),
            ParamValue::Timestamptz(t) => query.bind(*t),
            ParamValue::Int(i) => query.bind(*i),
        };
    }
    query
}

/// A user's rows the samplers pick from.
#[derive(Debug, Default)]
pub struct UserRows {
    pub stories: Vec<(Uuid, String)>,
    pub heroes: Vec<Uuid>,
    pub scenes: Vec<Uuid>,
    pub events: Vec<Uuid>,
}

/// The seeded users and what they own, read once per command.
pub struct Population {
    pub anchor: DateTime<Utc>,
    /// (user, stories owned), most active first.
    users: Vec<(Uuid, i64)>,
    /// Cumulative story counts for drawing users by activity.
    cumulative: Vec<i64>,
    rows: Mutex<HashMap<Uuid, Arc<UserRows>>>,
}

impl Population {
    pub async fn load(conn: &mut PgConnection, anchor: NaiveDate) -> Result<Self> {
        let users: Vec<(Uuid, i64)> = sqlx::query_as(sql(&queries().users_by_activity))
            .fetch_all(&mut *conn)
            .await
            .context("reading the seeded users")?;
        anyhow::ensure!(
            users.iter().any(|u| u.1 > 0),
            "the dataset has no stories to sample from"
        );
        let anchor = anchor.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        Ok(Self::of(anchor, users))
    }

    /// A population of `users` (most active first), with the cumulative weights to draw by.
    fn of(anchor: DateTime<Utc>, users: Vec<(Uuid, i64)>) -> Self {
        let mut total = 0;
        let cumulative = users
            .iter()
            .map(|u| {
                total += u.1.max(0);
                total
            })
            .collect();
        Self {
            anchor,
            users,
            cumulative,
            rows: Mutex::default(),
        }
    }

    /// Shard `index` of `count`: every `count`-th user by activity, starting at `index`
    /// (disjoint across shards, each with the whole population's mix of heavy and light).
    pub fn shard(self, index: usize, count: usize) -> Result<Self> {
        let users: Vec<(Uuid, i64)> = self
            .users
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % count.max(1) == index)
            .map(|(_, u)| u)
            .collect();
        anyhow::ensure!(
            users.iter().any(|u| u.1 > 0),
            "shard {index}/{count} has no user with stories: use fewer shards for this dataset"
        );
        Ok(Self::of(self.anchor, users))
    }

    /// The most active user (owns the most stories).
    pub fn heavy(&self) -> Uuid {
        self.users[0].0
    }

    /// The median user among those who own at least one story.
    pub fn median(&self) -> Uuid {
        let active = self.users.iter().filter(|u| u.1 > 0).count();
        self.users[active / 2].0
    }

    /// A user drawn with probability proportional to their activity (heavy-tailed).
    pub fn by_activity(&self, rng: &mut ChaCha8Rng) -> Uuid {
        let total = *self.cumulative.last().unwrap_or(&1);
        let pick = rng.random_range(0..total.max(1));
        let i = self.cumulative.partition_point(|&c| c <= pick);
        self.users[i.min(self.users.len() - 1)].0
    }

    /// Up to `n` distinct users drawn by activity.
    pub fn sample_users(&self, n: usize, rng: &mut ChaCha8Rng) -> Vec<Uuid> {
        let mut out = Vec::new();
        for _ in 0..n * 20 {
            if out.len() >= n.min(self.users.len()) {
                break;
            }
            let u = self.by_activity(rng);
            if !out.contains(&u) {
                out.push(u);
            }
        }
        out
    }

    pub async fn user_rows(&self, conn: &mut PgConnection, user: Uuid) -> Result<Arc<UserRows>> {
        if let Some(r) = self
            .rows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&user)
        {
            return Ok(r.clone());
        }
        let q = queries();
        let rows = Arc::new(UserRows {
            stories: sqlx::query_as(sql(&q.user_stories))
                .bind(user)
                .fetch_all(&mut *conn)
                .await?,
            heroes: sqlx::query_scalar(sql(&q.user_heroes))
                .bind(user)
                .fetch_all(&mut *conn)
                .await?,
            scenes: sqlx::query_scalar(sql(&q.user_scenes))
                .bind(user)
                .fetch_all(&mut *conn)
                .await?,
            events: sqlx::query_scalar(sql(&q.user_events))
                .bind(user)
                .fetch_all(&mut *conn)
                .await?,
        });
        self.rows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(user, rows.clone());
        Ok(rows)
    }

    /// Values for every `$n` of a query, for `user`.
    pub async fn draw(
        &self,
        conn: &mut PgConnection,
        spec: &QuerySpec,
        user: Uuid,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<ParamValue>> {
        let rows = self.user_rows(conn, user).await?;
        Ok(spec
            .params
            .iter()
            .map(|s| self.value(*s, user, &rows, rng))
            .collect())
    }

    /// One sampler's value (also used by load workers with cached rows).
    pub fn value(
        &self,
        sampler: Sampler,
        user: Uuid,
        rows: &UserRows,
        rng: &mut ChaCha8Rng,
    ) -> ParamValue {
        let pick_uuid = |v: &[Uuid], rng: &mut ChaCha8Rng| -> Uuid {
            if v.is_empty() {
                // The user owns none: a uuid no row has (the query legitimately finds nothing).
                Uuid::from_u128(rng.random())
            } else {
                v[rng.random_range(0..v.len())]
            }
        };
        match sampler {
            Sampler::User => ParamValue::Uuid(user),
            Sampler::StoryOfUser => {
                let ids: Vec<Uuid> = rows.stories.iter().map(|s| s.0).collect();
                ParamValue::Uuid(pick_uuid(&ids, rng))
            }
            Sampler::HeroOfUser => ParamValue::Uuid(pick_uuid(&rows.heroes, rng)),
            Sampler::SceneOfUser => ParamValue::Uuid(pick_uuid(&rows.scenes, rng)),
            Sampler::EventOfUser => ParamValue::Uuid(pick_uuid(&rows.events, rng)),
            Sampler::FunctionName => {
                ParamValue::Text(FUNCTIONS[rng.random_range(0..FUNCTIONS.len())].into())
            }
            Sampler::Category => {
                ParamValue::Text(CATEGORIES[rng.random_range(0..CATEGORIES.len())].into())
            }
            Sampler::Since24h => ParamValue::Timestamptz(self.anchor - ChronoDuration::hours(24)),
            Sampler::Since7d => ParamValue::Timestamptz(self.anchor - ChronoDuration::days(7)),
            Sampler::Since14d => ParamValue::Timestamptz(self.anchor - ChronoDuration::days(14)),
            Sampler::Since30d => ParamValue::Timestamptz(self.anchor - ChronoDuration::days(30)),
            Sampler::Since12m => ParamValue::Timestamptz(self.anchor - ChronoDuration::days(365)),
            Sampler::HourStart => ParamValue::Timestamptz(
                self.anchor - ChronoDuration::hours(rng.random_range(1..24)),
            ),
            Sampler::Now => ParamValue::Timestamptz(
                self.anchor - ChronoDuration::milliseconds(rng.random_range(1..3_600_000)),
            ),
            Sampler::TitlePrefix => {
                let title = rows
                    .stories
                    .get(rng.random_range(0..rows.stories.len().max(1)))
                    .map(|s| s.1.clone())
                    .unwrap_or_else(|| "Once".into());
                ParamValue::Text(title.chars().take(4).collect())
            }
            Sampler::NewUuid => {
                ParamValue::Uuid(uuid::Builder::from_random_bytes(rng.random()).into_uuid())
            }
            Sampler::RequestId => ParamValue::Text(format!("req_sb_{:032x}", rng.random::<u128>())),
            Sampler::CacheKey => {
                ParamValue::Text(format!("story:{}:{}", user, rng.random_range(0..50u32)))
            }
            Sampler::StoryTitle => ParamValue::Text(format!(
                "The {} {}",
                WORDS[rng.random_range(0..WORDS.len())],
                WORDS[rng.random_range(0..WORDS.len())]
            )),
            Sampler::StoryContent => {
                let n = rng.random_range(400..900);
                let text: Vec<&str> = (0..n)
                    .map(|_| WORDS[rng.random_range(0..WORDS.len())])
                    .collect();
                ParamValue::Text(text.join(" "))
            }
            Sampler::SceneCount => ParamValue::Int(rng.random_range(3..=8)),
        }
    }
}

/// A deterministic RNG for (seed, label): the same query and user get the same values on
/// every variant.
pub fn rng_for(seed: u64, label: &str) -> ChaCha8Rng {
    let mut h: u64 = 0xcbf29ce484222325 ^ seed;
    for b in label.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    ChaCha8Rng::seed_from_u64(h)
}

/// Whom a per-user comparison measures for: the app user with the most stories (where index
/// strategies and policies matter most) and a median one.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Subject {
    #[default]
    Heavy,
    Median,
}

impl Subject {
    pub fn name(self) -> &'static str {
        match self {
            Subject::Heavy => "heavy",
            Subject::Median => "median",
        }
    }

    /// This subject's user in the seeded population.
    pub fn user(self, population: &Population) -> Uuid {
        match self {
            Subject::Heavy => population.heavy(),
            Subject::Median => population.median(),
        }
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A subject and its user, as a stage measures them.
#[derive(Clone, Copy, Debug)]
pub struct SubjectUser {
    pub subject: Subject,
    pub user: Uuid,
}

impl SubjectUser {
    pub fn of(subject: Subject, population: &Population) -> Self {
        Self {
            subject,
            user: subject.user(population),
        }
    }
}
