//! `capacity --scales` against a real server, on the tiny profile with two small scales and
//! short steps: the section's shape, one dataset (and fingerprint) per scale in its own
//! database, the command's own dataset left as it was, reuse on a second run, and a
//! database of the scale's name that storybench did not make refused untouched; and the
//! same section as a stage of `run --quick --scales`, recorded in its replayable config.

mod common;

use common::{stderr, stdout, TestDb};
use serde_json::Value;
use sqlx::Executor;
use std::path::{Path, PathBuf};

fn results(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

/// A short search: two users of a 20 ms statement break below 100/s whatever the machine.
fn capacity_args<'a>(scenario: &'a str, out: &'a str, max_steps: &'a str) -> Vec<&'a str> {
    vec![
        "capacity",
        "--scenario",
        scenario,
        "--scales",
        "1,2",
        "--profile",
        "tiny",
        "--anchor",
        "2026-06-01",
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
        "--max-step-duration",
        "4s",
        "--warmup",
        "0s",
        "--repeats",
        "1",
        "--resolution",
        "30%",
        "--max-steps",
        max_steps,
        "--out",
        out,
    ]
}

#[tokio::test]
async fn scales_have_their_own_datasets_and_the_section_its_shape() {
    let db = TestDb::new("scales").await;
    let dir = common::temp_root("cap-scales");
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
    let out_dir: PathBuf = dir.join("out");
    let out = db.storybench(&capacity_args(&scenario, out_dir.to_str().unwrap(), "8"));
    assert!(out.status.success(), "{}", stderr(&out));
    let s = &results(&out_dir)["capacity_scales"];
    let scales = s["scales"].as_array().expect("scales");
    assert_eq!(scales.len(), 2, "{s}");
    assert_eq!(scales[0]["scale"].as_f64(), Some(1.0));
    assert_eq!(scales[1]["scale"].as_f64(), Some(2.0));
    // Scale 1 is the command's own dataset (reused); scale 2 got its own database.
    assert_eq!(scales[0]["database"].as_str(), Some(db.name.as_str()));
    assert!(scales[0]["seed_seconds"].is_null(), "{}", scales[0]);
    assert_eq!(scales[1]["database"].as_str(), Some("sbscale_tiny_2_s42"));
    assert!(scales[1]["seed_seconds"].as_f64().unwrap() > 0.0);
    let fp: Vec<&str> = scales
        .iter()
        .map(|r| r["fingerprint"].as_str().expect("a fingerprint"))
        .collect();
    assert_ne!(fp[0], fp[1], "each scale has its own fingerprint");
    assert!(
        scales[1]["data_bytes"].as_i64().unwrap() > 0
            && scales[1]["users"].as_u64() > scales[0]["users"].as_u64(),
        "{s}"
    );
    let common_rate = s["common_rate"].as_f64().expect("common_rate");
    for r in scales {
        assert_eq!(r["speed_probe_ms"].as_array().unwrap().len(), 10, "{r}");
        assert!(r["capacity"]["steps"].as_array().unwrap().len() >= 2);
        let c = &r["at_common_rate"];
        assert_eq!(
            c["rate"].as_f64(),
            Some(common_rate),
            "one rate for all: {c}"
        );
        let q = &c["queries"][0];
        assert_eq!(q["name"], "sleep_20ms");
        assert!(q["samples"].as_u64().unwrap() > 0 && q["p95_ms"].as_f64().unwrap() >= 20.0);
    }
    // The smallest scale sets the common rate: half its sustainable rate.
    if let Some(r) = scales[0]["sustainable_rate"].as_f64() {
        assert!((common_rate - r / 2.0).abs() < 1e-9, "{common_rate} vs {r}");
    }
    assert_eq!(s["launch_scale"].as_f64(), Some(100.0));
    let bounded = scales
        .iter()
        .all(|r| r["sustainable_low"].is_number() && r["sustainable_high"].is_number());
    if bounded {
        let f = &s["capacity_fit"];
        assert_eq!(f["basis"], "points_only", "two scales: {f}");
        let (k, p) = (&f["exponent"], &f["predicted"]);
        assert!(
            k["low"].as_f64() <= k["estimate"].as_f64()
                && k["estimate"].as_f64() <= k["high"].as_f64()
        );
        assert!(
            p["low"].as_f64() <= p["estimate"].as_f64()
                && p["estimate"].as_f64() <= p["high"].as_f64()
        );
    }
    let queries = s["queries"].as_array().unwrap();
    assert_eq!(queries.len(), 1);
    assert_eq!(queries[0]["name"], "sleep_20ms");
    // pg_sleep takes 20 ms at any size, but an interval cannot be promised on 2 cores: only
    // a flagged query must come with a flattening entry.
    let flagged = queries.iter().filter(|q| q["grows"] == true).count();
    assert_eq!(s["flattening"].as_array().unwrap().len(), flagged);
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.starts_with("launch_capacity ")),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("capacity of sleep by data size"),
        "{}",
        stderr(&out)
    );

    // The command's own dataset is still scale 1.
    let mut conn = db.conn().await;
    let scale: f64 = sqlx::query_scalar(
        "SELECT (value->>'scale')::float8 FROM storybench.meta WHERE key = 'dataset'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(scale, 1.0);
    drop(conn);

    // A second run reuses both datasets.
    let again = dir.join("again");
    let out = db.storybench(&capacity_args(&scenario, again.to_str().unwrap(), "3"));
    assert!(out.status.success(), "{}", stderr(&out));
    let s2 = &results(&again)["capacity_scales"];
    for (a, b) in scales.iter().zip(s2["scales"].as_array().unwrap()) {
        assert!(b["seed_seconds"].is_null(), "reused: {b}");
        assert_eq!(a["fingerprint"], b["fingerprint"]);
    }
    common::drop_database("sbscale_tiny_2_s42").await;
}

