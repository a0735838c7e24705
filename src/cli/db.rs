//! `storybench db …` and `storybench schema …`.

use super::{DbCommand, SchemaCommand};
use crate::cluster::{ClusterState, EmbeddedCluster};
use crate::target::{DbArgs, Target};
use anyhow::{bail, Result};

pub async fn run(args: &DbArgs, cmd: DbCommand) -> Result<i32> {
    if args.database_url.is_some() {
        bail!("`storybench db` manages the embedded cluster; it does not apply to --database-url / DATABASE_URL");
    }
    let cluster = EmbeddedCluster::new(&args.data_dir, args.port)?;
    match cmd {
        DbCommand::Start => {
            let started = cluster.ensure_running()?;
            eprintln!(
                "{} embedded PostgreSQL {} (data directory {}, log {})",
                if started {
                    "started"
                } else {
                    "already running:"
                },
                cluster.bins.major,
                cluster.data_dir.display(),
                cluster.log_path().display()
            );
            println!("{}", cluster.url()?);
        }
        DbCommand::Stop => {
            let was = cluster.state()?;
            cluster.stop()?;
            println!(
                "{}",
                if was == ClusterState::Running {
                    "stopped"
                } else {
                    "not running"
                }
            );
        }
        DbCommand::Status => {
            let state = cluster.state()?;
            match state {
                ClusterState::Running => println!("running {}", cluster.url()?),
                ClusterState::Stopped => println!("stopped ({})", cluster.data_dir.display()),
                ClusterState::NotInitialized => {
                    println!("not initialized ({})", cluster.data_dir.display())
                }
            }
            return Ok(if state == ClusterState::Running { 0 } else { 3 });
        }
        DbCommand::Url => {
            if cluster.state()? == ClusterState::NotInitialized {
                bail!(
                    "the embedded cluster at {} is not initialized; run `storybench db start`",
                    cluster.data_dir.display()
                );
            }
            println!("{}", cluster.url()?);
        }
    }
    Ok(0)
}

pub async fn schema(args: &DbArgs, cmd: SchemaCommand) -> Result<i32> {
    if let SchemaCommand::Apply(v) = &cmd {
        v.request().validate()?;
    }
    let target = Target::resolve(args)?;
    let outcome = schema_on(&target, cmd).await;
    target.finish()?;
    outcome
}

async fn schema_on(target: &Target, cmd: SchemaCommand) -> Result<i32> {
    let mut conn = target.connect().await?;
    match cmd {
        SchemaCommand::Apply(v) => {
            let anchor = chrono::Utc::now().date_naive();
            let variant = crate::schema::apply(&mut conn, &v.request(), anchor).await?;
            println!(
                "schema applied: indexes {} · policies {} · api_usage {}",
                variant.indexes, variant.policies, variant.api_usage
            );
        }
        SchemaCommand::Reset => {
            let dropped = crate::schema::reset(&mut conn).await?;
            println!("dropped {dropped} storybench objects");
        }
        SchemaCommand::Show => {
            crate::schema::check_ownership(&mut conn).await?;
            match crate::schema::current_variant(&mut conn).await? {
                Some(v) => println!(
                    "indexes {} · policies {} · api_usage {}",
                    v.indexes, v.policies, v.api_usage
                ),
                None => println!("no storybench schema in this database"),
            }
            for i in crate::schema::index_inventory(&mut conn).await? {
                println!("index  {i}");
            }
            for p in crate::schema::policy_inventory(&mut conn).await? {
                println!("policy {p}");
            }
        }
    }
    Ok(0)
}
