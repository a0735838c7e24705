//! Parsing and validation of the catalog file, with `file:line` in every error.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use anyhow::{anyhow, Result};
use serde::Deserialize;
use toml::Spanned;

use super::{Catalog, Kind, QuerySpec, Role, Sampler};
use crate::paths::line_of_offset;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    query: Vec<Spanned<RawQuery>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuery {
    name: Spanned<String>,
    description: String,
    role: Role,
    kind: Kind,
    #[serde(default)]
    tags: Vec<String>,
    params: Vec<Spanned<String>>,
    sql: Spanned<String>,
    #[serde(default)]
    sql_policy_only: Option<Spanned<String>>,
}

/// Byte offsets of the `[[query]]` header lines, in file order.
fn header_offsets(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with("[[") && t.trim_start_matches("[[").trim_start().starts_with("query") {
            let inner = t
                .trim_start_matches("[[")
                .trim_start()
                .trim_start_matches("query")
                .trim_start();
            if inner.starts_with("]]") {
                out.push(offset + (line.len() - line.trim_start().len()));
            }
        }
        offset += line.len();
    }
    out
}

/// Line of the `[[query]]` header enclosing a byte offset (the last header before it).
fn enclosing_header_line(text: &str, headers: &[usize], offset: usize) -> Option<usize> {
    headers
        .iter()
        .rev()
        .find(|&&h| h <= offset)
        .map(|&h| line_of_offset(text, h))
}

pub(super) fn parse(text: &str, file: &Path) -> Result<Catalog> {
    let fname = file.display().to_string();
    let headers = header_offsets(text);
    let raw: RawFile = toml::from_str(text).map_err(|e| toml_error(&e, text, &fname, &headers))?;
    let f = FileCtx {
        text,
        file,
        fname: &fname,
    };
    let mut errors: Vec<String> = Vec::new();
    let mut queries = Vec::with_capacity(raw.query.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    let use_headers = headers.len() == raw.query.len();

    for (i, entry) in raw.query.into_iter().enumerate() {
        let span = entry.span();
        let header_line = if use_headers {
            line_of_offset(text, headers[i])
        } else {
            enclosing_header_line(text, &headers, span.start)
                .unwrap_or_else(|| line_of_offset(text, span.start))
        };
        let q = entry.into_inner();
        queries.push(query(&f, q, header_line, &mut seen, &mut errors));
    }

    if !errors.is_empty() {
        return Err(anyhow!(errors.join("\n")));
    }
    Ok(Catalog { queries })
}

/// A TOML syntax or type error at its line, naming the `[[query]]` it is in.
fn toml_error(e: &toml::de::Error, text: &str, fname: &str, headers: &[usize]) -> anyhow::Error {
    let msg = e.message().trim().to_string();
    match e.span() {
        Some(span) => {
            let line = line_of_offset(text, span.start);
            let mut m = format!("{fname}:{line}: {msg}");
            if let Some(h) = enclosing_header_line(text, headers, span.start) {
                if h != line {
                    m.push_str(&format!(" (in the [[query]] at {fname}:{h})"));
                }
            }
            anyhow!(m)
        }
        None => anyhow!("{fname}: {msg}"),
    }
}

/// The catalog file being parsed.
struct FileCtx<'a> {
    text: &'a str,
    file: &'a Path,
    fname: &'a str,
}

/// One `[[query]]` (its header at `header_line`); `seen` holds the names so far and the
/// line of each.
fn query(
    f: &FileCtx,
    q: RawQuery,
    header_line: usize,
    seen: &mut HashMap<String, usize>,
    errors: &mut Vec<String>,
) -> QuerySpec {
    let (text, fname) = (f.text, f.fname);
    let at = |offset: usize| format!("{fname}:{}", line_of_offset(text, offset));
    let name = q.name.get_ref().trim().to_string();
    let name_at = at(q.name.span().start);

    if name.is_empty() || !is_snake_case(&name) {
        errors.push(format!(
            "{name_at}: query name `{name}` must be snake_case ([a-z][a-z0-9_]*)"
        ));
    }
    if let Some(&first) = seen.get(&name) {
        errors.push(format!(
            "{name_at}: duplicated query name `{name}` (first at {fname}:{first}, again at line {})",
            line_of_offset(text, q.name.span().start)
        ));
    } else {
        seen.insert(name.clone(), line_of_offset(text, q.name.span().start));
    }
    if q.description.trim().is_empty() {
        errors.push(format!(
            "{fname}:{header_line}: query `{name}`: description is empty"
        ));
    }

    let mut params = Vec::with_capacity(q.params.len());
    for p in &q.params {
        match p.get_ref().trim().parse::<Sampler>() {
            Ok(s) => params.push(s),
            Err(_) => errors.push(format!(
                "{}: query `{name}`: unknown sampler `{}` (valid: {})",
                at(p.span().start),
                p.get_ref(),
                Sampler::valid_names()
            )),
        }
    }

    let ctx = SqlCtx {
        text,
        fname,
        name: &name,
        params: &q.params,
    };
    ctx.check("sql", &q.sql, errors);
    if let Some(po) = &q.sql_policy_only {
        if q.role != Role::App {
            errors.push(format!(
                "{}: query `{name}`: sql_policy_only is for app queries only (role is {})",
                at(po.span().start),
                q.role
            ));
        }
        ctx.check("sql_policy_only", po, errors);
    }

    QuerySpec {
        name,
        description: q.description.trim().to_string(),
        role: q.role,
        kind: q.kind,
        tags: q.tags,
        params,
        sql: q.sql.into_inner().trim().to_string(),
        sql_policy_only: q.sql_policy_only.map(|s| s.into_inner().trim().to_string()),
        line: header_line,
        file: f.file.to_path_buf(),
    }
}