#[tokio::test]
async fn a_database_of_the_scales_name_that_is_not_ours_is_refused_untouched() {
    let db = TestDb::new("scales_foreign").await;
    let dir = common::temp_root("cap-scales-foreign");
    common::drop_database("sbscale_tiny_7_s42").await;
    let mut admin = common::connect(&common::url_for("postgres")).await;
    admin
        .execute("CREATE DATABASE sbscale_tiny_7_s42")
        .await
        .unwrap();
    let mut theirs = common::connect(&common::url_for("sbscale_tiny_7_s42")).await;
    theirs
        .execute("CREATE TABLE keep_me (x int); INSERT INTO keep_me VALUES (1)")
        .await
        .unwrap();
    drop(theirs);
    let scenario = common::sleep_scenario();
    let out_dir = dir.join("out");
    let mut args = capacity_args(&scenario, out_dir.to_str().unwrap(), "3");
    let i = args.iter().position(|a| *a == "1,2").unwrap();
    args[i] = "6,7";
    let out = db.storybench(&args);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("sbscale_tiny_7_s42 exists and is not one of storybench's"),
        "{err}"
    );
    let mut theirs = common::connect(&common::url_for("sbscale_tiny_7_s42")).await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM keep_me")
        .fetch_one(&mut theirs)
        .await
        .unwrap();
    assert_eq!(n, 1);
    drop(theirs);
    common::drop_database("sbscale_tiny_7_s42").await;
    common::drop_database("sbscale_tiny_6_s42").await;
}

