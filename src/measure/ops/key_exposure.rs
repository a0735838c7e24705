//! Where the pgcrypto key shows, checked for real on the encrypted copy: each form of the
//! decrypting read (key as a literal, as a bound parameter, from a session setting, with the
//! statement that sets it) runs on a fresh session, and the key (quoted, as SQL and the log
//! write a string) is looked for in pg_stat_statements (this database's entries, emptied
//! first), in what pg_stat_activity shows of that session, and in the server log under
//! `log_statement = all`, `log_min_duration_statement = 0`, and `log_statement = all` with
//! `log_parameter_max_length = 0`. The log settings are the checking session's own (gone with
//! it); the log is read through SQL (`pg_read_file`), so a server whose log SQL cannot read
//! is reported as not checked, never guessed.

use super::pgcrypto::{file, KeyForm, Read};
use crate::params::{bind, ParamValue};
use crate::sql_files::sql;
use crate::target::Target;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;
use sqlx::AssertSqlSafe;
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Queries {
    log_statement: String,
    log_min_duration_statement: String,
    log_parameter_max_length: String,
    pgss_present: String,
    pgss_preloaded: String,
    pgss_create: String,
    pgss_reset: String,
    pgss_texts: String,
    activity_text: String,
    backend_pid: String,
    log_file: String,
    log_size: String,
    log_read: String,
}

/// Where the key was looked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    PgStatStatements,
    PgStatActivity,
    /// The server log with `log_statement = all`.
    LogStatement,
    /// The server log with `log_min_duration_statement = 0`.
    LogMinDuration,
    /// The server log with `log_statement = all` and `log_parameter_max_length = 0`.
    LogStatementNoParameters,
}

impl Place {
    pub const ALL: [Place; 5] = [
        Place::PgStatStatements,
        Place::PgStatActivity,
        Place::LogStatement,
        Place::LogMinDuration,
        Place::LogStatementNoParameters,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Place::PgStatStatements => "pg_stat_statements",
            Place::PgStatActivity => "pg_stat_activity",
            Place::LogStatement => "log_statement = all",
            Place::LogMinDuration => "log_min_duration_statement = 0",
            Place::LogStatementNoParameters => "log_statement = all, log_parameter_max_length = 0",
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Exposure {
    /// The server's major version the check ran on.
    pub server_major: u32,
    pub checks: Vec<ExposureCheck>,
}

impl Exposure {
    pub fn get(&self, form: KeyForm, place: Place) -> Option<&ExposureCheck> {
        self.checks
            .iter()
            .find(|c| c.form == form && c.place == place)
    }
}

/// One form in one place.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExposureCheck {
    pub form: KeyForm,
    pub place: Place,
    /// None: not checked (see `not_checked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_visible: Option<bool>,
    /// What that place holds of the statement (the line or text the key was looked for in).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub evidence: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_checked: Option<String>,
}

/// The forms whose key exposure is checked.
const FORMS: [KeyForm; 3] = [KeyForm::Literal, KeyForm::Bound, KeyForm::Setting];
/// How long the log gets to reach its file.
const LOG_SETTLE: Duration = Duration::from_millis(150);
/// The most log read per check.
const LOG_MAX: i64 = 4 << 20;

fn q() -> &'static Queries {
    &file().exposure
}

/// Every form in every place; a failure is recorded as "not checked" with its reason.
pub async fn check(target: &Target, key: &str, read: &Read, user: &[ParamValue]) -> Exposure {
    let quoted = format!("'{}'", key.replace('\'', "''"));
    let mut out = Exposure {
        server_major: 0,
        checks: Vec::new(),
    };
    let mut probe = match target.connect().await {
        Ok(c) => c,
        Err(e) => {
            not_checked(&mut out, &format!("{e:#}"));
            return out;
        }
    };
    out.server_major = sqlx::query_as::<_, (String, i32)>(crate::internal_sql::sql(
        &crate::internal_sql::q().server_version,
    ))
    .fetch_one(&mut probe)
    .await
    .map_or(0, |(_, num)| crate::pg_version::major_of(num));
    let pgss = pgss_ready(&mut probe).await;
    for form in FORMS {
        let run = statements(form, read, key, user);
        let (pgss_check, activity) = in_views(target, &mut probe, &pgss, &run, &quoted).await;
        out.checks
            .push(check_of(form, Place::PgStatStatements, pgss_check));
        out.checks
            .push(check_of(form, Place::PgStatActivity, activity));
        for place in [
            Place::LogStatement,
            Place::LogMinDuration,
            Place::LogStatementNoParameters,
        ] {
            let found = in_log(target, &mut probe, place, &run, &quoted).await;
            out.checks.push(check_of(form, place, found));
        }
    }
    out
}

