//! Schema advisories: the rules of Supabase's database linter (splinter) that matter for this
//! schema, and the policy forms its RLS performance guide warns about, read from the catalog
//! of a pristine copy with the chosen variant applied (SQL in `schema/advise_lint.toml`).

use crate::sql_files::sql;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;

crate::sql_file!(pub(super) fn file() -> File = "schema/advise_lint.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct File {
    pub(super) queries: Queries,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Queries {
    auth_per_row: String,
    multiple_permissive: String,
    unindexed_foreign_keys: String,
    mutable_search_path: String,
    rls_no_policy: String,
    exposed_security_definer: String,
    pub(super) fix_auth_per_row: String,
    pub(super) fix_multiple_permissive: String,
    pub(super) foreign_key_cases: String,
    pub(super) local_timeout: String,
    pub(super) explain_lookup: String,
    pub(super) fix_join_order: String,
}

#[cfg(test)]
pub(crate) fn load_all() {
    file();
}

/// One rule, named as splinter names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    AuthRlsInitplan,
    MultiplePermissivePolicies,
    UnindexedForeignKeys,
    FunctionSearchPathMutable,
    RlsEnabledNoPolicy,
    ExposedSecurityDefiner,
    /// Found from the plans (`advise schema --measure`), not the catalog.
    NonLeakproofUnderRls,
    /// Found from the plans: a read whose join order the policies change (`join_order`).
    RlsJoinOrder,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::AuthRlsInitplan => "auth_rls_initplan",
            Rule::MultiplePermissivePolicies => "multiple_permissive_policies",
            Rule::UnindexedForeignKeys => "unindexed_foreign_keys",
            Rule::FunctionSearchPathMutable => "function_search_path_mutable",
            Rule::RlsEnabledNoPolicy => "rls_enabled_no_policy",
            Rule::ExposedSecurityDefiner => "security_definer_in_exposed_schema",
            Rule::NonLeakproofUnderRls => "non_leakproof_filter_under_rls",
            Rule::RlsJoinOrder => "rls_changes_join_order",
        }
    }

    /// What to do about it.
    pub fn fix(self) -> &'static str {
        match self {
            Rule::AuthRlsInitplan => {
                "wrap the call in a sub-select, (select auth.uid()), so it runs once per statement (policy set `initplan`)"
            }
            Rule::MultiplePermissivePolicies => {
                "one permissive policy per role and action: scope policies with TO, split FOR ALL into the writes it is for"
            }
            Rule::UnindexedForeignKeys => {
                "an index leading with the foreign key's columns, if parents are deleted or their keys updated"
            }
            Rule::FunctionSearchPathMutable => "SET search_path = '' and schema-qualified names",
            Rule::RlsEnabledNoPolicy => {
                "a policy, or the table moved to a schema the API does not expose"
            }
            Rule::ExposedSecurityDefiner => {
                "move it to a schema the API does not expose, or make it SECURITY INVOKER"
            }
            Rule::NonLeakproofUnderRls => {
                "a leakproof form of the filter (equality or range on a column, an index the user's own rows are reached by first), or accept the filter above the policy"
            }
            Rule::RlsJoinOrder => {
                "the leading table's SELECT policy as `user_id IN (SELECT auth.uid())`: the planner then stops counting the policy as a second, independent filter on the join"
            }
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Advisory {
    pub rule: Rule,
    pub object: String,
    pub detail: String,
}

/// Every advisory of the connected database's current schema.
pub async fn lint(conn: &mut PgConnection) -> Result<Vec<Advisory>> {
    let q = &file().queries;
    let rules = [
        (Rule::AuthRlsInitplan, &q.auth_per_row),
        (Rule::MultiplePermissivePolicies, &q.multiple_permissive),
        (Rule::UnindexedForeignKeys, &q.unindexed_foreign_keys),
        (Rule::FunctionSearchPathMutable, &q.mutable_search_path),
        (Rule::RlsEnabledNoPolicy, &q.rls_no_policy),
        (Rule::ExposedSecurityDefiner, &q.exposed_security_definer),
    ];
    let mut out = Vec::new();
    for (rule, query) in rules {
        let rows: Vec<(String, String)> = sqlx::query_as(sql(query)).fetch_all(&mut *conn).await?;
        out.extend(rows.into_iter().map(|(object, detail)| Advisory {
            rule,
            object,
            detail,
        }));
    }
    Ok(out)
}
