use std::path::{Path, PathBuf};

use super::*;

fn shipped() -> Catalog {
    load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/queries.toml"))
        .expect("shipped catalog loads")
}

/// Writes `text` to `<tempdir>/queries.toml` and loads it; returns the error text.
fn load_err(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("queries.toml");
    std::fs::write(&path, text).unwrap();
    match load(&path) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => format!("{e:#}"),
    }
}

/// `queries.toml:<line>` followed by something that is not a digit.
fn has_line(err: &str, line: usize) -> bool {
    let pat = format!("queries.toml:{line}");
    err.match_indices(&pat)
        .any(|(i, _)| !err[i + pat.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

const GOOD: &str = r#"# a comment
[[query]]
name = "one"
description = "first"
role = "app"
kind = "read"
tags = ["x"]
params = ["user"]
sql = """
SELECT 1 WHERE $1::uuid IS NOT NULL
"""
"#;

#[test]
fn shipped_catalog_loads_and_covers_the_issues() {
    let c = shipped();
    assert!(c.queries.len() >= 26, "only {} queries", c.queries.len());
    for tag in COVERAGE_TAGS {
        assert!(!c.with_tag(tag).is_empty(), "no query tagged {tag}");
    }
    for q in &c.queries {
        if q.role == Role::Analytics {
            assert!(
                q.has_tag("analytics"),
                "{} is analytics without the tag",
                q.name
            );
        }
        assert!(
            !q.sql.contains("now()") || q.kind == Kind::Write,
            "{} reads with now()",
            q.name
        );
        assert!(
            !q.sql.contains("storybench_flat") && !q.sql.contains("public.api_usage"),
            "{} qualifies api_usage",
            q.name
        );
        if q.sql.contains("api_usage") {
            assert!(
                q.has_tag("api_usage"),
                "{} reads api_usage without the tag",
                q.name
            );
        }
        assert!(q.file.ends_with("queries.toml"));
    }
    assert!(c
        .with_tag("leakproof_trap")
        .iter()
        .all(|q| q.role == Role::App));
    assert!(c.by_role(Role::App).len() >= 8);
    assert!(c.queries.iter().filter(|q| q.kind == Kind::Write).count() >= 6);
    let recent = c.get("recent_stories").unwrap();
    assert_eq!(recent.params, vec![Sampler::User]);
    assert!(recent.sql_policy_only.is_some());
    assert!(recent.sql.contains("LIMIT 10"));
    // line points at the [[query]] header
    let text = std::fs::read_to_string(&recent.file).unwrap();
    assert_eq!(
        text.lines().nth(recent.line - 1).unwrap().trim(),
        "[[query]]"
    );
}

#[test]
fn select_and_filters() {
    let c = shipped();
    let names = vec!["dau".to_string(), "recent_stories".to_string()];
    let sel = c.select(&names).unwrap();
    assert_eq!(
        sel.iter().map(|q| q.name.as_str()).collect::<Vec<_>>(),
        ["dau", "recent_stories"]
    );
    assert_eq!(c.select(&[]).unwrap().len(), c.queries.len());
    let err = c.select(&["nope".to_string()]).unwrap_err().to_string();
    assert!(
        err.contains("nope") && err.contains("recent_stories"),
        "{err}"
    );
    assert!(c
        .by_role(Role::Analytics)
        .iter()
        .all(|q| q.role == Role::Analytics));
}

#[test]
fn good_minimal_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queries.toml");
    std::fs::write(&path, GOOD).unwrap();
    let c = load(&path).unwrap();
    assert_eq!(c.queries.len(), 1);
    assert_eq!(c.queries[0].line, 2);
    assert_eq!(c.queries[0].sql, "SELECT 1 WHERE $1::uuid IS NOT NULL");
}

#[test]
fn syntax_error_names_line() {
    let text = format!("{GOOD}\n[[query]]\nname = \"two\nrole = \"app\"\n");
    let err = load_err(&text);
    assert!(has_line(&err, 14), "{err}");
}

#[test]
fn unknown_sampler_names_line_and_valid_ones() {
    let text = GOOD.replace(r#"params = ["user"]"#, r#"params = ["usr"]"#);
    let err = load_err(&text);
    assert!(has_line(&err, 8), "{err}");
    assert!(
        err.contains("`usr`") && err.contains("story_of_user"),
        "{err}"
    );
}

#[test]
fn duplicated_name_names_both_lines() {
    let text = format!("{GOOD}\n{}", GOOD.replace("# a comment\n", ""));
    let err = load_err(&text);
    // second entry: header at 14, name at 15
    assert!(has_line(&err, 14), "{err}");
    assert!(has_line(&err, 3), "{err}");
    assert!(err.contains("duplicated"), "{err}");
}

#[test]
fn unknown_key_names_line() {
    let text = GOOD.replace("kind = \"read\"\n", "kind = \"read\"\nweight = 3\n");
    let err = load_err(&text);
    assert!(has_line(&err, 7), "{err}");
    assert!(err.contains("weight"), "{err}");
}

#[test]
fn missing_field_names_entry() {
    let text = GOOD.replace("kind = \"read\"\n", "");
    let err = load_err(&text);
    assert!(has_line(&err, 2) && err.contains("kind"), "{err}");
}

#[test]
fn dollar_without_param_names_line() {
    let text = GOOD.replace("IS NOT NULL", "IS NOT NULL\n  AND $2 > 0");
    let err = load_err(&text);
    assert!(has_line(&err, 11) && err.contains("$2"), "{err}");
}

#[test]
fn unreferenced_param_names_line() {
    let text = GOOD.replace(
        r#"params = ["user"]"#,
        "params = [\n  \"user\",\n  \"since_7d\",\n]",
    );
    let err = load_err(&text);
    assert!(has_line(&err, 10) && err.contains("since_7d"), "{err}");
}

#[test]
fn policy_only_is_for_app_and_checked() {
    let text = GOOD.replace("role = \"app\"", "role = \"service\"")
        + "sql_policy_only = \"SELECT $1::uuid\"\n";
    let err = load_err(&text);
    assert!(
        has_line(&err, 12) && err.contains("app queries only"),
        "{err}"
    );
    let text = GOOD.to_string() + "sql_policy_only = \"SELECT 1\"\n";
    let err = load_err(&text);
    assert!(
        err.contains("never referenced") && err.contains("sql_policy_only"),
        "{err}"
    );
}

#[test]
fn param_scanner_skips_literals_and_comments() {
    use super::validate::param_refs;
    let refs: Vec<usize> =
        param_refs("SELECT '$1', \"$2\", $$ $3 $$, $q$ $4 $q$ -- $5\n /* $6 */ $7, x$8, $10")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
    assert_eq!(refs, vec![7, 10]);
}

#[test]
fn sampler_names_roundtrip() {
    for s in Sampler::ALL {
        assert_eq!(s.name().parse::<Sampler>().unwrap(), s);
    }
    let err = "nope".parse::<Sampler>().unwrap_err().to_string();
    assert!(err.contains("hour_start"));
}
