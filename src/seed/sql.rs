//! The seeder's own SQL, from `seed/queries.toml` and `seed/fingerprint.sql` (compiled in:
//! they are part of the tool, unlike the profiles).

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedQueries {
    pub table_sizes: String,
    pub not_valid_constraints: String,
    pub disabled_triggers: String,
    pub toast_compression: String,
    pub bulk_session: Vec<String>,
    pub set_compression: String,
    pub set_compression_method: String,
    pub steady_state_tables: Vec<String>,
    pub vacuum_tables: Vec<String>,
    pub set_utc: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    queries: SeedQueries,
}

crate::sql_file!(fn file() -> File = "seed/queries.toml");

pub fn queries() -> &'static SeedQueries {
    &file().queries
}

pub const FINGERPRINT: &str = include_str!("../../seed/fingerprint.sql");

/// Wraps compiled-in SQL for sqlx.
pub fn q(text: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(text.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn seed_queries_parse() {
        assert_eq!(super::queries().steady_state_tables.len(), 14);
    }
}
