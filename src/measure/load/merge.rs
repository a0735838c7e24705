//! The figures of the shards of one sharded load, added up exactly: HDR histograms are
//! added (so merged percentiles are those of all the samples, never an average of
//! percentiles), counts and errors summed, per-second timelines aligned on each shard's
//! measured start. `results::merge` checks and merges the shards' results files.

use super::recorder::{second_histogram, LoadFigures, OpStats, TimelinePoint};
use super::LoadSection;
use crate::latency::{decode_histogram, Latency, LatencySummary};
use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;

fn add(into: &mut Option<Latency>, s: &LatencySummary) -> Result<()> {
    if s.histogram.is_empty() {
        if s.count > 0 {
            bail!("a shard's latency summary carries no histogram: it cannot be merged exactly");
        }
        return Ok(());
    }
    into.get_or_insert_with(Latency::new)
        .merge(&Latency::decode(&s.histogram)?);
    Ok(())
}

/// Adds up the figures of the shards of one load, each at its offset (seconds) from the
/// earliest measured start: histograms added, counts and errors summed, timelines aligned.
pub(crate) fn merge_figures(sections: &[(f64, &LoadFigures)]) -> Result<LoadFigures> {
    let window = sections
        .iter()
        .map(|(o, g)| o + g.measured_seconds)
        .fold(0.0, f64::max)
        .max(1e-9);
    let mut sums = Sums::default();
    let mut f = LoadFigures {
        measured_seconds: window,
        ..Default::default()
    };
    for (offset, g) in sections {
        f.attempted += g.attempted;
        f.ok += g.ok;
        f.failed += g.failed;
        f.dropped += g.dropped;
        add(&mut sums.all, &g.transaction_latency)?;
        for (into, from) in [
            (&mut sums.lag, &g.schedule_lag),
            (&mut sums.wake, &g.wake_lag),
            (&mut sums.pool, &g.pool_wait),
        ] {
            if let Some(l) = from {
                add(into, l)?;
            }
        }
        sums.add_ops(g)?;
        sums.add_seconds(g, *offset)?;
        sums.add_errors(g, *offset);
    }
    let Sums {
        all,
        lag,
        wake,
        pool,
        ops: [tx, q],
        seconds,
        errors,
    } = sums;
    let all = all.unwrap_or_default();
    f.tps = f.ok as f64 / window;
    f.transaction_latency = all.summary();
    f.transaction_curve = all.curve();
    f.schedule_lag = lag.map(|l| l.summary());
    f.wake_lag = wake.map(|l| l.summary());
    f.pool_wait = pool.map(|l| l.summary());
    let finish = |m: BTreeMap<String, (OpStats, Option<Latency>)>| -> Vec<OpStats> {
        m.into_values()
            .map(|(mut op, l)| {
                op.per_second = op.ok as f64 / window;
                op.latency = l.unwrap_or_default().summary();
                op
            })
            .collect()
    };
    f.transactions = finish(tx);
    f.queries = finish(q);
    let last = seconds.keys().max().copied().unwrap_or(0);
    f.timeline = (0..=last)
        .filter(|_| !seconds.is_empty())
        .map(|s| match seconds.get(&s) {
            Some((ok, err, h)) => TimelinePoint::of(s, *ok, *err, h, true),
            None => TimelinePoint::of(s, 0, 0, &second_histogram(), false),
        })
        .collect();
    f.errors = errors.into_values().collect();
    Ok(f)
}

/// The shards' figures added up so far.
#[derive(Default)]
struct Sums {
    all: Option<Latency>,
    lag: Option<Latency>,
    wake: Option<Latency>,
    pool: Option<Latency>,
    /// Transactions, then queries, by name.
    ops: [BTreeMap<String, (OpStats, Option<Latency>)>; 2],
    /// Per second of the common timeline: ok, errors, latency.
    seconds: BTreeMap<u32, (u64, u64, hdrhistogram::Histogram<u64>)>,
    errors: BTreeMap<(String, String), super::recorder::ErrorCount>,
}

impl Sums {
    fn add_ops(&mut self, g: &LoadFigures) -> Result<()> {
        for (kind, list) in [&g.transactions, &g.queries].into_iter().enumerate() {
            for op in list {
                let e = self.ops[kind].entry(op.name.clone()).or_insert_with(|| {
                    (
                        OpStats {
                            name: op.name.clone(),
                            ..Default::default()
                        },
                        None,
                    )
                });
                e.0.ok += op.ok;
                e.0.errors += op.errors;
                e.0.rows += op.rows;
                add(&mut e.1, &op.latency)?;
            }
        }
        Ok(())
    }

    /// A shard's timeline, shifted by its offset onto the common one.
    fn add_seconds(&mut self, g: &LoadFigures, offset: f64) -> Result<()> {
        let shift = offset.round() as u32;
        for p in &g.timeline {
            let e = self
                .seconds
                .entry(p.second + shift)
                .or_insert_with(|| (0, 0, second_histogram()));
            e.0 += p.ok;
            e.1 += p.errors;
            if p.histogram.is_empty() {
                if p.ok > 0 {
                    bail!("a shard's timeline carries no per-second histograms (not written with --shard)");
                }
            } else {
                e.2.add(decode_histogram(&p.histogram)?)
                    .map_err(|e| anyhow!("adding a second's histogram: {e}"))?;
            }
        }
        Ok(())
    }

    /// A shard's errors, their first and last times shifted by its offset.
    fn add_errors(&mut self, g: &LoadFigures, offset: f64) {
        for er in &g.errors {
            let e = self
                .errors
                .entry((er.query.clone(), er.sqlstate.clone()))
                .or_insert_with(|| super::recorder::ErrorCount {
                    count: 0,
                    first_at_s: f64::MAX,
                    last_at_s: f64::MIN,
                    ..er.clone()
                });
            e.count += er.count;
            e.first_at_s = e.first_at_s.min(er.first_at_s + offset);
            e.last_at_s = e.last_at_s.max(er.last_at_s + offset);
        }
    }
}

pub(crate) fn merge_goose(
    sections: &[(f64, &LoadSection)],
) -> Option<super::scenario_run::GooseSummary> {
    let gs: Vec<&super::scenario_run::GooseSummary> = sections
        .iter()
        .filter_map(|(_, s)| s.goose.as_ref())
        .collect();
    let first = (*gs.first()?).clone();
    let requests: u64 = gs.iter().map(|g| g.requests).sum();
    Some(super::scenario_run::GooseSummary {
        users: gs.iter().map(|g| g.users).sum(),
        requests,
        failures: gs.iter().map(|g| g.failures).sum(),
        mean_ms: gs
            .iter()
            .map(|g| g.mean_ms * g.requests as f64)
            .sum::<f64>()
            / requests.max(1) as f64,
        report_file: None,
        reconnects: gs.iter().map(|g| g.reconnects).sum(),
        reconnect_failures: gs.iter().map(|g| g.reconnect_failures).sum(),
        ..first
    })
}
