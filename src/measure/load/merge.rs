//! `storybench merge`: the results of the shards of one sharded load, added up exactly.
//! HDR histograms are added (so merged percentiles are those of all the samples, never an
//! average of percentiles), counts and errors summed, per-second timelines aligned on each
//! shard's measured start. Shards of different configurations, duplicate or missing shard
//! numbers, and starts further apart than the allowed clock skew are refused.

use super::capacity::CapacitySection;
use super::recorder::{second_histogram, LoadFigures, OpStats, TimelinePoint};
use super::shard::ShardInfo;
use super::LoadSection;
use crate::latency::{decode_histogram, Latency, LatencySummary};
use crate::results::RunResults;
use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Config keys that differ between the shards of one load by design.
const PER_SHARD_KEYS: [&str; 2] = ["shard", "out"];

/// Checks that `inputs` are the complete shards of one load (or one capacity search) and
/// merges them.
pub fn merge(inputs: &[(PathBuf, RunResults)], max_skew: Duration) -> Result<RunResults> {
    let shards = check(inputs, max_skew)?;
    let first = &inputs[0].1;
    if first.capacity.is_some() {
        return merge_capacity(inputs, shards);
    }
    let base = shards
        .iter()
        .map(|(_, s)| s.measure_started_at)
        .min()
        .expect("shards");
    let sections: Vec<(f64, &LoadSection)> = shards
        .iter()
        .map(|(i, s)| {
            let offset = (s.measure_started_at - base).num_milliseconds() as f64 / 1000.0;
            (offset, inputs[*i].1.load.as_ref().expect("checked"))
        })
        .collect();
    let mut section = sections[0].1.clone();
    let figures: Vec<(f64, &LoadFigures)> =
        sections.iter().map(|(o, s)| (*o, &s.figures)).collect();
    section.figures = merge_figures(&figures)?;
    section.shape.rate = sections
        .iter()
        .map(|(_, s)| s.shape.rate)
        .sum::<Option<f64>>();
    section.shape.clients = sections.iter().map(|(_, s)| s.shape.clients).sum();
    section.goose = merge_goose(&sections);
    section.measured_from = Some(base);
    section.shard = None;
    section.merged_shards = shards.into_iter().map(|(_, s)| s).collect();
    let mut out = merged_results(first);
    out.load = Some(section);
    Ok(out)
}

/// The results a merge writes: the shards' configuration without its per-shard keys, and
/// the first shard's environment, variant and dataset.
fn merged_results(first: &RunResults) -> RunResults {
    let mut config = first.config.clone();
    if let Some(map) = config.as_object_mut() {
        for k in PER_SHARD_KEYS {
            map.remove(k);
        }
    }
    let mut out = RunResults::new("merge", config);
    out.environment = first.environment.clone();
    out.variant = first.variant.clone();
    out.dataset = first.dataset.clone();
    out
}

/// The shards of a capacity search judged every step on everyone's figures added up, so
/// their sections must agree step by step: the merge checks that and keeps one.
fn merge_capacity(
    inputs: &[(PathBuf, RunResults)],
    shards: Vec<(usize, ShardInfo)>,
) -> Result<RunResults> {
    let section = |i: usize| inputs[i].1.capacity.as_ref().expect("checked");
    let (first_i, _) = shards[0];
    let reference = section(first_i);
    let verdicts = |c: &CapacitySection| -> Vec<(u64, bool, u64)> {
        c.steps
            .iter()
            .map(|s| {
                (
                    (s.target_rate * 1000.0).round() as u64,
                    s.passed,
                    s.attempted,
                )
            })
            .collect()
    };
    for (i, s) in &shards[1..] {
        let other = section(*i);
        if verdicts(other) != verdicts(reference)
            || other.sustainable_rate != reference.sustainable_rate
        {
            bail!(
                "{}: shard {} took other steps or reached another answer than shard {} ({}): the shards did not judge the same figures",
                inputs[*i].0.display(),
                s.index,
                shards[0].1.index,
                inputs[first_i].0.display()
            );
        }
    }
    let mut merged = reference.clone();
    merged.shard = None;
    merged.merged_shards = shards.into_iter().map(|(_, s)| s).collect();
    let mut out = merged_results(&inputs[first_i].1);
    out.capacity = Some(merged);
    Ok(out)
}

