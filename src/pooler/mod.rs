//! A connection pooler between the load's users and the server, as Supabase serves apps:
//! pgbouncer started and stopped by storybench in front of the cluster (`--pooler
//! pgbouncer:transaction|session`), or a user's own (`--pooler-url`). The load then connects
//! through it; storybench's own samplers stay direct.
//!
//! The protocol follows the pool mode. pgbouncer 1.18 in transaction mode hands a client a
//! server connection for one transaction only and has no `max_prepared_statements`, so a
//! named statement prepared in one transaction is missing (or someone else's) in the next.
//! Through a transaction pooler every statement is therefore unnamed (parsed, bound and run
//! in the same transaction) and every request is a transaction; direct and session pooling
//! keep named, per-connection cached statements.

pub mod claims_audit;
pub mod pgbouncer;

use crate::target::{SecretUrl, Target};
use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Row};
use std::str::FromStr;

crate::sql_file!(fn file() -> File = "scenarios/pooler.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    queries: PoolerQueries,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PoolerQueries {
    /// pgbouncer's admin console: per-database totals.
    pub show_stats: String,
    /// Inside a request: who the server thinks we are, and on which backend.
    pub whoami: String,
    /// Outside any request: what claims a fresh transaction sees.
    pub bare_claims: String,
    /// The wrong emulation the audit must catch: claims set for the session.
    pub session_claims: String,
    pub audit_users: String,
}

pub(crate) fn queries() -> &'static PoolerQueries {
    &file().queries
}

#[cfg(test)]
pub(crate) fn load_all() {
    queries();
}

/// How the pooler assigns server connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum PoolMode {
    /// A server connection per transaction (Supabase's port 6543).
    #[default]
    Transaction,
    /// A server connection per client connection, for its whole life.
    Session,
}

impl PoolMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PoolMode::Transaction => "transaction",
            PoolMode::Session => "session",
        }
    }

    /// The statement protocol this mode allows.
    pub fn protocol(self) -> Protocol {
        match self {
            PoolMode::Transaction => Protocol::Unnamed,
            PoolMode::Session => Protocol::Prepared,
        }
    }
}

/// How statements reach the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Named prepared statements, cached per connection (direct and session pooling).
    #[default]
    Prepared,
    /// Unnamed statements, each parsed and run inside its request's transaction.
    Unnamed,
}

impl Protocol {
    /// sqlx's `persistent` flag for this protocol.
    pub fn persistent(self) -> bool {
        self == Protocol::Prepared
    }

    pub fn describe(self) -> &'static str {
        match self {
            Protocol::Prepared => "named prepared statements, cached per connection",
            Protocol::Unnamed => {
                "unnamed statements, parsed and run inside each request's transaction \
                 (pgbouncer 1.18 transaction pooling keeps no prepared statement across transactions)"
            }
        }
    }
}

/// `--pooler KIND:MODE`: the pooler storybench starts itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolerKind {
    pub mode: PoolMode,
}

impl PoolerKind {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (kind, mode) = text.split_once(':').unwrap_or((text, ""));
        if kind != "pgbouncer" {
            return Err(format!(
                "unknown pooler `{kind}`: storybench starts pgbouncer (pgbouncer:transaction or pgbouncer:session); \
                 for another pooler give --pooler-url"
            ));
        }
        match mode {
            "transaction" => Ok(Self {
                mode: PoolMode::Transaction,
            }),
            "session" => Ok(Self {
                mode: PoolMode::Session,
            }),
            other => Err(format!(
                "unknown pool mode `{other}`: pgbouncer:transaction or pgbouncer:session"
            )),
        }
    }
}

impl std::fmt::Display for PoolerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pgbouncer:{}", self.mode.as_str())
    }
}

/// The pooler options of `load`.
#[derive(clap::Args, Debug, Clone, Default, Serialize, Deserialize)]
pub struct PoolerArgs {
    /// Run the load's users through a pooler storybench starts in front of the server:
    /// pgbouncer:transaction (as Supabase's port 6543) or pgbouncer:session.
    #[arg(long, value_parser = PoolerKind::parse, conflicts_with = "pooler_url")]
    pub pooler: Option<PoolerKind>,
    /// Run the load's users through your own pooler at this URL instead. It must serve every
    /// database of the server (a `*` entry): the load runs on a pristine copy of the dataset.
    #[arg(long, hide_env_values = true)]
    #[serde(skip)]
    pub pooler_url: Option<String>,
    /// The pool mode of --pooler-url (it decides the statement protocol).
    #[arg(
        long,
        value_enum,
        default_value = "transaction",
        requires = "pooler_url"
    )]
    pub pooler_mode: PoolMode,
    /// Server connections of the pool storybench starts (the server allows 200; storybench's
    /// own samplers keep a few direct).
    #[arg(long, default_value_t = 190)]
    pub pooler_size: u32,
}

