//! Reliability under connection faults (issue 9, continued from tests/faults.rs): a COPY
//! connection killed mid-seed, a wrong password, and the server version recorded with results.

mod common;

use common::{stderr, stdout, storybench_cmd, temp_root, TestDb};
use serde_json::Value;
use std::process::Stdio;
use std::time::{Duration, Instant};

const ANCHOR: &str = "2026-11-20";

fn results(dir: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

/// One clear message: no panic, no Rust backtrace, no pile of repeated errors.
fn assert_clean_failure(err: &str) {
    assert!(!err.contains("panicked"), "no panic: {err}");
    assert!(!err.contains("stack backtrace"), "no backtrace: {err}");
    assert!(!err.contains("RUST_BACKTRACE"), "no backtrace hint: {err}");
    assert_eq!(
        err.matches("error:").count(),
        1,
        "exactly one error line: {err}"
    );
}

#[tokio::test]
async fn a_copy_connection_killed_mid_seed_fails_fast_and_leaves_the_dataset_incomplete() {
    let db = TestDb::new("copykill").await;
    let out_dir = temp_root("copykill");
    let child = storybench_cmd()
        .args([
            "--database-url",
            &db.url,
            "seed",
            "--profile",
            "default",
            "--scale",
            "2",
            "--anchor",
            ANCHOR,
            "--out",
        ])
        .arg(&out_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Wait until COPY is running on this database, then kill every COPY backend.
    let mut admin = common::connect(&common::url_for("postgres")).await;
    let started = Instant::now();
    let killed = loop {
        let killed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND query ILIKE 'COPY%' AND state = 'active') t",
        )
        .bind(&db.name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
        if killed > 0 {
            break killed;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the seed never started COPY"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let killed_at = Instant::now();
    // The process must end on its own within seconds; kill it if it hangs so the test ends.
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    while !waiter.is_finished() && killed_at.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hung = !waiter.is_finished();
    if hung {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let output = waiter.join().unwrap();
    let elapsed = killed_at.elapsed();
    assert!(
        !hung,
        "seed hung after its COPY connection died ({killed} killed)"
    );
    assert!(
        elapsed < Duration::from_secs(15),
        "seed stopped {elapsed:?} after the kill"
    );
    assert!(!output.status.success(), "a broken seed is not a success");
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert_clean_failure(&err);
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap();
    eprintln!("seed after the kill ({elapsed:?}): {line}");
    assert!(
        line.contains("COPY into") && line.contains("terminat"),
        "says which COPY lost its connection and why: {line}"
    );
    // The results say the run failed and is partial.
    let r = results(&out_dir);
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["partial"], true);
    assert_eq!(r["dataset"]["status"], "loading", "{}", r["dataset"]);
    assert!(r["errors"][0].as_str().unwrap().contains("COPY into"));
    // No COPY of this seed is left running on the server.
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'COPY%' AND state = 'active'",
    )
    .bind(&db.name)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(left, 0, "no COPY left running");
    // The dataset stays marked incomplete and measuring commands refuse it.
    let mut conn = db.conn().await;
    let info = storybench::seed::dataset(&mut conn).await.unwrap().unwrap();
    assert_eq!(info.status, "loading");
    let explain_out = out_dir.join("explain");
    let out = db.storybench(&[
        "explain",
        "--queries",
        "recent_stories",
        "--out",
        explain_out.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("incomplete"), "{}", stderr(&out));
}

#[tokio::test]
async fn a_wrong_password_is_one_clear_error_that_never_shows_the_password() {
    let db = TestDb::new("password").await;
    let role = common::PASSWORD_ROLE;
    let mut admin = db.conn().await;
    // The role is cluster-wide; the test cluster is private to this test binary.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN PASSWORD 'Right-pw-4417'"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    let before = db.dump();
    let wrong = "Wr0ng-pw-9921";
    let socket_url = db.url.replacen("postgres@", &format!("{role}:{wrong}@"), 1);
    let mut tcp = url::Url::parse(&socket_url).unwrap();
    tcp.set_host(Some("127.0.0.1")).unwrap();
    tcp.set_query(None);
    let out_dir = temp_root("password");
    let o = out_dir.to_str().unwrap();
    for url in [socket_url.clone(), tcp.to_string()] {
        for args in [
            vec!["schema", "show"],
            vec!["seed", "--profile", "tiny", "--out", o],
        ] {
            let out = storybench_cmd()
                .arg("--database-url")
                .arg(&url)
                .args(&args)
                .output()
                .unwrap();
            let (o, e) = (stdout(&out), stderr(&out));
            assert!(!out.status.success(), "{url} {args:?} must fail");
            assert_clean_failure(&e);
            assert!(
                e.contains(&format!(
                    "password authentication failed for user \"{role}\""
                )),
                "{args:?}: {e}"
            );
            assert!(
                !o.contains(wrong) && !e.contains(wrong),
                "the wrong password leaked: {o}{e}"
            );
        }
    }
    let written = std::fs::read_to_string(out_dir.join("results.json")).unwrap();
    assert!(
        written.contains("password authentication failed"),
        "{written}"
    );
    assert!(
        !written.contains(wrong),
        "the wrong password leaked into results.json"
    );
    assert_eq!(before, db.dump(), "a refused login changed nothing");
    // The right password gets in (the empty database holds no storybench schema yet).
    let right = socket_url.replacen(wrong, "Right-pw-4417", 1);
    let out = storybench_cmd()
        .args(["--database-url", &right, "schema", "show"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("Right-pw-4417") && !stderr(&out).contains("Right-pw-4417"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE {role}")))
        .execute(&mut admin)
        .await
        .unwrap();
}

#[tokio::test]
async fn results_record_that_the_server_major_is_a_tested_one() {
    let db = TestDb::new("version").await;
    let dir = temp_root("version");
    let out = db.storybench(&[
        "load",
        "--sql",
        "SELECT 1",
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let env = &results(&dir)["environment"];
    let major = env["postgres_version_num"].as_i64().unwrap() / 10000;
    assert_eq!(major, 15, "the test server is PostgreSQL 15: {env}");
    assert_eq!(env["postgres_major_tested"], true, "{env}");
    assert_eq!(env["tested_majors"], serde_json::json!([15]));
    assert!(
        !stderr(&out).contains("running anyway"),
        "no untested-version warning on a tested major: {}",
        stderr(&out)
    );
    assert!(storybench::pg_version::is_tested(major as u32));
}
