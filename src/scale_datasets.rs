//! One sealed dataset per scale, for `capacity --scales`: each scale lives in its own
//! database (`sbscale_<profile>_<scale>_s<seed>`, commented as storybench's), seeded once and
//! reused while its inputs match and it verifies untouched. The command's own database is
//! used as is when it already holds the scale asked for; it is never reseeded to another
//! scale. A database of that name storybench did not make is refused, not overwritten.

use crate::internal_sql::{q, sql};
use crate::seed::{self, DatasetInfo, SeedOptions, SeedReport};
use crate::target::Target;
use anyhow::{bail, Context, Result};
use sqlx::{AssertSqlSafe, Executor};

/// The comment that marks a database as one of storybench's scale datasets.
pub const COMMENT: &str = "storybench dataset at one scale (capacity --scales)";

/// A scale's dataset, ready to be copied by the measuring stages.
pub struct ScaleDataset {
    pub target: Target,
    pub database: String,
    pub info: DatasetInfo,
    /// The seed's report when this command seeded it (None: reused).
    pub seeded: Option<SeedReport>,
    /// pg_database_size of the dataset.
    pub bytes: i64,
}

/// The database a scale's dataset lives in (a valid identifier, ≤ 63 bytes).
pub fn database_name(profile: &str, scale: f64, seed: u64) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect()
    };
    let scale = clean(&format!("{scale}").replace('.', "p"));
    let mut name = format!("sbscale_{}_{scale}_s{seed}", clean(profile));
    name.truncate(63);
    name
}

fn matches(d: &DatasetInfo, o: &SeedOptions) -> bool {
    d.status == "complete"
        && d.profile == o.profile
        && d.scale == o.scale
        && d.seed == o.seed
        && d.anchor == o.anchor
}

/// The dataset of `opts.scale`: `base`'s own when it matches, else the scale's database,
/// seeded when absent, incomplete, of other inputs or written to since its seal.
pub async fn ensure(base: &Target, opts: &SeedOptions) -> Result<ScaleDataset> {
    let mut conn = base.connect().await?;
    if let Some(mut d) = seed::dataset(&mut conn).await?.filter(|d| matches(d, opts)) {
        if let Ok(v) = crate::pristine::verify(&mut conn, &d).await {
            d.verified = Some(v);
            let database: String = sqlx::query_scalar(sql(&q().current_database))
                .fetch_one(&mut conn)
                .await?;
            let bytes = database_bytes(base).await?;
            return Ok(ScaleDataset {
                target: base.on_database(&database),
                database,
                info: d,
                seeded: None,
                bytes,
            });
        }
    }
    drop(conn);
    let name = database_name(&opts.profile, opts.scale, opts.seed);
    let admin = crate::pristine::maintenance(base).await?;
    let mut conn = admin.connect().await?;
    let exists: bool = sqlx::query_scalar(sql(&q().database_exists))
        .bind(&name)
        .fetch_one(&mut conn)
        .await?;
    let target = base.on_database(&name);
    if exists {
        let comment: String = sqlx::query_scalar(sql(&q().scale_database_comment))
            .bind(&name)
            .fetch_one(&mut conn)
            .await?;
        if comment != COMMENT {
            bail!(
                "a database named {name} exists and is not one of storybench's scale datasets \
                 (its comment is {comment:?}); nothing was changed. Drop or rename it, or use \
                 another --seed."
            );
        }
        let mut c = target.connect().await?;
        match seed::dataset(&mut c).await? {
            Some(mut d) if matches(&d, opts) => match crate::pristine::verify(&mut c, &d).await {
                Ok(v) => {
                    d.verified = Some(v);
                    drop(c);
                    let bytes = database_bytes(&target).await?;
                    return Ok(ScaleDataset {
                        target,
                        database: name,
                        info: d,
                        seeded: None,
                        bytes,
                    });
                }
                Err(e) => crate::say!("  {name}: {e:#}\n  seeding it again"),
            },
            Some(d) => crate::say!(
                "  {name} holds profile {} × {} (seed {}, anchor {}, {}): seeding the one asked for",
                d.profile,
                d.scale,
                d.seed,
                d.anchor,
                d.status
            ),
            None => crate::say!("  {name} holds no complete dataset: seeding it"),
        }
    } else {
        let create: String = sqlx::query_scalar(sql(&q().scratch_create))
            .bind(&name)
            .fetch_one(&mut conn)
            .await?;
        conn.execute(AssertSqlSafe(create))
            .await
            .with_context(|| format!("creating the scale dataset's database {name}"))?;
        let stmt: String = sqlx::query_scalar(sql(&q().copy_comment))
            .bind(&name)
            .bind(COMMENT)
            .fetch_one(&mut conn)
            .await?;
        conn.execute(AssertSqlSafe(stmt)).await?;
        crate::say!(
            "  seeding scale {} into its own database {name}",
            opts.scale
        );
    }
    drop(conn);
    let opts = SeedOptions {
        reset: true, // the database is storybench's own scale dataset
        ..opts.clone()
    };
    let (info, report) = seed::seed(&target, &opts).await?;
    let bytes = database_bytes(&target).await?;
    Ok(ScaleDataset {
        target,
        database: name,
        info,
        seeded: Some(report),
        bytes,
    })
}

async fn database_bytes(t: &Target) -> Result<i64> {
    let mut conn = t.connect().await?;
    Ok(sqlx::query_scalar(sql(&q().database_bytes))
        .fetch_one(&mut conn)
        .await?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_identifiers_per_profile_scale_and_seed() {
        assert_eq!(super::database_name("tiny", 1.0, 42), "sbscale_tiny_1_s42");
        assert_eq!(
            super::database_name("default", 0.5, 7),
            "sbscale_default_0p5_s7"
        );
        assert_ne!(
            super::database_name("tiny", 3.0, 42),
            super::database_name("tiny", 1.0, 42)
        );
    }
}
