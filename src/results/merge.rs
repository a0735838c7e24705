//! `storybench merge`: the results of the shards of one sharded load (or capacity search),
//! checked and added up exactly (the figures by `measure::load::merge`). Shards of different
//! configurations, duplicate or missing shard numbers, and starts further apart than the
//! allowed clock skew are refused.

use crate::measure::load::capacity::CapacitySection;
use crate::measure::load::merge::{merge_figures, merge_goose};
use crate::measure::load::recorder::LoadFigures;
use crate::measure::load::shard::ShardInfo;
use crate::measure::load::LoadSection;
use crate::results::RunResults;
use anyhow::{anyhow, bail, Result};
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
