//! Reliability and safety under faults and bad input (issue 9), against real clusters.

mod common;

use common::{stderr, stdout, storybench_cmd, temp_root, TestDb};
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn results(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

fn assert_counts_add_up(r: &Value) {
    let f = &r["load"]["figures"];
    let (attempted, ok, failed) = (
        f["attempted"].as_u64().unwrap(),
        f["ok"].as_u64().unwrap(),
        f["failed"].as_u64().unwrap(),
    );
    assert_eq!(attempted, ok + failed, "ok + errors = attempted");
    let by_query: u64 = f["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["ok"].as_u64().unwrap() + q["errors"].as_u64().unwrap())
        .sum();
    assert_eq!(by_query, attempted, "per-query counts add up too");
}

#[tokio::test]
async fn load_survives_terminated_connections_and_counts_them() {
    let db = TestDb::new("terminate").await;
    let out = temp_root("terminate");
    let child = storybench_cmd()
        .args([
            "--database-url",
            &db.url,
            "load",
            "--sql",
            "SELECT pg_sleep(0.001)",
            "--clients",
            "4",
            "--duration",
            "4s",
            "--warmup",
            "0s",
            "--out",
        ])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_for_sessions(&db.url, "pg_sleep", 2).await;
    let mut admin = db.conn().await;
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'storybench' AND query LIKE '%pg_sleep%' LIMIT 2) t",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(killed >= 1, "terminated some load connections");
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let r = results(&out);
    assert_counts_add_up(&r);
    let f = &r["load"]["figures"];
    assert!(
        f["failed"].as_u64().unwrap() >= 1,
        "failed requests counted"
    );
    let errors = f["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e["sqlstate"] == "57P01" || e["sqlstate"] == "connection"),
        "by SQLSTATE: {errors:?}"
    );
    // Reconnected: work continued after the kill.
    let late_ok: u64 = f["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["second"].as_u64().unwrap() >= 2)
        .map(|p| p["ok"].as_u64().unwrap())
        .sum();
    assert!(late_ok > 0, "requests succeed after the kill");
    assert!(
        errors
            .iter()
            .all(|e| e["first_at_s"].as_f64().is_some() && e["last_at_s"].as_f64().is_some()),
        "affected window recorded"
    );
}

#[tokio::test]
async fn load_survives_a_server_restart() {
    let root = temp_root("restart");
    let data = root.join("pgdata");
    let sb = |args: &[&str]| {
        storybench_cmd()
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .unwrap()
    };
    assert!(sb(&["db", "start"]).status.success());
    let out = root.join("out");
    let child = storybench_cmd()
        .arg("--data-dir")
        .arg(&data)
        .args([
            "load",
            "--sql",
            "SELECT 1",
            "--clients",
            "2",
            "--duration",
            "6s",
            "--warmup",
            "0s",
            "--out",
        ])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = stdout(&sb(&["db", "url"])).trim().to_string();
    common::wait_for_sessions(&url, "SELECT 1", 2).await;
    assert!(sb(&["db", "stop"]).status.success());
    // Down on purpose for a while: requests must fail, then the load must resume.
    std::thread::sleep(Duration::from_millis(700));
    assert!(sb(&["db", "start"]).status.success());
    let status = child.wait_with_output().unwrap().status;
    // The server-side snapshot before the restart may be gone; the run still writes its results.
    let r = results(&out);
    assert_counts_add_up(&r);
    let f = &r["load"]["figures"];
    assert!(
        f["failed"].as_u64().unwrap() >= 1,
        "requests failed while the server was down"
    );
    let late_ok: u64 = f["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["second"].as_u64().unwrap() >= 4)
        .map(|p| p["ok"].as_u64().unwrap())
        .sum();
    assert!(
        late_ok > 0,
        "the run reconnected after the restart (exit {status:?})"
    );
    sb(&["db", "stop"]);
}

#[tokio::test]
async fn a_statement_timeout_is_reported_per_query_and_others_are_measured() {
    let db = TestDb::new("timeout").await;
    let dir = temp_root("timeout");
    common::seed_tiny(&db, &dir.join("seed"));
    let shipped = std::fs::read_to_string(format!(
        "{}/scenarios/queries.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let slow = "\n[[query]]\nname = \"slow_query\"\ndescription = \"sleeps past the timeout\"\nrole = \"service\"\nkind = \"read\"\nparams = []\nsql = \"SELECT pg_sleep(2)\"\n";
    let catalog = dir.join("queries.toml");
    std::fs::write(&catalog, format!("{shipped}{slow}")).unwrap();
    let out = storybench_cmd()
        .env("STORYBENCH_CATALOG", &catalog)
        .args([
            "--database-url",
            &db.url,
            "explain",
            "--strategies",
            "doc",
            "--queries",
            "slow_query,recent_stories",
            "--runs",
            "2",
            "--statement-timeout",
            "300ms",
            "--out",
        ])
        .arg(dir.join("out"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let r = results(&dir.join("out"));
    let errors = r["explain"]["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["query"] == "slow_query"
            && e["error"].as_str().unwrap().contains("statement timeout")),
        "{errors:?}"
    );
    let recent = r["explain"]["queries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "recent_stories")
        .unwrap();
    assert!(
        recent["subjects"][0]["by_strategy"][0]["latency"]["count"]
            .as_u64()
            .unwrap()
            >= 1,
        "the other query was measured"
    );
}

#[tokio::test]
async fn sigterm_writes_partial_results_and_stops_the_cluster_it_started() {
    let root = temp_root("sigterm");
    let data = root.join("pgdata");
    let out = root.join("out");
    let mut child = storybench_cmd()
        .arg("--data-dir")
        .arg(&data)
        .args([
            "load",
            "--sql",
            "SELECT 1",
            "--clients",
            "2",
            "--duration",
            "60s",
            "--warmup",
            "0s",
            "--out",
        ])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the load to run (the cluster is started by the command itself; initdb's
    // bootstrap also writes postmaster.pid, so the port file is what says it is configured).
    let cluster = storybench::cluster::EmbeddedCluster::new(&data, None).unwrap();
    let started = Instant::now();
    let url = loop {
        if let Ok(url) = cluster.url() {
            break url;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the command set up its cluster"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    common::wait_for_sessions(&url, "SELECT 1", 2).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let t = Instant::now();
    let status = child.wait().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "stopped within seconds"
    );
    assert!(!status.success());
    let r = results(&out);
    assert_eq!(r["status"], "interrupted");
    assert_eq!(r["partial"], true);
    assert!(out.join("report.html").is_file());
    assert!(
        !data.join("postmaster.pid").exists(),
        "the embedded cluster it started was stopped"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temp files left: {leftovers:?}");
}

#[tokio::test]
async fn bad_input_gets_one_clear_message_and_changes_nothing() {
    let db = TestDb::new("badin").await;
    let before = db.dump();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--database-url", "not a url", "schema", "show"],
            "malformed",
        ),
        (
            vec![
                "--database-url",
                "postgres://nobody@127.0.0.1:1/x",
                "schema",
                "show",
            ],
            "cannot connect",
        ),
        (
            vec!["--database-url", &db.url, "seed", "--scale", "-3"],
            "--scale",
        ),
        (
            vec!["--database-url", &db.url, "seed", "--profile", "nosuch"],
            "nosuch",
        ),
        (
            vec![
                "--database-url",
                &db.url,
                "explain",
                "--strategies",
                "nosuch",
            ],
            "nosuch",
        ),
        (
            vec![
                "--database-url",
                &db.url,
                "schema",
                "apply",
                "--policies",
                "nosuch",
            ],
            "nosuch",
        ),
        (
            vec![
                "--database-url",
                &db.url,
                "load",
                "--sql",
                "SELECT 1",
                "--rate",
                "-5",
            ],
            "--rate",
        ),
        (
            vec![
                "--database-url",
                &db.url,
                "load",
                "--sql",
                "SELECT 1",
                "--clients",
                "0",
            ],
            "between 1",
        ),
        (
            vec![
                "--database-url",
                &db.url,
                "load",
                "--sql",
                "SELECT 1",
                "--duration",
                "-1s",
            ],
            "duration",
        ),
        (
            vec!["--database-url", &db.url, "load", "--scenario", "nosuch"],
            "nosuch",
        ),
        (
            vec!["--database-url", &db.url, "explain", "--queries", "nosuch"],
            "nosuch",
        ),
    ];
    for (args, needle) in &cases {
        let out = storybench_cmd().args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} must fail");
        let err = stderr(&out);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    }
    // A read-only --out: tests/faults_input.rs (run as an unprivileged user, so it also
    // holds when the tests run as root).
    assert_eq!(before, db.dump(), "bad input changed nothing");
}

#[tokio::test]
async fn every_command_refuses_a_foreign_database_and_protected_names() {
    let db = TestDb::new("foreign_all").await;
    let mut conn = db.conn().await;
    sqlx::Executor::execute(
        &mut conn,
        "CREATE TABLE invoices (id int PRIMARY KEY); INSERT INTO invoices VALUES (1)",
    )
    .await
    .unwrap();
    let before = db.dump();
    let out_dir = temp_root("foreign-out");
    let o = out_dir.to_str().unwrap();
    for args in [
        vec!["seed", "--profile", "tiny", "--out", o],
        vec!["seed", "--profile", "tiny", "--reset", "--out", o],
        vec!["explain", "--out", o],
        vec!["rls", "--out", o],
        vec!["partitions", "--out", o],
        vec!["load", "--sql", "SELECT 1", "--duration", "1s", "--out", o],
        vec![
            "load",
            "--scenario",
            "bedtime",
            "--duration",
            "1s",
            "--out",
            o,
        ],
        vec![
            "capacity",
            "--scenario",
            "bedtime",
            "--max-steps",
            "1",
            "--out",
            o,
        ],
        vec!["schema", "apply"],
        vec!["schema", "reset"],
        vec!["run", "--quick", "--out", o],
    ] {
        let out = db.storybench(&args);
        assert!(!out.status.success(), "{args:?} must refuse");
        assert!(
            stderr(&out).contains("did not create"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(before, db.dump(), "byte-for-byte unchanged");
    // Protected names are refused before connecting.
    let prod = db.url.replacen(&format!("/{}", db.name), "/app_prod", 1);
    let out = storybench_cmd()
        .args(["--database-url", &prod, "schema", "apply"])
        .output()
        .unwrap();
    assert!(
        !out.status.success() && stderr(&out).contains("protected"),
        "{}",
        stderr(&out)
    );
    let out = storybench_cmd()
        .args([
            "--database-url",
            &db.url,
            "--protect",
            "foreign",
            "schema",
            "show",
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success() && stderr(&out).contains("protected"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn passwords_never_reach_output_results_or_reports() {
    let db = TestDb::new("secret").await;
    // The test cluster trusts local connections, so any password is accepted and must be hidden.
    let url = db.url.replacen("postgres@", "postgres:s3cr3tPassw0rd@", 1);
    let dir = temp_root("secret");
    let out = storybench_cmd()
        .args([
            "--database-url",
            &url,
            "-v",
            "load",
            "--sql",
            "SELECT 1",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = storybench_cmd()
        .args([
            "--database-url",
            &url.replace("localhost", "127.0.0.2").replace("host=", "x="),
            "schema",
            "show",
        ])
        .output()
        .unwrap();
    for text in [
        stdout(&out),
        stderr(&out),
        stderr(&err),
        std::fs::read_to_string(dir.join("results.json")).unwrap(),
        std::fs::read_to_string(dir.join("report.html")).unwrap(),
    ] {
        assert!(!text.contains("s3cr3tPassw0rd"), "password leaked: {text}");
    }
}

#[test]
fn seeding_refuses_up_front_when_the_disk_cannot_hold_it() {
    let root = temp_root("disk");
    let data = root.join("pgdata");
    let out = storybench_cmd()
        .arg("--data-dir")
        .arg(&data)
        .args(["seed", "--scale", "100000", "--out"])
        .arg(root.join("o"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not enough disk space"),
        "{}",
        stderr(&out)
    );
    let _ = storybench_cmd()
        .arg("--data-dir")
        .arg(&data)
        .args(["db", "stop"])
        .output();
}
