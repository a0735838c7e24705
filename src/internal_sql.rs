//! storybench's own introspection and bookkeeping queries, from `schema/internal.toml`.
//! They are part of the tool (not user-editable), so the file is compiled in.

pub use crate::sql_files::sql;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    queries: InternalQueries,
}

/// One field per query of `schema/internal.toml`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InternalQueries {
    pub foreign_objects: String,
    pub has_meta: String,
    pub owned_objects: String,
    pub objects_in_schemas: String,
    pub record_owned: String,
    pub existing_roles: String,
    pub get_meta: String,
    pub set_meta: String,
    pub index_inventory: String,
    pub policy_inventory: String,
    pub create_partitions: String,
    pub server_settings: String,
    pub server_version: String,
    pub create_pg_stat_statements: String,
    pub has_pg_stat_statements_preloaded: String,
    pub drop_owned: String,
    pub drop_secondary_indexes: String,
    pub drop_policies: String,
    pub begin_request: String,
    pub heap_sizes: String,
    pub copy_create: String,
    pub checkpoint: String,
    pub autovacuum_workers: String,
    pub scratch_create: String,
    pub copy_comment: String,
    pub database_exists: String,
    pub sessions_on_database: String,
    pub copy_drop: String,
    pub copy_list: String,
    pub current_database: String,
    pub scale_database_comment: String,
    pub database_bytes: String,
    pub dataset_writes: String,
    pub try_advisory_lock: String,
    pub try_advisory_lock_shared: String,
    pub advisory_lock_holder: String,
}

crate::sql_file!(fn file() -> File = "schema/internal.toml");

/// The queries of `schema/internal.toml`.
pub fn q() -> &'static InternalQueries {
    &file().queries
}

#[cfg(test)]
pub(crate) fn load_all() {
    let _ = q();
}