fn not_checked(out: &mut Exposure, why: &str) {
    for form in FORMS {
        for place in Place::ALL {
            out.checks
                .push(check_of(form, place, Err(anyhow::anyhow!(why.to_string()))));
        }
    }
}

fn check_of(form: KeyForm, place: Place, found: Result<(bool, String)>) -> ExposureCheck {
    match found {
        Ok((visible, evidence)) => ExposureCheck {
            form,
            place,
            key_visible: Some(visible),
            evidence,
            not_checked: None,
        },
        Err(e) => ExposureCheck {
            form,
            place,
            key_visible: None,
            evidence: String::new(),
            not_checked: Some(format!("{e:#}")),
        },
    }
}

/// The statements one form runs on its session: the setting form sets its key first.
fn statements<'a>(
    form: KeyForm,
    read: &'a Read,
    key: &str,
    user: &[ParamValue],
) -> Vec<(&'a str, Vec<ParamValue>)> {
    let k = ParamValue::Text(key.to_string());
    let with_key: Vec<ParamValue> = user.iter().cloned().chain([k.clone()]).collect();
    match form {
        KeyForm::Literal => vec![(read.literal.as_str(), user.to_vec())],
        KeyForm::Bound => vec![(read.bound.as_str(), with_key)],
        KeyForm::Setting => vec![
            (file().set_key.as_str(), vec![k]),
            (read.setting.as_str(), user.to_vec()),
        ],
        KeyForm::Plain => vec![(read.plain.as_str(), user.to_vec())],
    }
}

async fn run(conn: &mut PgConnection, run: &[(&str, Vec<ParamValue>)]) -> Result<()> {
    for (text, params) in run {
        bind(sqlx::query(AssertSqlSafe(text.to_string())), params)
            .fetch_all(&mut *conn)
            .await?;
    }
    Ok(())
}

/// pg_stat_statements in the copy (created there when the server preloads it: the copy is
/// storybench's); the reason when it cannot be read.
async fn pgss_ready(probe: &mut PgConnection) -> std::result::Result<(), String> {
    let present: bool = sqlx::query_scalar(sql(&q().pgss_present))
        .fetch_one(&mut *probe)
        .await
        .map_err(|e| format!("{e:#}"))?;
    if present {
        return Ok(());
    }
    let preloaded: bool = sqlx::query_scalar(sql(&q().pgss_preloaded))
        .fetch_one(&mut *probe)
        .await
        .map_err(|e| format!("{e:#}"))?;
    if !preloaded {
        return Err("pg_stat_statements is not in shared_preload_libraries".into());
    }
    sqlx::query(sql(&q().pgss_create))
        .execute(&mut *probe)
        .await
        .map(|_| ())
        .map_err(|e| format!("CREATE EXTENSION pg_stat_statements: {e:#}"))
}

type Found = Result<(bool, String)>;