#[tokio::test]
async fn ctrl_c_in_a_later_scale_keeps_the_scales_measured() {
    let db = TestDb::new("scales_interrupt").await;
    let dir = common::temp_root("cap-scales-int");
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
    // Scale 4: the other tests own scales 2, 3, 6 and 7 and may run meanwhile.
    common::drop_database("sbscale_tiny_4_s42").await;
    let scenario = common::sleep_scenario();
    let out_dir = dir.join("out");
    let mut args = capacity_args(&scenario, out_dir.to_str().unwrap(), "8");
    let i = args.iter().position(|a| *a == "1,2").unwrap();
    args[i] = "1,4";
    let mut cmd = common::storybench_cmd();
    cmd.arg("--database-url").arg(&db.url).args(&args);
    let mut w = common::Watched::spawn(cmd);
    // Every scale is searched before any takes its step at the common rate: stop in scale
    // 4's step, after both searches and scale 1's step.
    w.wait_for("▶ common rate scale 4", std::time::Duration::from_secs(300));
    w.signal(nix::sys::signal::Signal::SIGINT);
    let (status, _, err) = w.wait_exit(std::time::Duration::from_secs(60));
    assert_eq!(status.code(), Some(130), "{err}");
    let r = results(&out_dir);
    assert_eq!(r["status"], "interrupted", "{err}");
    let scales = r["capacity_scales"]["scales"].as_array().expect("kept");
    assert_eq!(scales[0]["scale"].as_f64(), Some(1.0));
    assert!(
        !scales[0]["capacity"]["steps"]
            .as_array()
            .unwrap()
            .is_empty()
            && !scales[0]["at_common_rate"]["queries"]
                .as_array()
                .unwrap()
                .is_empty(),
        "scale 1 kept whole: {}",
        scales[0]
    );
    assert_eq!(scales[1]["scale"].as_f64(), Some(4.0));
    assert!(
        !scales[1]["capacity"]["steps"]
            .as_array()
            .unwrap()
            .is_empty(),
        "scale 4's search kept: {}",
        scales[1]
    );
    common::drop_database("sbscale_tiny_4_s42").await;
}