struct SqlCtx<'a> {
    text: &'a str,
    fname: &'a str,
    name: &'a str,
    params: &'a [Spanned<String>],
}

impl SqlCtx<'_> {
    /// Every `$n` has a param and every param is referenced.
    fn check(&self, field: &str, sql: &Spanned<String>, errors: &mut Vec<String>) {
        let (text, fname, name, params) = (self.text, self.fname, self.name, self.params);
        let at = |offset: usize| format!("{fname}:{}", line_of_offset(text, offset));
        if sql.get_ref().trim().is_empty() {
            errors.push(format!(
                "{}: query `{name}`: {field} is empty",
                at(sql.span().start)
            ));
            return;
        }
        let refs = param_refs(sql.get_ref());
        for &(n, off) in &refs {
            if n == 0 || n > params.len() {
                errors.push(format!(
                    "{fname}:{}: query `{name}`: {field} uses ${n} but params has {} entr{}",
                    line_in_string(text, sql.span(), sql.get_ref(), off),
                    params.len(),
                    if params.len() == 1 { "y" } else { "ies" }
                ));
            }
        }
        for (i, p) in params.iter().enumerate() {
            if !refs.iter().any(|&(n, _)| n == i + 1) {
                errors.push(format!(
                    "{}: query `{name}`: param {} (`{}`) is never referenced as ${} in {field}",
                    at(p.span().start),
                    i + 1,
                    p.get_ref(),
                    i + 1
                ));
            }
        }
    }
}

fn is_snake_case(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

/// File line of byte `offset` of a string value whose literal spans `span` in `text`.
fn line_in_string(text: &str, span: Range<usize>, value: &str, offset: usize) -> usize {
    let raw = &text[span.start.min(text.len())..span.end.min(text.len())];
    let mut line = line_of_offset(text, span.start);
    // A newline right after an opening `"""`/`'''` is not part of the value.
    if (raw.starts_with("\"\"\"") || raw.starts_with("'''"))
        && (raw[3..].starts_with('\n') || raw[3..].starts_with("\r\n"))
    {
        line += 1;
    }
    line + value[..offset.min(value.len())].matches('\n').count()
}

/// `$n` parameter references in SQL, with their byte offsets, skipping string literals,
/// quoted identifiers, dollar-quoted strings and comments.
pub(super) fn param_refs(sql: &str) -> Vec<(usize, usize)> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' => {
                let q = b[i];
                i += 1;
                while i < b.len() {
                    if b[i] == q {
                        if i + 1 < b.len() && b[i + 1] == q {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 1;
                i += 2;
                while i < b.len() && depth > 0 {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
            }
            b'$' => {
                let start = i;
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                if j > i + 1 {
                    // $n, unless it is part of an identifier (e.g. a$1): check the previous byte.
                    let ident_before =
                        start > 0 && (b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_');
                    if !ident_before {
                        if let Ok(n) = sql[i + 1..j].parse::<usize>() {
                            out.push((n, start));
                        }
                    }
                    i = j;
                    continue;
                }
                // Dollar quote: $tag$ … $tag$ (tag empty or an identifier).
                let mut k = i + 1;
                while k < b.len() && (b[k].is_ascii_alphanumeric() || b[k] == b'_') {
                    k += 1;
                }
                let ident_before =
                    start > 0 && (b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_');
                if k < b.len() && b[k] == b'$' && !ident_before {
                    let tag = &sql[i..=k];
                    match sql[k + 1..].find(tag) {
                        Some(end) => i = k + 1 + end + tag.len(),
                        None => i = b.len(),
                    }
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out
}
