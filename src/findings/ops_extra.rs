//! The backup's restore check and the scheduled cleanup's interference: words from the
//! figures of `ops --operations backup,cron`.

use super::topics::{fig, finding};
use super::{Finding, Interval, Tone, Topic};
use crate::format::human_bytes;
use crate::measure::ops::{BackupFigures, CronFigures, Operation, OpsSection, Restore};

pub(super) fn extras(s: &OpsSection, op: &Operation) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some((b, r)) = op
        .backup
        .as_ref()
        .and_then(|b| b.restore.as_ref().map(|r| (b, r)))
    {
        out.push(backup_finding(s, op, b, r));
    }
    if let Some(c) = &op.cron {
        out.push(cron_finding(s, op, c));
    }
    out
}

/// The backup's restore check.
fn backup_finding(s: &OpsSection, op: &Operation, b: &BackupFigures, r: &Restore) -> Finding {
    let (tone, verdict) = if r.same_fingerprint {
        (Tone::Clear, "with the same fingerprint as the copy")
    } else {
        (Tone::Bad, "with a DIFFERENT fingerprint from the copy")
    };
    let mut f = finding(
            Topic::Operations,
            tone,
            format!(
                "The backup restores: the document's script wrote {} ({} gzipped) in {:.2} s beside {:.0}/s of {}; a directory dump restored with pg_restore -j {} in {:.2} s, {verdict}.",
                human_bytes(b.full_dump_bytes as f64),
                human_bytes(b.full_gzip_bytes as f64),
                op.under_load.seconds,
                s.rate,
                s.scenario,
                r.jobs,
                r.restore_seconds
            ),
            &format!("ops-{}", op.name),
        );
    f.figures.push(fig(
        "stories and heroes dump",
        human_bytes(b.tables_dump_bytes as f64),
    ));
    if r.exit_code != 0 {
        f.figures.push(fig(
            "pg_restore reported",
            r.messages.chars().take(200).collect(),
        ));
    }
    f
}

/// The scheduled cleanup's interference with the app's latency.
fn cron_finding(s: &OpsSection, op: &Operation, c: &CronFigures) -> Finding {
    let who = match &c.pg_cron_unavailable {
        None => format!(
            "pg_cron {} ran it",
            c.pg_cron_version.as_deref().unwrap_or("")
        ),
        Some(why) => format!("{why}: storybench fired it on the same schedule"),
    };
    let (tone, verdict, interval) = match &c.interference {
            Some(i) if i.ratio.includes(1.0) => (
                Tone::Unclear,
                format!(
                    "no measurable difference in the app's p{:.0} in the seconds it ran ({:.2}× the other seconds)",
                    i.percentile, i.ratio.estimate
                ),
                Some(Interval::ci95(&i.ratio)),
            ),
            Some(i) => (
                if i.ratio.low > 1.0 { Tone::Bad } else { Tone::Clear },
                format!(
                    "the app's p{:.0} in the seconds it ran was {:.2}× that of the other seconds ({:.2} vs {:.2} ms)",
                    i.percentile, i.ratio.estimate, i.during_runs_ms.estimate, i.otherwise_ms.estimate
                ),
                Some(Interval::ci95(&i.ratio)),
            ),
            None => (
                Tone::Unclear,
                "too few requests in its seconds to compare a percentile".to_string(),
                None,
            ),
        };
    let longest = c
        .runs
        .iter()
        .map(|r| r.finished_s - r.started_s)
        .fold(0.0, f64::max);
    let mut f = finding(
            Topic::Operations,
            tone,
            format!(
                "The scheduled cache cleanup ({}, measured on {:?}; the document's {:?}) ran {} times beside {:.0}/s of {}, longest {:.0} ms; {verdict}.",
                who,
                c.schedule,
                c.document_schedule,
                c.runs.len(),
                s.rate,
                s.scenario,
                longest * 1000.0
            ),
            &format!("ops-{}", op.name),
        );
    f.interval = interval;
    let failed = c.runs.iter().filter(|r| r.status != "succeeded").count();
    if failed > 0 {
        f.figures
            .push(fig("runs not succeeded", failed.to_string()));
    }
    f
}
