//! Capacity search against a real server: the answer comes with an interval that contains
//! it, a breaking rate names what saturated, and steps too short for the SLO percentile are
//! lengthened (and say so). No assertion depends on the machine's speed: the scenario's
//! 20 ms pg_sleep bounds what two users can serve from below, whatever the machine.

mod common;

use common::{stderr, stdout, TestDb};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn tmp(tag: &str) -> PathBuf {
    common::temp_root(&format!("cap-{tag}"))
}

fn results(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

#[tokio::test]
async fn search_reports_an_interval_names_saturation_and_lengthens_short_steps() {
    let db = TestDb::new("cap").await;
    let dir = tmp("search");
    let seed = db.storybench(&[
        "seed",
        "--profile",
        "tiny",
        "--anchor",
        "2026-06-01",
        "--out",
        dir.join("seed").to_str().unwrap(),
    ]);
    assert!(seed.status.success(), "seed: {}", stderr(&seed));
    let scenario = common::sleep_scenario();
    let out_dir = dir.join("out");
    // Two users of a 20 ms statement serve under 100/s: 160/s and more must break (a
    // backlog), 40/s cannot fill 72 samples in 1 s.
    let out = db.storybench(&[
        "capacity",
        "--scenario",
        &scenario,
        "--slo",
        "p95<1s",
        "--users",
        "2",
        "--start-rate",
        "40",
        "--max-rate",
        "640",
        "--step-duration",
        "1s",
        "--boundary-duration",
        "1s",
        "--warmup",
        "0s",
        "--repeats",
        "3",
        "--resolution",
        "20%",
        "--max-steps",
        "14",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let c = &results(&out_dir)["capacity"];
    let steps = c["steps"].as_array().unwrap();

    // The answer and its interval.
    let rate = c["sustainable_rate"].as_f64().expect("an answer");
    let low = c["sustainable_low"].as_f64().expect("sustainable_low");
    let high = c["sustainable_high"]
        .as_f64()
        .expect("sustainable_high: 640/s breaks");
    assert!(low <= rate && rate <= high, "{low} ≤ {rate} ≤ {high}: {c}");
    assert!(c["breaking_rate"].as_f64().unwrap() <= high);
    let basis = c["interval_basis"].as_str().unwrap();
    assert!(
        basis.contains("repeats passed") && basis.contains("lies in"),
        "{basis}"
    );
    assert!(!c["rates"].as_array().unwrap().is_empty());
    assert!(steps.iter().any(|s| s["phase"] == "repeat"), "{c}");
    // Every step ran on its own clone of the stage's copy (the writes of one step are not
    // the next one's starting state).
    assert_eq!(c["step_reset"], "copy", "{c}");
    // The machine's speed was probed before every step.
    assert!(
        steps
            .iter()
            .all(|s| s["speed_probe_ms"].as_f64().unwrap() > 0.0),
        "{c}"
    );
    let mut conn = db.conn().await;
    let left: i64 = sqlx::query_scalar(
        r"SELECT count(*) FROM pg_database WHERE datname LIKE 'sbcopy\_%capacity%'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(left, 0, "no step or stage copy left behind");
    // The machine-speed probe ran five times before and five after the search.
    let probe = c["speed_probe_ms"].as_array().expect("speed_probe_ms");
    assert_eq!(probe.len(), 10, "{c}");
    assert!(probe.iter().all(|t| t.as_f64().unwrap() > 0.0));
    // An interpolated crossing, when there is one, lies between two rates the search tried.
    if let Some(x) = c["crossing_rate"].as_f64() {
        let tried: Vec<f64> = steps
            .iter()
            .map(|s| s["target_rate"].as_f64().unwrap())
            .collect();
        let (lo, hi) = tried
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(l, h), r| (l.min(*r), h.max(*r)));
        assert!(lo <= x && x <= hi, "{x} outside [{lo}, {hi}]: {c}");
    }
    let last = stdout(&out);
    let last = last
        .lines()
        .find(|l| l.starts_with("sustainable "))
        .unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "sustainable {rate:.1} low {low:.1} high {high:.1}"
        )),
        "{last}"
    );
    let err = stderr(&out);
    assert!(err.contains("capacity between"), "{err}");

    // A failing step names what saturated: every user was inside a 20 ms sleep.
    assert!(steps.iter().any(|s| s["passed"] == false));
    let saturated: Vec<&str> = c["saturated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        saturated.iter().any(|s| s.starts_with("users busy")),
        "{saturated:?}\n{}",
        c["signals"]
    );
    assert!(err.contains("saturated at"), "{err}");
    let signals = c["signals"].as_array().unwrap();
    for name in [
        "machine CPU busy",
        "load generator CPU",
        "sessions reading data blocks",
        "load generator late",
    ] {
        assert!(
            signals
                .iter()
                .any(|s| s["name"].as_str().unwrap().starts_with(name)),
            "{name}: {signals:?}"
        );
    }

    // 40/s × 1 s holds ~40 samples, fewer than p95's 72: lengthened, and said so.
    let first = &steps[0];
    assert_eq!(first["target_rate"].as_f64(), Some(40.0));
    assert_eq!(first["lengthened_from_s"].as_f64(), Some(1.0), "{first}");
    assert!(
        first["step_seconds"].as_f64().unwrap() * 40.0 >= 72.0,
        "{first}"
    );
    assert_eq!(first["slo_samples_needed"].as_u64(), Some(72));
    let notes = c["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| n
            .as_str()
            .unwrap()
            .contains("lengthened so each holds ≥ 72 samples")),
        "{notes:?}"
    );
    assert!(err.contains("lengthened from 1.0 s"), "{err}");
}

#[test]
fn results_written_before_the_interval_still_read() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/results/quick_all_sections.json");
    let r = storybench::results::RunResults::read(&path).unwrap();
    let c = r.capacity.unwrap();
    assert_eq!(c.sustainable_rate, Some(80.0));
    assert!(c.sustainable_low.is_none() && c.rates.is_empty() && c.interval_basis.is_empty());
    assert!(c.steps.iter().all(|s| s.lengthened_from_s.is_none()));
}
