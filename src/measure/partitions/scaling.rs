//! The scaling curve: planning and execution time of representative queries as the
//! number of partitions grows over the same rows (flat, monthly, weekly, daily copies of
//! api_usage in the scratch schema, one at a time), and the crossover where partitioning
//! starts to cost more than it saves.

use super::probe::{self, Arm, GENERIC};
use super::scratch::{self, Bound};
use super::types::*;
use super::{queries, roles, PartitionsOptions};
use crate::catalog::{Catalog, QuerySpec};
use crate::latency::Latency;
use crate::measure::exec::{principal_for, RequestContext};
use crate::params::{rng_for, ParamValue, Population};
use crate::sql_files::sql;
use anyhow::{Context, Result};
use chrono::{DateTime, Datelike, Duration as ChronoDuration, Months, NaiveDate, Utc};
use sqlx::postgres::PgConnection;
use std::time::Duration;
use uuid::Uuid;

/// How a copy is partitioned.
#[derive(Clone, Copy, Debug)]
pub enum Grain {
    Month,
    Week,
    Day,
}

fn utc(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()
}

/// Partition bounds at UTC midnight covering [first, last] (both row timestamps).
pub fn bounds(grain: Grain, first: DateTime<Utc>, last: DateTime<Utc>) -> Vec<Bound> {
    let day = first.date_naive();
    let mut start = match grain {
        Grain::Month => NaiveDate::from_ymd_opt(day.year(), day.month(), 1).expect("month start"),
        Grain::Week => day - ChronoDuration::days(day.weekday().num_days_from_monday() as i64),
        Grain::Day => day,
    };
    let mut out = Vec::new();
    while utc(start) <= last {
        let next = match grain {
            Grain::Month => start + Months::new(1),
            Grain::Week => start + ChronoDuration::days(7),
            Grain::Day => start + ChronoDuration::days(1),
        };
        let suffix = match grain {
            Grain::Month => format!("p{}", start.format("%Y%m")),
            Grain::Week => format!("w{}", start.format("%Y%m%d")),
            Grain::Day => format!("d{}", start.format("%Y%m%d")),
        };
        out.push(Bound {
            suffix,
            from: utc(start),
            to: utc(next),
        });
        start = next;
    }
    out
}

/// The scaling queries with their drawn parameters, the user they run as, and the request
/// context that points `api_usage` at the scratch copy.
struct Probes<'a> {
    specs: Vec<&'a QuerySpec>,
    drawn: Vec<Vec<ParamValue>>,
    user: Uuid,
    ctx: RequestContext,
}

pub async fn run(
    conn: &mut PgConnection,
    opts: &PartitionsOptions,
    catalog: &Catalog,
    population: &Population,
) -> Result<Scaling> {
    let (first, last, rows): (Option<DateTime<Utc>>, Option<DateTime<Utc>>, i64) =
        sqlx::query_as(sql(&queries().usage_span))
            .fetch_one(&mut *conn)
            .await?;
    let (Some(first), Some(last)) = (first, last) else {
        anyhow::bail!("api_usage is empty: no scaling curve to draw");
    };
    let probes = draw_probes(conn, opts, catalog, population).await?;
    let layouts = [
        ("flat", Vec::new()),
        ("monthly", bounds(Grain::Month, first, last)),
        ("weekly", bounds(Grain::Week, first, last)),
        ("daily", bounds(Grain::Day, first, last)),
    ];
    let mut out = Scaling {
        rows,
        repetitions: opts.scaling_repetitions.max(1),
        ..Default::default()
    };
    for (name, bounds) in &layouts {
        crate::interrupt::check()?;
        let load_seconds = scratch::create_copy(conn, TABLE, bounds)
            .await
            .with_context(|| format!("building the {name} copy"))?;
        let measured = measure_layout(conn, &probes, (name, bounds), load_seconds, &mut out).await;
        scratch::drop_copy(conn, TABLE).await?;
        measured?;
    }
    out.crossovers = crossovers(&out.points);
    Ok(out)
}

/// The table whose scratch copies the curve is drawn over.
const TABLE: &str = "api_usage";

async fn draw_probes<'a>(
    conn: &mut PgConnection,
    opts: &PartitionsOptions,
    catalog: &'a Catalog,
    population: &Population,
) -> Result<Probes<'a>> {
    let specs = catalog.select(&roles().scaling)?;
    let user = population.heavy();
    let mut drawn = Vec::new();
    for spec in &specs {
        let mut rng = rng_for(opts.seed, &format!("partitions:{}", spec.name));
        drawn.push(population.draw(conn, spec, user, &mut rng).await?);
    }
    let ctx = RequestContext {
        search_path: scratch::SEARCH_PATH.into(),
        statement_timeout: format!("{}ms", opts.statement_timeout.as_millis().max(1)),
    };
    Ok(Probes {
        specs,
        drawn,
        user,
        ctx,
    })
}

