//! Advice about the schema, checked against the dataset: `advise citus` reads what Citus
//! would refuse or need (on a pristine copy, each policy set applied in turn).

pub mod citus;
pub mod indexes;

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
