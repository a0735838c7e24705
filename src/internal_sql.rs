//! storybench's own introspection and bookkeeping queries, from `schema/internal.toml`.
//! They are part of the tool (not user-editable), so the file is compiled in.

use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(serde::Deserialize)]
struct InternalFile {
    queries: HashMap<String, String>,
}

static QUERIES: OnceLock<HashMap<String, String>> = OnceLock::new();

/// The SQL of an internal query. Panics only on a programming error (an unknown name or a
/// broken compiled-in file), which the unit test below catches.
pub fn sql(name: &str) -> sqlx::AssertSqlSafe<&'static str> {
    let map = QUERIES.get_or_init(|| {
        let file: InternalFile = toml::from_str(include_str!("../schema/internal.toml"))
            .expect("schema/internal.toml is valid TOML");
        file.queries
    });
    let text = map
        .get(name)
        .unwrap_or_else(|| panic!("internal query {name:?} is missing from schema/internal.toml"));
    sqlx::AssertSqlSafe(text.as_str())
}

#[cfg(test)]
mod tests {
    #[test]
    fn internal_queries_parse() {
        let _ = super::sql("foreign_objects");
        let _ = super::sql("set_meta");
    }
}
