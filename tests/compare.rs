//! The regression gate: exit codes and what it flags, on stored results fixtures.

mod common;

use common::{stderr, stdout, storybench_cmd};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture() -> Value {
    let path = format!(
        "{}/tests/fixtures/results/explain_small.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string(v).unwrap()).unwrap();
    p
}

fn compare(base: &Path, new: &Path, extra: &[&str]) -> std::process::Output {
    storybench_cmd()
        .arg("compare")
        .arg(base)
        .arg(new)
        .args(extra)
        .output()
        .unwrap()
}

/// The heavy user's run of `query` on `strategy`.
fn run_of<'a>(v: &'a mut Value, query: &str, strategy: &str) -> &'a mut Value {
    let q = v["explain"]["queries"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|q| q["name"] == query)
        .unwrap();
    q["subjects"][0]["by_strategy"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["strategy"] == strategy)
        .unwrap()
}

#[test]
fn identical_runs_pass() {
    let dir = common::temp_root("cmp-same");
    let p = write(&dir, "a.json", &fixture());
    let out = compare(&p, &p, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("no regression"));
}

#[test]
fn a_query_thirty_percent_slower_beyond_noise_fails_naming_it() {
    let dir = common::temp_root("cmp-slow");
    let mut base = fixture();
    // A steady baseline (small spread) so 30 % is beyond the noise.
    let lat = &mut run_of(&mut base, "story_detail", "doc")["latency"];
    lat["stdev_ms"] = Value::from(lat["mean_ms"].as_f64().unwrap() * 0.01);
    lat["count"] = Value::from(1000);
    let mut new = base.clone();
    let lat = &mut run_of(&mut new, "story_detail", "doc")["latency"];
    for k in ["p50_ms", "p95_ms", "p99_ms", "mean_ms"] {
        lat[k] = Value::from(lat[k].as_f64().unwrap() * 1.3);
    }
    let (b, n) = (
        write(&dir, "base.json", &base),
        write(&dir, "new.json", &new),
    );
    let out = compare(&b, &n, &["--max-regression", "10%"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("explain/story_detail/doc/heavy/p50"),
        "{}",
        stdout(&out)
    );
    // Below the threshold it passes.
    let out = compare(&b, &n, &["--max-regression", "40%"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // Markdown for a pull-request comment names it too.
    let out = compare(&b, &n, &["--format", "markdown"]);
    assert!(
        stdout(&out).contains("| `explain/story_detail/doc/heavy/p50` |"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_plan_that_lost_its_index_is_flagged_even_within_the_threshold() {
    let dir = common::temp_root("cmp-plan");
    let base = fixture();
    let mut new = base.clone();
    let run = run_of(&mut new, "recent_stories", "doc");
    let rels = run["plan"]["relations"].as_array_mut().unwrap();
    let stories = rels
        .iter_mut()
        .find(|r| r["relation"] == "stories")
        .unwrap();
    stories["access"] = Value::from("Seq Scan");
    stories["index"] = Value::Null;
    stories["index_cond"] = Value::Null;
    stories["rows_removed_by_filter"] = Value::from(50_000);
    let (b, n) = (
        write(&dir, "base.json", &base),
        write(&dir, "new.json", &new),
    );
    let out = compare(&b, &n, &["--max-regression", "500%"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("PLAN REGRESSION explain/recent_stories/doc/heavy"),
        "{text}"
    );
    assert!(text.contains("Seq Scan"), "{text}");
}

#[test]
fn malformed_or_unknown_version_is_exit_two() {
    let dir = common::temp_root("cmp-bad");
    let good = write(&dir, "good.json", &fixture());
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "{ not json").unwrap();
    let mut future = fixture();
    future["schema_version"] = Value::from(999);
    let future = write(&dir, "future.json", &future);
    let missing = dir.join("missing.json");
    for bad in [&garbage, &future, &missing] {
        let out = compare(&good, bad, &[]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}: {}",
            bad.display(),
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(bad.file_name().unwrap().to_str().unwrap()),
            "{}",
            stderr(&out)
        );
    }
    assert!(stderr(&compare(&good, &future, &[])).contains("version 999"));
}

#[test]
fn exports_bencher_bmf_and_github_benchmark() {
    let dir = common::temp_root("cmp-export");
    let p = write(&dir, "a.json", &fixture());
    let (bmf, gh) = (dir.join("bmf.json"), dir.join("gh.json"));
    let out = compare(
        &p,
        &p,
        &[
            "--bmf",
            bmf.to_str().unwrap(),
            "--github-benchmark",
            gh.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let bmf: Value = serde_json::from_str(&std::fs::read_to_string(bmf).unwrap()).unwrap();
    let entry = &bmf["explain/recent_stories/doc/heavy"]["p95"];
    assert!(entry["value"].as_f64().unwrap() > 0.0, "{entry}");
    assert!(entry["lower_value"].as_f64().unwrap() <= entry["value"].as_f64().unwrap());
    let gh: Value = serde_json::from_str(&std::fs::read_to_string(gh).unwrap()).unwrap();
    let items = gh.as_array().unwrap();
    assert!(items
        .iter()
        .all(|i| i["name"].is_string() && i["unit"].is_string() && i["value"].is_number()));
}