/// One layout's copy (already loaded): indexes, size, and every query's custom and generic
/// points on it.
async fn measure_layout(
    conn: &mut PgConnection,
    probes: &Probes<'_>,
    (name, bounds): (&str, &[Bound]),
    load_seconds: f64,
    out: &mut Scaling,
) -> Result<()> {
    let index_seconds = scratch::index_copy(conn, TABLE, !bounds.is_empty()).await?;
    let layout = ScalingLayout {
        name: name.to_string(),
        partitions: bounds.len().max(1),
        load_seconds,
        index_seconds,
        bytes: scratch::bytes(conn, TABLE).await?,
    };
    for (spec, params) in probes.specs.iter().zip(&probes.drawn) {
        let who = principal_for(spec, probes.user);
        // Guard: as the query's role, `api_usage` must name the scratch copy.
        let probe_arm = Arm {
            sql: "",
            params: &[],
            who: &who,
            ctx: &probes.ctx,
            settings: vec![],
        };
        if !probe::resolves_to(conn, &probe_arm, "storybench_scratch.api_usage").await? {
            anyhow::bail!(
                "api_usage does not resolve to the scratch copy for {}",
                spec.name
            );
        }
        for generic in [false, true] {
            crate::interrupt::check()?;
            let arm = Arm {
                sql: &spec.sql,
                params,
                who: &who,
                ctx: &probes.ctx,
                settings: if generic { vec![GENERIC] } else { vec![] },
            };
            let p = point(conn, &arm, generic, out.repetitions, !bounds.is_empty())
                .await
                .with_context(|| format!("{} on the {name} copy", spec.name))?;
            out.points.push(ScalingPoint {
                query: spec.name.clone(),
                mode: if generic { "generic" } else { "custom" }.into(),
                layout: name.to_string(),
                partitions: layout.partitions,
                ..p
            });
        }
    }
    crate::say!(
        "  scaling: {name} ({} partitions) loaded in {:.1} s",
        layout.partitions,
        layout.load_seconds
    );
    out.layouts.push(layout);
    Ok(())
}

/// Medians of EXPLAIN ANALYZE's planning and execution time over `reps` runs (after one
/// untimed run that warms the caches).
async fn point(
    conn: &mut PgConnection,
    arm: &Arm<'_>,
    generic: bool,
    reps: usize,
    partitioned: bool,
) -> Result<ScalingPoint> {
    let (mut planning, mut execution) = (Latency::new(), Latency::new());
    let mut p = ScalingPoint::default();
    for i in 0..=reps {
        let raw = probe::explain(conn, arm, generic).await?;
        let s = crate::plan::summarize(&raw)?;
        if s.partitions.is_some() != partitioned {
            anyhow::bail!("the plan's partitions do not match the scratch copy's layout");
        }
        if i == 0 {
            continue;
        }
        planning.record(Duration::from_secs_f64(s.planning_ms / 1000.0));
        execution.record(Duration::from_secs_f64(s.execution_ms / 1000.0));
        if let Some(parts) = &s.partitions {
            p.in_plan = parts.in_plan;
            p.scanned = parts.scanned;
        }
    }
    p.planning_ms = planning.percentile_ms(50.0);
    p.execution_ms = execution.percentile_ms(50.0);
    p.total_ms = p.planning_ms + p.execution_ms;
    Ok(p)
}

/// A partitioned total counts as dearer than flat only beyond this margin (timing noise).
const NOISE_MARGIN: f64 = 0.05;

/// Where partitioning starts to cost more than it saves, from measured (partition count,
/// planning + execution ms) points: the smallest count from which every measured point
/// is dearer than the flat total (by more than [`NOISE_MARGIN`]), interpolated linearly
/// between it and the cheaper point before it. Returns (count, kind).
pub fn crossover(flat_total: f64, points: &[(usize, f64)]) -> (Option<f64>, &'static str) {
    let mut pts = points.to_vec();
    pts.sort_by_key(|p| p.0);
    let dearer = |t: f64| t > flat_total * (1.0 + NOISE_MARGIN);
    let from = pts.iter().rposition(|p| !dearer(p.1)).map_or(0, |i| i + 1);
    match from {
        i if i == pts.len() => (None, "always_cheaper"),
        0 => (None, "never_cheaper"),
        i => {
            let ((n0, t0), (n1, t1)) = (pts[i - 1], pts[i]);
            let f = ((flat_total - t0) / (t1 - t0)).clamp(0.0, 1.0);
            (Some(n0 as f64 + f * (n1 as f64 - n0 as f64)), "crosses")
        }
    }
}