impl PoolerArgs {
    pub fn wanted(&self) -> bool {
        self.pooler.is_some() || self.pooler_url.is_some()
    }
}

/// A pooler the load connects through, for the life of one command.
pub struct Pooler {
    base: PgConnectOptions,
    admin: Option<PgConnectOptions>,
    pub info: PoolerInfo,
    /// Keeps pgbouncer running; stopping it on drop.
    _process: Option<pgbouncer::Pgbouncer>,
}

/// What results.json records about the pooler of a load.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PoolerInfo {
    /// `pgbouncer 1.18.0` (started by storybench) or `own` (--pooler-url).
    pub pooler: String,
    pub mode: Option<PoolMode>,
    pub protocol: Protocol,
    /// Server connections in the pool (storybench's own pgbouncer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_size: Option<u32>,
    /// The pooler's own counters over the measured run, when its admin console answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<PoolerStats>,
    /// Claims isolation through the pooler, checked before the load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims_audit: Option<claims_audit::ClaimsAudit>,
}

/// pgbouncer's `SHOW STATS` totals for the load's database, as a difference over the run.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PoolerStats {
    pub transactions: u64,
    pub queries: u64,
    /// Time clients spent waiting for a server connection, summed over clients (ms).
    pub wait_ms_total: f64,
    /// The same per transaction (ms).
    pub wait_ms_per_transaction: f64,
}

impl Pooler {
    /// Starts (or connects to) the pooler the arguments ask for, in front of `target`.
    /// A client waits for a server connection at most `wait_timeout` (pgbouncer's
    /// `query_wait_timeout`), then gets an error.
    pub async fn open(
        args: &PoolerArgs,
        target: &Target,
        wait_timeout: std::time::Duration,
    ) -> Result<Self> {
        if args.pooler_size == 0 {
            bail!("--pooler-size must be at least 1");
        }
        if let Some(kind) = args.pooler {
            let server = target.connect_options()?;
            let password = url::Url::parse(target.url.expose())
                .ok()
                .and_then(|u| u.password().map(str::to_string))
                .unwrap_or_default();
            let process = pgbouncer::Pgbouncer::start(
                &server,
                &password,
                kind.mode,
                args.pooler_size,
                wait_timeout,
            )?;
            let base = process.client_options(&server);
            let admin = Some(base.clone().database("pgbouncer"));
            let info = PoolerInfo {
                pooler: format!("pgbouncer {}", process.version),
                mode: Some(kind.mode),
                protocol: kind.mode.protocol(),
                pool_size: Some(args.pooler_size),
                ..Default::default()
            };
            return Ok(Self {
                base,
                admin,
                info,
                _process: Some(process),
            });
        }
        let Some(url) = &args.pooler_url else {
            bail!("no pooler asked for");
        };
        let secret = SecretUrl::new(url.clone());
        let base = PgConnectOptions::from_str(url)
            .map_err(|e| {
                anyhow!(
                    "malformed --pooler-url {secret}: {}",
                    crate::target::scrub(&e.to_string(), &secret)
                )
            })?
            .application_name("storybench");
        let admin = Some(base.clone().database("pgbouncer"));
        Ok(Self {
            base,
            admin,
            info: PoolerInfo {
                pooler: "own".into(),
                mode: Some(args.pooler_mode),
                protocol: args.pooler_mode.protocol(),
                ..Default::default()
            },
            _process: None,
        })
    }

    /// Options for the load's users: the pooler's address, the target's database.
    pub fn options_for(&self, target: &Target) -> Result<PgConnectOptions> {
        let db = target
            .connect_options()?
            .get_database()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("the target has no database name"))?;
        Ok(self.base.clone().database(&db))
    }

    pub fn protocol(&self) -> Protocol {
        self.info.protocol
    }

    /// The counters once pgbouncer has published what happened so far: it refreshes them
    /// every `stats_period` (1 s in storybench's config), not live.
    async fn settled_stats_of(&self, database: &str) -> Option<PoolerStats> {
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        self.stats_of(database).await
    }

    /// The pooler's counters for `database` now, or None when it has no admin console
    /// storybench may read (a pooler other than pgbouncer, or no admin rights).
    async fn stats_of(&self, database: &str) -> Option<PoolerStats> {
        let admin = self.admin.as_ref()?;
        let mut conn: PgConnection = admin.connect().await.ok()?;
        // The admin console speaks the simple query protocol only.
        let rows = sqlx::raw_sql(crate::sql_files::sql(queries().show_stats.as_str()))
            .fetch_all(&mut conn)
            .await
            .ok()?;
        // pgbouncer types its counters loosely (numeric or int8 by version); in the simple
        // protocol every value is text, so read it as text whatever its declared type.
        let text = |r: &sqlx::postgres::PgRow, c: &str| -> Option<String> {
            r.try_get_unchecked::<Option<String>, _>(c).ok().flatten()
        };
        let num = |r: &sqlx::postgres::PgRow, c: &str| -> u64 {
            text(r, c).and_then(|t| t.trim().parse().ok()).unwrap_or(0)
        };
        let row = rows
            .iter()
            .find(|r| text(r, "database").as_deref() == Some(database))?;
        Some(PoolerStats {
            transactions: num(row, "total_xact_count"),
            queries: num(row, "total_query_count"),
            wait_ms_total: num(row, "total_wait_time") as f64 / 1000.0,
            wait_ms_per_transaction: 0.0,
        })
    }
}

