//! storybench's own SQL, kept in TOML files under `schema/`, `seed/` and `scenarios/`, read
//! into typed structs: a query is a field, so a misspelt name does not compile, and every
//! struct denies unknown keys, so the `every_sql_file_matches_its_type` test catches a file
//! and its struct drifting apart. The files are compiled in (they are part of the tool).

use serde::de::DeserializeOwned;

/// Declares `fn $name() -> &'static $ty`, parsing the compiled-in file (path relative to the
/// crate root) on first use.
#[macro_export]
macro_rules! sql_file {
    ($(#[$meta:meta])* $vis:vis fn $name:ident() -> $ty:ty = $path:literal) => {
        $(#[$meta])*
        $vis fn $name() -> &'static $ty {
            static FILE: std::sync::OnceLock<$ty> = std::sync::OnceLock::new();
            FILE.get_or_init(|| {
                $crate::sql_files::parse(
                    $path,
                    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $path)),
                )
            })
        }
    };
}

/// Parses a compiled-in file. A broken file is a programming error the tests catch.
pub fn parse<T: DeserializeOwned>(path: &str, text: &str) -> T {
    toml::from_str(text).unwrap_or_else(|e| panic!("{path} does not match its type: {e}"))
}

/// Compiled-in SQL for sqlx (it is storybench's own text, never user input).
pub fn sql(text: &'static str) -> sqlx::AssertSqlSafe<&'static str> {
    sqlx::AssertSqlSafe(text)
}

/// The one substitution mechanism: fills `{name}` placeholders of a template with values
/// storybench computes itself (identifiers it quoted, bounds, a catalog query's text
/// wrapped by EXPLAIN). Every placeholder must be given and every value used, so a template
/// and its caller cannot drift apart silently; values are never user input.
pub fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    for p in placeholders(template) {
        assert!(
            vars.iter().any(|(k, _)| *k == p),
            "placeholder {{{p}}} of the template is not given"
        );
    }
    let mut text = template.to_string();
    for (k, v) in vars {
        let key = format!("{{{k}}}");
        assert!(
            text.contains(&key),
            "placeholder {key} is not in the template"
        );
        text = text.replace(&key, v);
    }
    text
}

/// The `{word}` placeholders of a template (lower-case words and underscores only, so JSON
/// and array literals such as `'{}'` are not mistaken for one).
fn placeholders(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        match after.find('}') {
            Some(j)
                if !after[..j].is_empty()
                    && after[..j]
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_') =>
            {
                out.push(&after[..j]);
                rest = &after[j + 1..];
            }
            _ => rest = after,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_every_placeholder() {
        let t = "EXPLAIN (FORMAT JSON) {query}";
        assert_eq!(
            fill(t, &[("query", "SELECT 1")]),
            "EXPLAIN (FORMAT JSON) SELECT 1"
        );
        assert_eq!(placeholders("a {x} {y_z} {1} {}"), vec!["x", "y_z"]);
    }

    #[test]
    #[should_panic(expected = "placeholder {query} of the template is not given")]
    fn refuses_a_template_left_unfilled() {
        fill("EXPLAIN {query}", &[]);
    }

    #[test]
    #[should_panic(expected = "placeholder {name} is not in the template")]
    fn refuses_a_value_the_template_does_not_take() {
        fill("SELECT 1", &[("name", "x")]);
    }

    #[test]
    fn every_sql_file_matches_its_type() {
        crate::internal_sql::load_all();
        crate::seed::sql::queries();
        crate::params::queries();
        crate::measure::partitions::load_all();
        crate::measure::ops::load_all();
        crate::pooler::load_all();
        crate::advise::citus::load_all();
        crate::advise::indexes::load_all();
        crate::advise::lint::load_all();
        crate::measure::server_view::load_all();
        crate::measure::load::capacity::probe::load_all();
        crate::measure::load::capacity::sharded::load_all();
        crate::seed::generate::load_all();
        crate::measure::settings::load_all();
        crate::measure::monitoring::load_all();
    }
}