/// The form on a fresh session: pg_stat_statements' entries for it, and pg_stat_activity's
/// text of that session afterwards.
async fn in_views(
    target: &Target,
    probe: &mut PgConnection,
    pgss: &std::result::Result<(), String>,
    form: &[(&str, Vec<ParamValue>)],
    quoted: &str,
) -> (Found, Found) {
    let mut conn = match target.connect().await {
        Ok(c) => c,
        Err(e) => return (Err(anyhow::anyhow!("{e:#}")), Err(e)),
    };
    let reset = match pgss {
        Ok(()) => sqlx::query(sql(&q().pgss_reset))
            .execute(&mut *probe)
            .await
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("pg_stat_statements_reset: {e:#}")),
        Err(why) => Err(anyhow::anyhow!(why.clone())),
    };
    let pid: i32 = match sqlx::query_scalar(sql(&q().backend_pid))
        .fetch_one(&mut conn)
        .await
    {
        Ok(p) => p,
        Err(e) => return (Err(e.into()), Err(anyhow::anyhow!("no backend pid"))),
    };
    if let Err(e) = run(&mut conn, form).await {
        let why = format!("the statement failed: {e:#}");
        return (Err(anyhow::anyhow!(why.clone())), Err(anyhow::anyhow!(why)));
    }
    let pgss_found = match reset {
        Ok(()) => sqlx::query_scalar::<_, String>(sql(&q().pgss_texts))
            .fetch_all(&mut *probe)
            .await
            .map_err(Into::into)
            .map(|texts| {
                let visible = texts.iter().any(|t| t.contains(quoted));
                (visible, texts.join(" | "))
            }),
        Err(e) => Err(e),
    };
    let activity = sqlx::query_scalar::<_, String>(sql(&q().activity_text))
        .bind(pid)
        .fetch_one(&mut *probe)
        .await
        .map_err(Into::into)
        .map(|t| (t.contains(quoted), t));
    (pgss_found, activity)
}

async fn log_size(probe: &mut PgConnection, path: &str) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(sql(&q().log_size))
        .bind(path)
        .fetch_one(probe)
        .await?)
}

/// The form on a fresh session logging as `place` says; the log lines of that session.
async fn in_log(
    target: &Target,
    probe: &mut PgConnection,
    place: Place,
    form: &[(&str, Vec<ParamValue>)],
    quoted: &str,
) -> Found {
    let path: String = sqlx::query_scalar(sql(&q().log_file))
        .fetch_one(&mut *probe)
        .await?;
    let Some(from) = log_size(probe, &path).await? else {
        anyhow::bail!("the server log is not readable through SQL ({path})");
    };
    let mut conn = target.connect().await?;
    let pid: i32 = sqlx::query_scalar(sql(&q().backend_pid))
        .fetch_one(&mut conn)
        .await?;
    let settings: &[(&String, &str)] = match place {
        Place::LogStatement => &[(&q().log_statement, "all")],
        Place::LogMinDuration => &[(&q().log_min_duration_statement, "0")],
        Place::LogStatementNoParameters => &[
            (&q().log_statement, "all"),
            (&q().log_parameter_max_length, "0"),
        ],
        _ => &[],
    };
    for (set, value) in settings {
        sqlx::query(sql(set))
            .bind(*value)
            .execute(&mut conn)
            .await?;
    }
    run(&mut conn, form).await?;
    drop(conn);
    tokio::time::sleep(LOG_SETTLE).await;
    let to = log_size(probe, &path).await?.unwrap_or(from);
    let text: Option<String> = sqlx::query_scalar(sql(&q().log_read))
        .bind(&path)
        .bind(from)
        .bind((to - from).clamp(0, LOG_MAX))
        .fetch_one(&mut *probe)
        .await?;
    // The default log_line_prefix ('%m [%p] ') names the backend: that session's lines only.
    let mark = format!("[{pid}]");
    let lines: Vec<&str> = text
        .as_deref()
        .unwrap_or("")
        .lines()
        .filter(|l| l.contains(&mark))
        .collect();
    if lines.is_empty() {
        anyhow::bail!("no line of the checking session in {path} (log_line_prefix without %p?)");
    }
    let hit = lines.iter().find(|l| l.contains(quoted));
    let evidence = hit
        .or_else(|| lines.iter().find(|l| l.contains("pgp_sym_decrypt")))
        .map_or(String::new(), |l| l.chars().take(400).collect());
    Ok((hit.is_some(), evidence))
}
