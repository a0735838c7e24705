//! Running the SQL files under `schema/` and `seed/`: one script per call, errors name
//! the file and line the server complained about.

use crate::paths::{line_of_offset, read_project_file};
use anyhow::{anyhow, bail, Result};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Executor};
use std::path::{Path, PathBuf};

/// Executes a project SQL file as one simple-protocol script on `conn`.
pub async fn run_file(conn: &mut PgConnection, rel: impl AsRef<Path>) -> Result<()> {
    let (path, text) = read_project_file(rel)?;
    run_script(conn, &path, &text).await
}

/// Executes a script, mapping a server error position back to `path:line`.
async fn run_script(conn: &mut PgConnection, path: &Path, text: &str) -> Result<()> {
    conn.execute(sqlx::raw_sql(AssertSqlSafe(text.to_string())))
        .await
        .map(|_| ())
        .map_err(|e| script_error(e, path, text, 1))
}

/// One statement of a project SQL file, with where it starts (for error messages).
#[derive(Debug, Clone)]
pub struct Statement {
    pub path: PathBuf,
    pub line: usize,
    pub sql: String,
}

/// Splits a SQL file into its statements (so DDL can run on several connections, and a
/// migration statement by statement). Understands `--` and `/* */` comments, quoted
/// strings and identifiers, and dollar-quoted bodies (`$$ … $$`, `$tag$ … $tag$`).
pub fn statements(rel: impl AsRef<Path>) -> Result<Vec<Statement>> {
    let (path, text) = read_project_file(rel)?;
    split_statements(&path, &text)
}

pub fn split_statements(path: &Path, text: &str) -> Result<Vec<Statement>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..].find("*/").map_or(bytes.len(), |n| i + n + 4);
                continue;
            }
            b'$' if dollar_tag(&text[i..]).is_some() => {
                let tag = dollar_tag(&text[i..]).expect("checked");
                start.get_or_insert(i);
                let body = i + tag.len();
                match text[body..].find(tag) {
                    Some(n) => i = body + n + tag.len(),
                    None => bail!(
                        "{}:{}: dollar-quoted text opened with {tag} is never closed",
                        path.display(),
                        line_of_offset(text, i)
                    ),
                }
                continue;
            }
            b';' => {
                if let Some(s) = start.take() {
                    out.push(Statement {
                        path: path.to_path_buf(),
                        line: line_of_offset(text, s),
                        sql: text[s..=i].to_string(),
                    });
                }
            }
            _ if c.is_ascii_whitespace() => {}
            _ => {
                start.get_or_insert(i);
                if c == b'\'' || c == b'"' {
                    // Quotes are doubled inside quoted text, so the next lone one closes it.
                    i = text[i + 1..]
                        .find(c as char)
                        .map_or(bytes.len(), |n| i + n + 2);
                    continue;
                }
            }
        }
        i += 1;
    }
    if let Some(s) = start {
        bail!(
            "{}:{}: statement without a terminating semicolon",
            path.display(),
            line_of_offset(text, s)
        );
    }
    Ok(out)
}

/// The opening tag of a dollar-quoted string at the start of `s` (`$$` or `$name$`), or
/// None (a `$1` parameter, or a `$` inside an identifier).
fn dollar_tag(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('$')?;
    let end = rest.find('$')?;
    let name = &rest[..end];
    let ok = name.is_empty()
        || (name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    ok.then(|| &s[..end + 2])
}

/// Executes one statement of a file; errors name the file and line.
pub async fn run_statement(conn: &mut PgConnection, stmt: &Statement) -> Result<()> {
    conn.execute(sqlx::raw_sql(AssertSqlSafe(stmt.sql.clone())))
        .await
        .map(|_| ())
        .map_err(|e| script_error(e, &stmt.path, &stmt.sql, stmt.line))
}

/// Maps a server error to `path:line` (`first_line`: where `text` starts in the file).
fn script_error(e: sqlx::Error, path: &Path, text: &str, first_line: usize) -> anyhow::Error {
    if let sqlx::Error::Database(db) = &e {
        let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
        if let Some(pg) = pg {
            if let Some(sqlx::postgres::PgErrorPosition::Original(pos)) = pg.position() {
                // PostgreSQL positions are 1-based character offsets.
                let byte = text
                    .char_indices()
                    .nth(pos.saturating_sub(1))
                    .map(|(b, _)| b)
                    .unwrap_or(0);
                return anyhow!(
                    "{}:{}: {}",
                    path.display(),
                    first_line + line_of_offset(text, byte) - 1,
                    pg.message()
                );
            }
            let mut msg = format!("{}: {}", path.display(), pg.message());
            if let Some(w) = pg.r#where() {
                msg.push_str(&format!(" (at {w})"));
            }
            return anyhow!(msg);
        }
    }
    anyhow!("{}: {e}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_semicolons_outside_comments_and_quotes() {
        let text = "-- a; comment\nCREATE INDEX a ON t (x);\n/* b; */ ALTER TABLE t\n  ADD CONSTRAINT \"c;d\" CHECK (s <> ';');\n";
        let got = split_statements(Path::new("f.sql"), text).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].sql, "CREATE INDEX a ON t (x);");
        assert_eq!(got[0].line, 2);
        assert!(got[1].sql.starts_with("ALTER TABLE t"));
        assert!(got[1].sql.ends_with("';');"));
        assert_eq!(got[1].line, 3);
    }

    #[test]
    fn keeps_dollar_quoted_bodies_whole() {
        let text = "SELECT $1;\nDO $$ BEGIN PERFORM 1; END $$;\nDO $x$ BEGIN RAISE NOTICE '$$;'; END $x$;\n";
        let got = split_statements(Path::new("f.sql"), text).unwrap();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[1].sql, "DO $$ BEGIN PERFORM 1; END $$;");
        assert_eq!(got[2].line, 3);
        assert!(got[2].sql.ends_with("END $x$;"));
    }

    #[test]
    fn refuses_unclosed_dollar_quotes_and_unterminated_statements() {
        let err = split_statements(Path::new("f.sql"), "SELECT 1;\nDO $$ BEGIN END;")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("f.sql:2") && err.contains("never closed"),
            "{err}"
        );
        let err = split_statements(Path::new("f.sql"), "SELECT 1;\n\nSELECT 2")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("f.sql:3") && err.contains("semicolon"),
            "{err}"
        );
    }
}
