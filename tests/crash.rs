//! Crash recovery: storybench killed with SIGKILL (no handler runs, nothing is cleaned up)
//! mid-seed and mid-stage. The next `run` detects what was left, recovers and says what it
//! did: it seeds again over the unfinished dataset, and drops the pristine copies the killed
//! process left behind; it then runs to the end on a reused, verified dataset.

mod common;

use common::Watched;
use common::{connect, storybench_cmd, temp_root, TestDb, ANCHOR};
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};

fn run(db: &TestDb, out: &std::path::Path) -> Watched {
    let mut cmd = storybench_cmd();
    cmd.args(["--database-url", &db.url, "run", "--quick", "--scale", "3"])
        .args(["--anchor", ANCHOR, "--out"])
        .arg(out);
    Watched::spawn(cmd)
}

async fn poll<F: std::future::Future<Output = bool>>(what: &str, mut f: impl FnMut() -> F) {
    let started = Instant::now();
    while !f().await {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no {what} within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn copies(db: &TestDb) -> i64 {
    let mut admin = connect(&common::url_for("postgres")).await;
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_database d JOIN pg_shdescription s ON s.objoid = d.oid \
         WHERE d.datname LIKE 'sbcopy\\_%' AND s.description LIKE '%of ' || $1 || ' %'",
    )
    .bind(&db.name)
    .fetch_one(&mut admin)
    .await
    .unwrap()
}

#[tokio::test]
async fn killed_mid_seed_and_mid_stage_the_next_run_recovers_and_says_so() {
    let db = TestDb::new("crash").await;
    let root = temp_root("crash");

    // 1. Killed while the seed loads: the dataset is left "loading".
    let mut first = run(&db, &root.join("run1"));
    first.wait_for("▶ seed", Duration::from_secs(60));
    let url = db.url.clone();
    poll("seed in progress", || {
        let url = url.clone();
        async move {
            let mut c = connect(&url).await;
            sqlx::query_scalar::<_, String>(
                "SELECT value->>'status' FROM storybench.meta WHERE key = 'dataset'",
            )
            .fetch_optional(&mut c)
            .await
            .ok()
            .flatten()
            .is_some_and(|s| s != "complete")
        }
    })
    .await;
    first.signal(Signal::SIGKILL);
    let (status, _, _) = first.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), None, "killed by a signal");

    // 2. The next run seeds again and says why; killed while a stage runs on its copy.
    let mut second = run(&db, &root.join("run2"));
    second.wait_for("did not finish", Duration::from_secs(60));
    second.wait_for("▶ explain", Duration::from_secs(120));
    let started = Instant::now();
    while copies(&db).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no pristine copy within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    second.signal(Signal::SIGKILL);
    let (_, _, err) = second.wait_exit(Duration::from_secs(10));
    assert!(err.contains("seeding it again"), "{err}");
    assert!(
        copies(&db).await >= 1,
        "the killed run left its copy (nothing cleaned up)"
    );

    // 3. The next run drops the dead process's copies, reuses the dataset, and finishes.
    let third = run(&db, &root.join("run3"));
    let (status, _, err) = third.wait_exit(Duration::from_secs(300));
    assert!(status.success(), "{err}");
    assert!(
        err.contains("left behind by a storybench that was killed"),
        "{err}"
    );
    assert!(err.contains("reusing the dataset"), "{err}");
    assert_eq!(copies(&db).await, 0, "copies left after the run");
}

fn command(db: &TestDb, args: &[&str], out: &std::path::Path) -> Watched {
    let mut cmd = storybench_cmd();
    cmd.args(["--database-url", &db.url])
        .args(args)
        .arg("--out")
        .arg(out);
    Watched::spawn(cmd)
}

