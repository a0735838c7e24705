//! `ops --operations pgcrypto`: what the reference document's encryption costs the reads
//! that decrypt. Two pristine copies: one stays plain; on the other the document's
//! `migrations/doc_pgcrypto_encrypt.sql` runs as written (its duration, WAL and the heroes
//! table's size before/after are recorded), then `VACUUM (ANALYZE) heroes`, the steady state
//! the plain copy is in. Each read of `scenarios/ops_pgcrypto.toml` is timed by the engine in
//! four interleaved forms: plaintext (plain copy), and decrypted with the key as a literal
//! (the document's), as a bound parameter, and from a per-session setting (encrypted copy).
//! Every decrypted result is checked against the plaintext one. Where the key shows is
//! checked for real in `key_exposure`.

use super::key_exposure::{self, Exposure};
use super::migration::{self, Migration, StatementRun};
use super::{queries, OpsOptions};
use crate::auth::Principal;
use crate::catalog::{Kind, QuerySpec, Role, Sampler};
use crate::latency::{Latency, LatencySummary};
use crate::measure::engine::{self, Rounds, SqlArm, Work};
use crate::measure::exec::{self, principal_for, RequestContext};
use crate::params::{ParamValue, Population};
use crate::pristine::PristineCopy;
use crate::sql_files::sql;
use crate::stats::{Interval, Side};
use crate::target::Target;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;
use sqlx::Executor;
use std::time::Instant;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct File {
    pub key: String,
    pub set_key: String,
    pub vacuum_heroes: String,
    pub heroes_bytes: String,
    pub encrypted_rows: String,
    pub read: Vec<Read>,
    pub exposure: key_exposure::Queries,
}

/// One read, in its four forms.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Read {
    pub name: String,
    pub description: String,
    pub role: Role,
    pub plain: String,
    pub literal: String,
    pub bound: String,
    pub setting: String,
}

crate::sql_file!(pub(crate) fn file() -> File = "scenarios/ops_pgcrypto.toml");

/// The document's encryption, as a migration file.
const ENCRYPT_FILE: &str = "migrations/doc_pgcrypto_encrypt.sql";

/// How a read gets its avatar prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyForm {
    /// Plaintext, no encryption (the plain copy).
    Plain,
    /// `pgp_sym_decrypt(…, 'key')`: the key in the SQL text, as the document writes it.
    Literal,
    /// The key as a bound parameter.
    Bound,
    /// The key from a per-session setting (`current_setting('app.avatar_key')`).
    Setting,
}

impl KeyForm {
    pub const ALL: [KeyForm; 4] = [
        KeyForm::Plain,
        KeyForm::Literal,
        KeyForm::Bound,
        KeyForm::Setting,
    ];