/// The shards sorted by number, with the index of the input each came from.
fn check(inputs: &[(PathBuf, RunResults)], max_skew: Duration) -> Result<Vec<(usize, ShardInfo)>> {
    if inputs.is_empty() {
        bail!("merge: no shard results given");
    }
    let mut shards = Vec::new();
    for (i, (path, r)) in inputs.iter().enumerate() {
        shards.push((i, shard_of(path, r, &inputs[0].1)?));
    }
    same_options(inputs)?;
    complete_numbering(inputs, &mut shards)?;
    let (lo, hi) = (
        shards
            .iter()
            .map(|(_, s)| s.measure_started_at)
            .min()
            .expect("shards"),
        shards
            .iter()
            .map(|(_, s)| s.measure_started_at)
            .max()
            .expect("shards"),
    );
    let skew = (hi - lo).to_std().unwrap_or_default();
    if skew > max_skew {
        bail!(
            "the shards started measuring {:.3} s apart (more than --max-skew {:.3} s): their clocks or their starts disagree",
            skew.as_secs_f64(),
            max_skew.as_secs_f64()
        );
    }
    Ok(shards)
}

/// A complete shard of the same command as `first`.
fn shard_of(path: &Path, r: &RunResults, first: &RunResults) -> Result<ShardInfo> {
    let shard = r
        .load
        .as_ref()
        .and_then(|l| l.shard.clone())
        .or_else(|| r.capacity.as_ref().and_then(|c| c.shard.clone()))
        .ok_or_else(|| {
            anyhow!(
                "{}: not the results of a load or capacity shard (--shard I/N)",
                path.display()
            )
        })?;
    if r.command != first.command {
        bail!(
            "{}: a shard of `{}`, the others of `{}`",
            path.display(),
            r.command,
            first.command
        );
    }
    if r.status != crate::results::RunStatus::Ok {
        bail!(
            "{}: the shard's run is {} (only complete shards merge)",
            path.display(),
            r.status
        );
    }
    Ok(shard)
}

/// Every shard ran with the same options (apart from the per-shard keys).
fn same_options(inputs: &[(PathBuf, RunResults)]) -> Result<()> {
    let config_of = |r: &RunResults| {
        let mut c = r.config.clone();
        if let Some(map) = c.as_object_mut() {
            for k in PER_SHARD_KEYS {
                map.remove(k);
            }
        }
        c
    };
    let reference = config_of(&inputs[0].1);
    for (path, r) in &inputs[1..] {
        let c = config_of(r);
        if c != reference {
            let keys = differing_keys(&reference, &c);
            bail!(
                "{}: another configuration than {} ({}): shards of one load run with the same options",
                path.display(),
                inputs[0].0.display(),
                keys.join(", ")
            );
        }
    }
    Ok(())
}

/// Shards 0..N of one N, each once; sorts them by number.
fn complete_numbering(
    inputs: &[(PathBuf, RunResults)],
    shards: &mut [(usize, ShardInfo)],
) -> Result<()> {
    let count = shards[0].1.count;
    if let Some((i, s)) = shards.iter().find(|(_, s)| s.count != count) {
        bail!(
            "{}: shard of {} while the others are of {count}",
            inputs[*i].0.display(),
            s.count
        );
    }
    shards.sort_by_key(|(_, s)| s.index);
    for w in shards.windows(2) {
        if w[0].1.index == w[1].1.index {
            bail!(
                "duplicate shard {}: {} and {}",
                w[0].1.index,
                inputs[w[0].0].0.display(),
                inputs[w[1].0].0.display()
            );
        }
    }
    let missing: Vec<String> = (0..count)
        .filter(|i| !shards.iter().any(|(_, s)| s.index == *i))
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        bail!("missing shard(s) {} of {count}", missing.join(", "));
    }
    Ok(())
}

fn differing_keys(a: &serde_json::Value, b: &serde_json::Value) -> Vec<String> {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return vec!["config".into()];
    };
    let mut keys: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

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

fn merge_goose(sections: &[(f64, &LoadSection)]) -> Option<super::scenario_run::GooseSummary> {
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