#[tokio::test]
async fn run_scales_is_a_stage_of_run_after_capacity() {
    let db = TestDb::new("run_scales").await;
    let dir = common::temp_root("run-scales");
    // Scale 3, not 2: the test above owns sbscale_tiny_2_s42 and may run meanwhile.
    common::drop_database("sbscale_tiny_3_s42").await;
    let out_dir = dir.join("out");
    let out = db.storybench(&[
        "run",
        "--quick",
        "--anchor",
        "2026-06-01",
        "--scales",
        "1,3",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = results(&out_dir);
    assert_eq!(
        r["config"]["scales"]["scales"],
        serde_json::json!([1.0, 3.0])
    );
    let s = &r["capacity_scales"];
    assert_eq!(s["scenario"], r["config"]["capacity"]["scenario"], "{s}");
    assert_eq!(s["profile"], "tiny");
    let scales = s["scales"].as_array().expect("scales");
    assert_eq!(scales.len(), 2, "{s}");
    // Scale 1 is the run's own dataset; scale 3 its own database. The run keeps its dataset.
    assert_eq!(scales[0]["database"].as_str(), Some(db.name.as_str()));
    assert_eq!(scales[1]["database"].as_str(), Some("sbscale_tiny_3_s42"));
    assert_eq!(r["dataset"]["scale"].as_f64(), Some(1.0));
    assert_eq!(r["dataset"]["fingerprint"], scales[0]["fingerprint"]);
    // Scale 1's search is the capacity stage's own (same dataset, scenario and options),
    // not made a second time; scale 3 searched on its own.
    assert_eq!(scales[0]["search_from_run"], true, "{s}");
    assert_eq!(scales[0]["capacity"]["steps"], r["capacity"]["steps"]);
    assert!(scales[1].get("search_from_run").is_none(), "{s}");
    for x in scales {
        assert!(
            !x["capacity"]["steps"].as_array().unwrap().is_empty(),
            "{x}"
        );
        assert!(!x["at_common_rate"]["queries"]
            .as_array()
            .unwrap()
            .is_empty());
    }
    assert_eq!(
        s["partitioning"]
            .as_str()
            .map(|p| p.starts_with("not compared")),
        Some(true),
        "bedtime reads no api_usage: {s}"
    );
    // After the capacity stage, before ops.
    let stages: Vec<&str> = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    let at = |n: &str| stages.iter().position(|x| *x == n).unwrap_or(usize::MAX);
    // Scale 1's search is the capacity stage's: no stage searches it again. Every search
    // comes before the steps at the common rate.
    assert!(
        at("capacity") < at("capacity scale 3")
            && at("capacity scale 1") == usize::MAX
            && at("capacity scale 3") < at("common rate scale 1")
            && at("common rate scale 1") < at("common rate scale 3")
            && at("common rate scale 3") < at("ops"),
        "{stages:?}"
    );
    assert!(
        stderr(&out).contains("capacity of bedtime by data size"),
        "{}",
        stderr(&out)
    );
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(html.contains("id=\"capacity-scales\""));
    common::drop_database("sbscale_tiny_3_s42").await;
}

fn target_of(db: &TestDb) -> storybench::target::Target {
    storybench::target::Target::resolve(&storybench::target::DbArgs {
        database_url: Some(db.url.clone()),
        data_dir: "/nonexistent".into(),
        port: None,
        protect: vec!["prod".into()],
        keep_copies: false,
        shared_lock: false,
    })
    .unwrap()
}

/// The flattening comparison of an api_usage query gets the partitioned and the flat layout
/// as arms of every strategy (rows per layout differ in plan, not in count); a query that
/// reads no api_usage gets the dataset's layout only.
#[tokio::test]
async fn flatten_measures_both_api_usage_layouts_for_a_query_reading_it() {
    let mut dbs = Vec::new();
    for (tag, scale) in [("flat_small", "1"), ("flat_large", "2")] {
        let db = TestDb::new(tag).await;
        let out = db.storybench(&[
            "seed",
            "--profile",
            "tiny",
            "--anchor",
            "2026-06-01",
            "--scale",
            scale,
        ]);
        assert!(out.status.success(), "seed: {}", stderr(&out));
        dbs.push(db);
    }
    let (small, large) = (target_of(&dbs[0]), target_of(&dbs[1]));
    let mut opts = storybench::config::RunConfig::preset("quick")
        .unwrap()
        .explain;
    opts.strategies = vec!["fk_only".into(), "tuned".into()];
    let dir = common::temp_root("flatten-layouts");
    let queries = ["user_usage_30d".to_string(), "recent_stories".to_string()];
    let out = storybench::measure::load::capacity::flatten::measure(
        (&small, 1.0),
        (&large, 2.0),
        &queries,
        &opts,
        &dir,
    )
    .await
    .unwrap();
    let usage = out.iter().find(|f| f.query == "user_usage_30d").unwrap();
    assert!(
        usage.reads_api_usage && usage.skipped.is_none(),
        "{usage:?}"
    );
    let arms: Vec<String> = usage.strategies.iter().map(|w| w.label(true)).collect();
    assert_eq!(
        arms,
        [
            "fk_only/partitioned",
            "tuned/partitioned",
            "fk_only/flat",
            "tuned/flat"
        ],
        "{usage:?}"
    );
    for w in &usage.strategies {
        assert!(
            w.buffers_small.is_some_and(|b| b > 0) && w.buffers_large.is_some_and(|b| b > 0),
            "{w:?}"
        );
    }
    // The layouts' plans differ: partitions appended on one, one table on the other.
    assert_ne!(
        usage.strategies[1].shape_large,
        usage.strategies[3].shape_large
    );
    let stories = out.iter().find(|f| f.query == "recent_stories").unwrap();
    assert!(!stories.reads_api_usage);
    assert_eq!(stories.strategies.len(), 2, "{stories:?}");
}

#[test]
fn too_few_scales_are_refused_before_anything_runs() {
    let out = common::storybench_cmd()
        .args(["--database-url", "postgres://nobody@127.0.0.1:1/none"])
        .args(["capacity", "--scenario", "bedtime", "--scales", "3"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("at least two different scales"),
        "{}",
        stderr(&out)
    );
}