/// Killed while a policy set is being switched (rls, on its copy) and while a migration
/// runs under load (ops, on its copy): the dataset itself was never touched, so the next
/// run drops the dead processes' copies, says so, and reuses the sealed dataset unchanged.
#[tokio::test]
async fn killed_mid_variant_switch_and_mid_operation_the_dataset_is_reused_unchanged() {
    let db = TestDb::new("crash_variant").await;
    let root = temp_root("crash_variant");
    common::seed_tiny(&db, &root.join("seed"));

    // rls switches policy sets on its pristine copy: kill it there.
    let mut rls = command(&db, &["rls", "--trials", "3"], &root.join("rls"));
    rls.wait_for(" · indexes ", Duration::from_secs(60));
    poll("rls copy", || async { copies(&db).await > 0 }).await;
    rls.signal(Signal::SIGKILL);
    let (status, _, _) = rls.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), None, "killed by a signal");

    // ops: kill it while the operation runs beside the load, on its copy.
    let mut ops = command(
        &db,
        &[
            "ops",
            "--quick",
            "--rate",
            "40",
            "--migration",
            "tests/fixtures/migrations/hold_lock.sql",
        ],
        &root.join("ops"),
    );
    ops.wait_for("hold_lock alone:", Duration::from_secs(120));
    poll("ops copy", || async { copies(&db).await > 0 }).await;
    ops.signal(Signal::SIGKILL);
    let (status, _, _) = ops.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), None, "killed by a signal");
    assert!(
        copies(&db).await >= 1,
        "the killed commands left their copies"
    );

    let next = command(
        &db,
        &["run", "--quick", "--anchor", ANCHOR],
        &root.join("run"),
    );
    let (status, _, err) = next.wait_exit(Duration::from_secs(300));
    assert!(status.success(), "{err}");
    assert!(
        err.contains("left behind by a storybench that was killed"),
        "{err}"
    );
    assert!(
        err.contains("reusing the dataset"),
        "the sealed dataset verified unchanged: {err}"
    );
    assert_eq!(copies(&db).await, 0, "copies left after the run");
}

/// The server goes away (immediate shutdown) while explain measures: one clear error within
/// seconds, partial results, and the next command on the same data directory works.
#[test]
fn an_immediate_shutdown_mid_stage_is_one_clear_error_and_the_next_command_works() {
    let root = temp_root("crash_shutdown");
    let data = root.join("pgdata");
    let sb = |args: &[&str]| {
        storybench_cmd()
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .unwrap()
    };
    let seeded = sb(&[
        "seed",
        "--profile",
        "tiny",
        "--anchor",
        ANCHOR,
        // The database-side fingerprint: what the dataset is checked against after the crash.
        "--verify",
        "--out",
        &root.join("seed").to_string_lossy(),
    ]);
    assert!(seeded.status.success(), "{}", common::stderr(&seeded));
    let out = root.join("explain");
    let mut cmd = storybench_cmd();
    cmd.arg("--data-dir")
        .arg(&data)
        .args([
            "explain",
            "--strategies",
            "fk_only,doc",
            "--runs",
            "3",
            "--out",
        ])
        .arg(&out);
    let mut explain = Watched::spawn(cmd);
    explain.wait_for(" measured on 2 strategies", Duration::from_secs(120));
    let cluster = storybench::cluster::EmbeddedCluster::new(&data, None).unwrap();
    let pg_ctl = cluster.bins.tool("pg_ctl");
    let mut stop = if storybench::cluster::is_root() {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&pg_ctl);
        c
    } else {
        std::process::Command::new(&pg_ctl)
    };
    let stopped = stop
        .arg("-D")
        .arg(&data)
        .args(["-m", "immediate", "stop"])
        .output()
        .unwrap();
    assert!(
        stopped.status.success(),
        "{}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    let (status, took, err) = explain.wait_exit(Duration::from_secs(30));
    assert!(
        took < Duration::from_secs(20),
        "it noticed within seconds: {took:?}"
    );
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("Error:") || l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "one clear error: {err}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(r["status"], "failed", "{r:#}");
    let measured = r["explain"]["queries"]
        .as_array()
        .expect("the queries measured before the server went away are kept")
        .iter()
        .flat_map(|q| q["subjects"].as_array().unwrap())
        .flat_map(|s| s["by_strategy"].as_array().unwrap())
        .filter(|b| b["latency"]["count"].as_u64().unwrap_or(0) > 0)
        .count();
    assert!(measured > 0, "partial explain figures: {r:#}");
    assert!(err.contains("the server went away"), "{err}");
    // The next command starts the server again (crash recovery), sweeps the copies, works.
    let again = sb(&[
        "explain",
        "--strategies",
        "doc",
        "--runs",
        "2",
        "--queries",
        "recent_stories",
        "--out",
        &root.join("again").to_string_lossy(),
    ]);
    assert!(again.status.success(), "{}", common::stderr(&again));
    sb(&["db", "stop"]);
}