impl std::fmt::Debug for Pooler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pooler").field("info", &self.info).finish()
    }
}

/// Users for the claims audit before a pooled load, and its clients and rounds: enough
/// clients to share server connections, a few seconds at most.
const AUDIT_USERS: i64 = 50;
const AUDIT_CLIENTS: usize = 32;
const AUDIT_ROUNDS: usize = 10;

/// A load through the pooler: the claims audit first, the pooler's counters around it.
pub struct PooledRun<'a> {
    pooler: &'a Pooler,
    database: String,
    info: PoolerInfo,
    before: Option<PoolerStats>,
}

impl Pooler {
    /// Audits claims isolation through the pooler on `target` (a seeded copy), then reads
    /// the pooler's counters: what the load adds to them is its own.
    pub async fn begin(&self, target: &Target) -> Result<PooledRun<'_>> {
        let mut conn = target.connect().await?;
        let users = claims_audit::sample_users(&mut conn, AUDIT_USERS).await?;
        drop(conn);
        let audit = claims_audit::run(
            &self.options_for(target)?,
            &users,
            AUDIT_CLIENTS,
            AUDIT_ROUNDS,
            self.protocol(),
            claims_audit::Emulation::TransactionLocal,
        )
        .await?;
        let database = self
            .options_for(target)?
            .get_database()
            .unwrap_or_default()
            .to_string();
        let before = self.settled_stats_of(&database).await;
        let mut info = self.info.clone();
        info.claims_audit = Some(audit);
        Ok(PooledRun {
            pooler: self,
            database,
            info,
            before,
        })
    }
}

impl PooledRun<'_> {
    /// The pooler's part of the load's results.
    pub async fn finish(mut self) -> PoolerInfo {
        if let (Some(before), Some(after)) = (
            &self.before,
            self.pooler.settled_stats_of(&self.database).await,
        ) {
            self.info.stats = Some(after.since(before));
        }
        self.info
    }
}

impl PoolerStats {
    /// The counters' growth from `before` to `self`.
    pub fn since(&self, before: &PoolerStats) -> PoolerStats {
        let transactions = self.transactions.saturating_sub(before.transactions);
        let wait = (self.wait_ms_total - before.wait_ms_total).max(0.0);
        PoolerStats {
            transactions,
            queries: self.queries.saturating_sub(before.queries),
            wait_ms_total: wait,
            wait_ms_per_transaction: wait / transactions.max(1) as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooler_kinds_parse_and_unknown_ones_say_what_is_offered() {
        assert_eq!(
            PoolerKind::parse("pgbouncer:transaction").unwrap().mode,
            PoolMode::Transaction
        );
        assert_eq!(
            PoolerKind::parse("pgbouncer:session").unwrap().mode,
            PoolMode::Session
        );
        assert!(PoolerKind::parse("pgbouncer")
            .unwrap_err()
            .contains("pgbouncer:transaction"));
        assert!(PoolerKind::parse("supavisor:transaction")
            .unwrap_err()
            .contains("--pooler-url"));
        assert_eq!(PoolMode::Transaction.protocol(), Protocol::Unnamed);
        assert!(!Protocol::Unnamed.persistent());
    }

    #[test]
    fn stats_are_differences_with_a_wait_per_transaction() {
        let before = PoolerStats {
            transactions: 10,
            queries: 30,
            wait_ms_total: 5.0,
            ..Default::default()
        };
        let after = PoolerStats {
            transactions: 110,
            queries: 330,
            wait_ms_total: 205.0,
            ..Default::default()
        };
        let d = after.since(&before);
        assert_eq!((d.transactions, d.queries), (100, 300));
        assert!((d.wait_ms_per_transaction - 2.0).abs() < 1e-9);
    }
}
