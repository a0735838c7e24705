//! Ctrl-C / SIGTERM in every stage (issue 20), on one embedded cluster each command starts
//! itself: the command stops within 15 s with exit 130, writes partial results holding what
//! it measured so far, stops the cluster it started and leaves no scratch objects; a second
//! signal exits 130 at once. Each wait polls the child's stderr or the server, never a sleep.

mod common;

use common::{storybench_cmd, temp_root, Watched, ANCHOR};
use nix::sys::signal::Signal;
use serde_json::Value;
use sqlx::AssertSqlSafe;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const STOP_WITHIN: Duration = Duration::from_secs(15);
const START_WITHIN: Duration = Duration::from_secs(180);

fn q(name: &str) -> AssertSqlSafe<String> {
    #[derive(serde::Deserialize)]
    struct F {
        queries: BTreeMap<String, String>,
    }
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/interrupt_checks.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    AssertSqlSafe(toml::from_str::<F>(&text).unwrap().queries[name].clone())
}

fn sb(data: &Path, args: &[&str]) -> std::process::Output {
    storybench_cmd()
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

fn results(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("results.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    serde_json::from_str(&text).unwrap()
}

/// What to run, when it is far enough along, and what its partial results must hold.
struct Case {
    name: &'static str,
    args: Vec<&'static str>,
    /// A stderr line that says the stage is measuring.
    marker: &'static str,
    /// Then also wait until the server has run a statement containing this this many times.
    calls: Option<(&'static str, i64)>,
    signal: Signal,
    /// The stage the signal lands in.
    stage: &'static str,
    check: fn(&Value),
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "explain",
            args: vec!["explain", "--strategies", "fk_only,doc", "--runs", "3"],
            marker: " measured on 2 strategies",
            calls: None,
            signal: Signal::SIGINT,
            stage: "explain",
            check: |r| {
                let measured = r["explain"]["queries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|q| q["subjects"].as_array().unwrap())
                    .flat_map(|s| s["by_strategy"].as_array().unwrap())
                    .filter(|b| b["latency"]["count"].as_u64().unwrap_or(0) > 0)
                    .count();
                assert!(measured > 0, "explain figures kept: {:#}", r["explain"]);
            },
        },
        Case {
            name: "rls",
            args: vec!["rls", "--audit", "--trials", "3"],
            marker: " · indexes ",
            calls: None,
            signal: Signal::SIGTERM,
            stage: "rls",
            check: |r| {
                let sets = r["rls"]["audit"]["sets"].as_array().unwrap();
                assert!(!sets.is_empty(), "the audit as found is kept");
                assert!(sets[0]["attempts"].as_u64().unwrap() > 0);
            },
        },
        Case {
            name: "partitions",
            args: vec!["partitions"],
            marker: "  scaling: ",
            calls: None,
            signal: Signal::SIGINT,
            stage: "partitions",
            check: |r| {
                let p = &r["partitions"];
                assert!(p["rows"].as_i64().unwrap() > 0, "{p:#}");
                assert!(
                    !p["queries"].as_array().unwrap().is_empty(),
                    "the layout comparison is kept: {p:#}"
                );
            },
        },
        Case {
            name: "load-sql",
            args: vec![
                "load",
                "--sql",
                "SELECT 1 AS interrupt_probe",
                "--clients",
                "2",
                "--duration",
                "120s",
                "--warmup",
                "0s",
            ],
            marker: "▶ load",
            calls: Some(("interrupt_probe", 200)),
            signal: Signal::SIGTERM,
            stage: "load",
            check: |r| {
                assert!(r["load"]["figures"]["ok"].as_u64().unwrap() > 0);
            },
        },
        Case {
            name: "load-scenario",
            args: vec![
                "load",
                "--scenario",
                "bedtime",
                "--users",
                "2",
                "--duration",
                "120s",
                "--warmup",
                "0s",
                "--think-scale",
                "0",
            ],
            marker: "▶ load",
            calls: Some(("hero_name", 50)),
            signal: Signal::SIGINT,
            stage: "load",
            check: |r| {
                assert!(r["load"]["figures"]["ok"].as_u64().unwrap() > 0);
            },
        },
        Case {
            name: "load-pooler",
            args: vec![
                "load",
                "--scenario",
                "bedtime",
                "--users",
                "4",
                "--pooler",
                "pgbouncer:transaction",
                "--pooler-size",
                "2",
                "--duration",
                "120s",
                "--warmup",
                "0s",
                "--think-scale",
                "0",
            ],
            marker: "▶ load",
            calls: Some(("hero_name", 50)),
            signal: Signal::SIGTERM,
            stage: "load",
            check: |r| {
                assert!(r["load"]["figures"]["ok"].as_u64().unwrap() > 0);
                assert_eq!(r["load"]["pooler"]["mode"], "transaction");
            },
        },
        Case {
            name: "capacity",
            args: vec![
                "capacity",
                "--scenario",
                "select1",
                "--users",
                "2",
                "--start-rate",
                "20",
                "--max-rate",
                "100000",
                "--step-duration",
                "2s",
                "--warmup",
                "0s",
                "--max-steps",
                "12",
            ],
            marker: " tx/s, p95 ",
            calls: None,
            signal: Signal::SIGTERM,
            stage: "capacity",
            check: |r| {
                let steps = r["capacity"]["steps"].as_array().unwrap();
                assert!(
                    !steps.is_empty(),
                    "finished steps kept: {:#}",
                    r["capacity"]
                );
            },
        },
        Case {
            name: "ops",
            args: vec![
                "ops",
                "--quick",
                "--rate",
                "40",
                "--migration",
                "tests/fixtures/migrations/hold_lock.sql",
            ],
            // The rehearsal is done; the signal lands while the load runs beside it.
            marker: "hold_lock alone:",
            calls: None,
            signal: Signal::SIGINT,
            stage: "ops",
            check: |r| {
                // Whatever was finished is kept: the operation under the shortened load.
                if let Some(op) = r["ops"]["operations"].as_array().and_then(|o| o.first()) {
                    assert!(op["alone"]["seconds"].as_f64().unwrap() >= 0.95, "{op}");
                }
            },
        },
        Case {
            name: "run",
            args: vec!["run", "--quick", "--anchor", ANCHOR],
            marker: "▶ rls",
            calls: None,
            signal: Signal::SIGINT,
            stage: "rls",
            check: |r| {
                assert!(r["explain"]["queries"].as_array().is_some(), "explain kept");
                assert!(
                    r["partitions"]["rows"].as_i64().is_some(),
                    "partitions kept"
                );
                let stages: Vec<(&str, &str)> = r["stages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| (s["name"].as_str().unwrap(), s["status"].as_str().unwrap()))
                    .collect();
                assert!(stages.contains(&("explain", "ok")), "{stages:?}");
                assert!(stages.contains(&("partitions", "ok")), "{stages:?}");
            },
        },
    ]
}

/// Polls the server until statements containing `text` ran `n` more times (earlier
/// commands ran the same catalog queries).
async fn wait_for_calls(url: &str, text: &str, n: i64, w: &mut Watched) {
    // Never a session on the dataset itself: it is the template of the stage's copy.
    let mut admin = url::Url::parse(url).unwrap();
    admin.set_path("postgres");
    let mut conn = common::connect(admin.as_str()).await;
    sqlx::query(q("create_pg_stat_statements"))
        .execute(&mut conn)
        .await
        .unwrap();
    let before: i64 = sqlx::query_scalar(q("calls_of"))
        .bind(text)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let n = before + n;
    let started = Instant::now();
    loop {
        let calls: i64 = sqlx::query_scalar(q("calls_of"))
            .bind(text)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        if calls >= n {
            return;
        }
        assert!(
            started.elapsed() < START_WITHIN && w.child.try_wait().unwrap().is_none(),
            "`{text}` ran {calls} times:\n{}",
            w.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stage_stops_on_a_signal_keeps_its_figures_and_cleans_up() {
    let root = temp_root("interrupt");
    let data = root.join("pgdata");
    let seed_out = root.join("seed");
    let out = sb(
        &data,
        &["seed", "--profile", "tiny", "--anchor", ANCHOR, "--out"]
            .iter()
            .copied()
            .chain([seed_out.to_str().unwrap()])
            .collect::<Vec<_>>(),
    );
    assert!(out.status.success(), "seed: {}", common::stderr(&out));
    let pid_file = data.join("postmaster.pid");
    assert!(!pid_file.exists(), "seed stopped the cluster it started");
    let url = common::stdout(&sb(&data, &["db", "url"]))
        .trim()
        .to_string();

    for case in cases() {
        let dir: PathBuf = root.join(case.name);
        let mut cmd = storybench_cmd();
        cmd.arg("--data-dir")
            .arg(&data)
            .args(&case.args)
            .arg("--out")
            .arg(&dir);
        let mut w = Watched::spawn(cmd);
        w.wait_for(case.marker, START_WITHIN);
        if let Some((text, n)) = case.calls {
            wait_for_calls(&url, text, n, &mut w).await;
        }
        assert!(
            pid_file.exists(),
            "{}: the command started its cluster",
            case.name
        );
        w.signal(case.signal);
        let (status, took, err) = w.wait_exit(STOP_WITHIN);
        eprintln!("{}: stopped {took:?} after {:?}", case.name, case.signal);
        assert_eq!(status.code(), Some(130), "{}: {err}", case.name);
        assert!(!err.contains("panicked"), "{}: {err}", case.name);
        let r = results(&dir);
        assert_eq!(r["status"], "interrupted", "{}: {err}", case.name);
        assert_eq!(r["partial"], true, "{}", case.name);
        let stage = r["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == case.stage)
            .unwrap_or_else(|| {
                panic!(
                    "{}: stage {} listed: {}",
                    case.name, case.stage, r["stages"]
                )
            });
        assert_eq!(stage["status"], "interrupted", "{}: {stage}", case.name);
        if std::panic::catch_unwind(|| (case.check)(&r)).is_err() {
            panic!("{}: partial results lack figures:\n{err}\n{r:#}", case.name);
        }
        assert!(dir.join("report.html").is_file(), "{}", case.name);
        assert!(
            !pid_file.exists(),
            "{}: the cluster it started was stopped",
            case.name
        );
    }

    // The pgbouncer of the pooled load stopped with it, its directory removed.
    let port = url::Url::parse(&url).unwrap().port().unwrap();
    let bouncers = common::pgbouncers_left_for(port);
    assert_eq!(bouncers, 0, "a pgbouncer directory was left behind");

    // No scratch copies (schema or database) survive the interrupted stages.
    assert!(sb(&data, &["db", "start"]).status.success());
    let mut conn = common::connect(&url).await;
    let left: i64 = sqlx::query_scalar(q("leftover_scratch"))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    drop(conn);
    sb(&data, &["db", "stop"]);
    assert_eq!(left, 0, "scratch objects left behind");
}

#[test]
fn a_second_signal_exits_130_at_once() {
    let root = temp_root("interrupt2");
    let data = root.join("pgdata");
    let mut cmd = storybench_cmd();
    cmd.arg("--data-dir").arg(&data).args([
        "load",
        "--sql",
        "SELECT pg_sleep(0.05)",
        "--clients",
        "2",
        "--duration",
        "120s",
        "--warmup",
        "0s",
        "--out",
    ]);
    cmd.arg(root.join("out"));
    let mut w = Watched::spawn(cmd);
    w.wait_for("▶ load", START_WITHIN);
    // Back to back: the first starts an orderly stop, the second must cut it short.
    w.signal(Signal::SIGTERM);
    w.signal(Signal::SIGINT);
    let (status, took, err) = w.wait_exit(Duration::from_secs(3));
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted twice"), "{err}");
    eprintln!("second signal: exited {took:?} after it");
    // It left at once, so the cluster may still run: stop it.
    sb(&data, &["db", "stop"]);
}
