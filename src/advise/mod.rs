//! Advice about the schema, checked against the dataset on pristine copies: `advise citus`
//! reads what Citus would refuse or need (each policy set applied in turn), `advise indexes`
//! proves index changes by measurement, `advise schema` lints a variant (`lint`).

pub mod citus;
pub mod costs;
pub mod indexes;
pub mod join_order;
pub mod lint;

use crate::target::Target;
use anyhow::Result;

/// The Citus check on `target` (a pristine copy: policy sets are switched on it).
pub async fn citus_check(target: &Target, policy_sets: &[String]) -> Result<citus::CitusSection> {
    let mut conn = target.connect().await?;
    let mut section = citus::check_schema(&mut conn).await?;
    for set in policy_sets {
        crate::interrupt::check()?;
        crate::schema::set_policies(&mut conn, set).await?;
        citus::check_policies(&mut conn, set, &mut section).await?;
    }
    Ok(section)
}

/// The schema advisories of a variant (index strategy, policy set) applied on `target` (a
/// pristine copy: the variant is switched on it).
pub async fn lint_variant(
    target: &Target,
    indexes: &str,
    policies: &str,
) -> Result<Vec<lint::Advisory>> {
    let mut conn = target.connect().await?;
    crate::schema::set_indexes(&mut conn, indexes).await?;
    crate::schema::set_policies(&mut conn, policies).await?;
    lint::lint(&mut conn).await
}