    pub fn name(self) -> &'static str {
        match self {
            KeyForm::Plain => "plaintext",
            KeyForm::Literal => "key in the SQL text",
            KeyForm::Bound => "key as a bound parameter",
            KeyForm::Setting => "key from a session setting",
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PgcryptoFigures {
    pub encrypt: Encrypt,
    pub reads: Vec<DecryptRead>,
    pub exposure: Exposure,
}

/// The document's encryption on an idle copy.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Encrypt {
    pub file: String,
    pub seconds: f64,
    pub wal_bytes: i64,
    /// Heroes whose avatar_prompt is now ciphertext.
    pub rows: i64,
    /// heroes (table, TOAST and indexes) plain, and encrypted after VACUUM.
    pub heroes_bytes_plain: i64,
    pub heroes_bytes_encrypted: i64,
    pub statements: Vec<StatementRun>,
}

/// One read timed in its four forms.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DecryptRead {
    pub name: String,
    pub description: String,
    pub role: Role,
    /// The user it ran for (app reads): the heaviest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Rows the plaintext read returns.
    pub rows: i64,
    /// Every decrypting form returned exactly the plaintext read's rows (order-independent
    /// digest of the result).
    pub decrypted_equals_plaintext: bool,
    /// In `KeyForm::ALL` order; each ratio is against the plaintext arm.
    pub arms: Vec<DecryptArm>,
    /// bound / literal and setting / literal: whether the better practice costs more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_vs_literal: Option<Interval>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setting_vs_literal: Option<Interval>,
    pub rounds: Rounds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl DecryptRead {
    pub fn arm(&self, form: KeyForm) -> Option<&DecryptArm> {
        self.arms.iter().find(|a| a.form == form)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DecryptArm {
    pub form: KeyForm,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySummary>,
    /// Paired ratio against plaintext, with its interval and where it lies relative to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<Interval>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side: Option<Side>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<Work>,
}

impl DecryptArm {
    /// The sample count when it supports no percentile (so no median, and no paired
    /// interval): a slow read, such as decrypting every hero, within the engine's budget.
    pub fn too_few(&self) -> Option<u64> {
        match &self.latency {
            Some(l) if l.supported_percentile >= 50.0 => None,
            l => Some(l.as_ref().map_or(0, |l| l.count)),
        }
    }
}

/// Measures every read on two pristine copies of `base` (both dropped, also on error).
pub async fn measure(base: &Target, opts: &OpsOptions) -> Result<PgcryptoFigures> {
    let plain = PristineCopy::create(base, "ops_pgcrypto_plain").await?;
    let encrypted = match PristineCopy::create(base, "ops_pgcrypto_encrypted").await {
        Ok(c) => c,
        Err(e) => {
            drop_copy(plain).await;
            return Err(e);
        }
    };
    let outcome = on_copies(plain.target(), encrypted.target(), opts).await;
    drop_copy(plain).await;
    drop_copy(encrypted).await;
    outcome
}

async fn drop_copy(copy: PristineCopy) {
    if let Err(e) = copy.drop().await {
        tracing::warn!("could not drop a pristine copy: {e:#}");
    }
}

async fn on_copies(plain: &Target, enc: &Target, opts: &OpsOptions) -> Result<PgcryptoFigures> {
    let f = file();
    let mut p = plain.connect().await?;
    let mut e = enc.connect().await?;
    let encrypt = encrypt(&mut e, opts).await?;
    crate::say!(
        "  ops: pgcrypto: the document's encryption of {} avatar prompts alone: {:.2} s, WAL {}",
        encrypt.rows,
        encrypt.seconds,
        crate::format::human_bytes(encrypt.wal_bytes as f64)
    );
    sqlx::query(sql(&f.set_key))
        .bind(&f.key)
        .execute(&mut e)
        .await?;
    let variant = crate::schema::current_variant(&mut p)
        .await?
        .unwrap_or_default();
    let ctx = RequestContext::new(variant.api_usage, opts.statement_timeout);
    let dataset = crate::seed::require_complete(&mut p).await?;
    let population = Population::load(&mut p, dataset.anchor).await?;
    let heavy = crate::measure::explain::subjects(&population)[0];
    let mut reads = Vec::new();
    for r in &f.read {
        crate::interrupt::check()?;
        let spec = spec_of(r);
        let user: Vec<ParamValue> = match r.role {
            Role::App => vec![ParamValue::Uuid(heavy.user)],
            _ => Vec::new(),
        };
        let who = principal_for(&spec, heavy.user);
        let mut read = timed(&mut p, &mut e, r, &spec, &user, &who, &ctx, opts).await?;
        read.subject = (r.role == Role::App).then(|| heavy.subject.name().to_string());
        reads.push(read);
    }
    drop(e);
    let app = f
        .read
        .iter()
        .find(|r| r.role == Role::App)
        .unwrap_or(&f.read[0]);
    let user: Vec<ParamValue> = match app.role {
        Role::App => vec![ParamValue::Uuid(heavy.user)],
        _ => Vec::new(),
    };
    let exposure = key_exposure::check(enc, &f.key, app, &user).await;
    Ok(PgcryptoFigures {
        encrypt,
        reads,
        exposure,
    })
}

/// The document's encryption (the migration file, as written) on the copy, then VACUUM.
async fn encrypt(e: &mut PgConnection, opts: &OpsOptions) -> Result<Encrypt> {
    let f = file();
    let path = crate::paths::project_file(ENCRYPT_FILE);
    let m = Migration::load(&path)?;
    let heroes_bytes_plain: i64 = sqlx::query_scalar(sql(&f.heroes_bytes))
        .fetch_one(&mut *e)
        .await?;
    let lsn: String = sqlx::query_scalar(sql(&queries().wal_lsn))
        .fetch_one(&mut *e)
        .await?;
    let clock = Instant::now();
    let (statements, outcome) = migration::execute(e, &m, super::retries(opts), clock).await;
    let seconds = clock.elapsed().as_secs_f64();
    outcome.with_context(|| format!("{ENCRYPT_FILE} on a copy"))?;
    let wal_bytes: i64 = sqlx::query_scalar(sql(&queries().wal_since))
        .bind(&lsn)
        .fetch_one(&mut *e)
        .await?;
    e.execute(sql(&f.vacuum_heroes)).await?;
    Ok(Encrypt {
        file: ENCRYPT_FILE.into(),
        seconds,
        wal_bytes,
        rows: sqlx::query_scalar(sql(&f.encrypted_rows))
            .fetch_one(&mut *e)
            .await?,
        heroes_bytes_plain,
        heroes_bytes_encrypted: sqlx::query_scalar(sql(&f.heroes_bytes))
            .fetch_one(&mut *e)
            .await?,
        statements,
    })
}

/// A read as a catalog entry, so the engine's runner can run it as the app does.
fn spec_of(r: &Read) -> QuerySpec {
    QuerySpec {
        name: r.name.clone(),
        description: r.description.clone(),
        role: r.role,
        kind: Kind::Read,
        tags: vec!["pgcrypto".into()],
        params: match r.role {
            Role::App => vec![Sampler::User],
            _ => Vec::new(),
        },
        sql: r.plain.clone(),
        sql_policy_only: None,
        line: 0,
        file: crate::paths::project_file("scenarios/ops_pgcrypto.toml"),
    }
}

#[allow(clippy::too_many_arguments)]
async fn timed(
    p: &mut PgConnection,
    e: &mut PgConnection,
    r: &Read,
    spec: &QuerySpec,
    user: &[ParamValue],
    who: &Principal,
    ctx: &RequestContext,
    opts: &OpsOptions,
) -> Result<DecryptRead> {
    let key = ParamValue::Text(file().key.clone());
    let bound: Vec<ParamValue> = user.iter().cloned().chain([key]).collect();
    // Same rows, decrypted: every form's digest against the plaintext's.
    let (rows, want) = exec::digest(p, &r.plain, user, who, ctx).await?;
    let mut same = true;
    for (text, params) in [
        (&r.literal, user),
        (&r.bound, &bound[..]),
        (&r.setting, user),
    ] {
        let got = exec::digest(e, text, params, who, ctx)
            .await
            .with_context(|| format!("{}: the decrypting read", r.name))?;
        same &= got == (rows, want.clone());
    }
    let arms: Vec<SqlArm> = [
        (0, &r.plain, user),
        (1, &r.literal, user),
        (1, &r.bound, &bound[..]),
        (1, &r.setting, user),
    ]
    .into_iter()
    .map(|(conn, sql, params)| SqlArm {
        conn,
        spec,
        sql,
        params,
        who: who.clone(),
        ctx,
    })
    .collect();
    let mut conns: [&mut PgConnection; 2] = [&mut *p, &mut *e];
    let o = engine::against_first(&mut conns, &arms, &opts.engine.engine()).await;
    let summary = |l: &Latency| (!l.is_empty()).then(|| l.summary());
    Ok(DecryptRead {
        name: r.name.clone(),
        description: r.description.clone(),
        role: r.role,
        subject: None,
        rows,
        decrypted_equals_plaintext: same,
        arms: KeyForm::ALL
            .iter()
            .zip(&o.arms)
            .map(|(form, a)| DecryptArm {
                form: *form,
                latency: summary(&a.latency),
                ratio: a.ratio,
                side: a.side,
                work: a.work.clone(),
            })
            .collect(),
        bound_vs_literal: o.paired(2, 1),
        setting_vs_literal: o.paired(3, 1),
        rounds: o.rounds.clone(),
        error: o.arms.iter().find_map(|a| a.error.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_literal_forms_hold_the_documents_key_and_the_others_do_not() {
        let f = file();
        let quoted = format!("'{}'", f.key);
        for r in &f.read {
            assert!(r.literal.contains(&quoted), "{}", r.name);
            for other in [&r.plain, &r.bound, &r.setting] {
                assert!(!other.contains(&f.key), "{}: {other}", r.name);
            }
        }
        let doc = std::fs::read_to_string(crate::paths::project_file(ENCRYPT_FILE)).unwrap();
        assert!(doc.contains(&quoted));
    }
}
