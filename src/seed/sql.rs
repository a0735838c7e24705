//! The seeder's own SQL, from `seed/queries.toml` and `seed/fingerprint.sql` (compiled in:
//! they are part of the tool, unlike the profiles).

use serde::Deserialize;
use std::sync::OnceLock;

#[derive(Deserialize)]
pub struct SeedQueries {
    pub table_sizes: String,
    pub not_valid_constraints: String,
    pub disabled_triggers: String,
    pub toast_compression: String,
    pub bulk_session: Vec<String>,
    pub set_compression: String,
    pub set_compression_method: String,
    pub steady_state_tables: Vec<String>,
    pub set_utc: String,
}

#[derive(Deserialize)]
struct File {
    queries: SeedQueries,
}

pub fn queries() -> &'static SeedQueries {
    static Q: OnceLock<SeedQueries> = OnceLock::new();
    Q.get_or_init(|| {
        toml::from_str::<File>(include_str!("../../seed/queries.toml"))
            .expect("seed/queries.toml is valid")
            .queries
    })
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