fn crossovers(points: &[ScalingPoint]) -> Vec<Crossover> {
    let mut keys: Vec<(String, String)> = points
        .iter()
        .map(|p| (p.query.clone(), p.mode.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for (query, mode) in keys {
        let of = |p: &&ScalingPoint| p.query == query && p.mode == mode;
        let Some(flat) = points.iter().filter(of).find(|p| p.layout == "flat") else {
            continue;
        };
        let parts: Vec<&ScalingPoint> = points
            .iter()
            .filter(of)
            .filter(|p| p.layout != "flat")
            .collect();
        if parts.is_empty() {
            continue;
        }
        let pts: Vec<(usize, f64)> = parts.iter().map(|p| (p.partitions, p.total_ms)).collect();
        let (at, kind) = crossover(flat.total_ms, &pts);
        let best = parts
            .iter()
            .min_by(|a, b| a.total_ms.total_cmp(&b.total_ms))
            .expect("non-empty");
        let worst = parts
            .iter()
            .max_by(|a, b| a.total_ms.total_cmp(&b.total_ms))
            .expect("non-empty");
        let verdict = match kind {
            "crosses" => format!(
                "{query} ({mode} plans): no dearer than the flat table ({:.2} ms) up to ≈ {:.0} partitions, \
                 dearer beyond (best {:.2} ms at {}, {:.2} ms at {}).",
                flat.total_ms,
                at.unwrap_or_default(),
                best.total_ms,
                best.partitions,
                worst.total_ms,
                worst.partitions
            ),
            "never_cheaper" => format!(
                "{query} ({mode} plans): dearer than the flat table ({:.2} ms) by more than {:.0} % at every \
                 measured count ({:.2} ms at {} partitions to {:.2} ms at {}): here partitioning only costs.",
                flat.total_ms,
                NOISE_MARGIN * 100.0,
                best.total_ms,
                best.partitions,
                worst.total_ms,
                worst.partitions
            ),
            _ => format!(
                "{query} ({mode} plans): within {:.0} % of the flat table ({:.2} ms) or cheaper up to \
                 {} partitions (worst {:.2} ms): no crossover within the measured counts.",
                NOISE_MARGIN * 100.0,
                flat.total_ms,
                pts.iter().map(|p| p.0).max().unwrap_or(0),
                worst.total_ms
            ),
        };
        out.push(Crossover {
            query,
            mode,
            flat_total_ms: flat.total_ms,
            partitions: at,
            kind: kind.into(),
            verdict,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossover_interpolates_and_classifies() {
        let (at, kind) = crossover(1.0, &[(14, 0.5), (57, 0.8), (396, 2.0)]);
        // A dearer point followed by a cheaper one is noise, not a crossover.
        assert_eq!(
            crossover(1.0, &[(14, 1.2), (57, 0.9), (396, 0.95)]).1,
            "always_cheaper"
        );
        assert_eq!(
            crossover(1.0, &[(14, 1.02), (396, 1.01)]).1,
            "always_cheaper"
        );
        assert_eq!(kind, "crosses");
        let at = at.unwrap();
        assert!(at > 57.0 && at < 396.0, "{at}");
        assert!((at - (57.0 + 339.0 / 6.0)).abs() < 1e-6);
        assert_eq!(
            crossover(1.0, &[(14, 0.5), (396, 0.9)]),
            (None, "always_cheaper")
        );
        assert_eq!(
            crossover(1.0, &[(14, 1.5), (396, 9.0)]),
            (None, "never_cheaper")
        );
    }

    #[test]
    fn bounds_cover_the_span() {
        let first = "2025-10-26T00:37:00Z".parse::<DateTime<Utc>>().unwrap();
        let last = "2026-11-25T23:49:00Z".parse::<DateTime<Utc>>().unwrap();
        let m = bounds(Grain::Month, first, last);
        assert_eq!(m.len(), 14);
        assert_eq!(m[0].suffix, "p202510");
        let w = bounds(Grain::Week, first, last);
        assert!(w.first().unwrap().from <= first && w.last().unwrap().to > last);
        assert!(w.windows(2).all(|p| p[0].to == p[1].from));
        let d = bounds(Grain::Day, first, last);
        assert_eq!(d.len(), 396);
    }
}
