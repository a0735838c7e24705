//! Operations under load on a real cluster with the tiny dataset: a migration that holds
//! ACCESS EXCLUSIVE on stories for about a second shows as lock waits behind it and as a
//! stall of the queries on stories, and a malformed migration is refused with its file and
//! line before any load runs. Both leave the seeded dataset exactly as it was.

mod common;

use common::{seed_tiny, stderr, storybench_cmd, temp_root, TestDb, Watched};
use nix::sys::signal::Signal;
use serde_json::Value;
use sqlx::AssertSqlSafe;
use std::collections::BTreeMap;
use std::time::Duration;

fn q(name: &str) -> AssertSqlSafe<String> {
    #[derive(serde::Deserialize)]
    struct F {
        queries: BTreeMap<String, String>,
    }
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/ops_checks.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let f: F = toml::from_str(&text).unwrap();
    AssertSqlSafe(f.queries[name].clone())
}

fn results(dir: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

/// Seeds tiny into a fresh database, dumps it, and runs `ops --quick` at 40/s with one
/// fixture migration: (database, dump before, output directory, the command's output).
async fn ops_on_tiny(
    tag: &str,
    migration: &str,
) -> (TestDb, String, std::path::PathBuf, std::process::Output) {
    let file = format!("tests/fixtures/migrations/{migration}");
    ops_with(tag, &["--migration", &file]).await
}

/// The same with other `ops` arguments.
async fn ops_with(
    tag: &str,
    args: &[&str],
) -> (TestDb, String, std::path::PathBuf, std::process::Output) {
    let db = TestDb::new(tag).await;
    let root = temp_root(tag);
    seed_tiny(&db, &root.join("seed"));
    let before = db.dump();
    let out_dir = root.join("ops");
    let mut all = vec!["ops", "--quick", "--rate", "40"];
    all.extend_from_slice(args);
    let dir = out_dir.to_string_lossy().to_string();
    all.extend_from_slice(&["--out", &dir]);
    let out = db.storybench(&all);
    (db, before, out_dir, out)
}

#[tokio::test]
async fn a_lock_held_under_load_shows_in_lock_waits_and_latency_and_changes_nothing() {
    let (db, before, out_dir, out) = ops_on_tiny("ops_lock", "hold_lock.sql").await;
    assert!(out.status.success(), "{}", stderr(&out));
    let r = results(&out_dir);
    let op = &r["ops"]["operations"][0];
    assert_eq!(op["tables"], serde_json::json!(["stories"]));
    // Alone and under load the LOCK … pg_sleep(1) transaction lasts about a second.
    assert!(op["alone"]["seconds"].as_f64().unwrap() >= 0.95, "{op}");
    let held = op["under_load"]["seconds"].as_f64().unwrap();
    assert!(held >= 0.95, "{op}");
    // Some app request waited behind the operation for most of that second.
    let groups = op["lock_waits"]["groups"].as_array().unwrap();
    let behind: Vec<&Value> = groups
        .iter()
        .filter(|g| g["blocked_by_operation"] == true && g["object"] == "stories")
        .collect();
    assert!(
        !behind.is_empty(),
        "no wait behind the operation: {groups:?}"
    );
    let longest = behind
        .iter()
        .map(|g| g["max_wait_ms"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(longest >= 300.0, "longest wait {longest} ms");
    // The stall shows in the affected queries' latency during the operation, not before.
    let stalled = op["queries"].as_array().unwrap().iter().any(|q| {
        q["affected"] == true
            && q["during"]["max_ms"].as_f64().unwrap_or(0.0) >= 300.0
            && q["before"]["max_ms"].as_f64().unwrap_or(f64::MAX) < 150.0
    });
    assert!(stalled, "no affected query stalled: {}", op["queries"]);
    // Its finding says it stalls the app.
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(html.contains("id=\"ops-hold_lock\""), "no ops section");
    assert!(html.contains("stalls the app"), "no stall finding");
    assert_eq!(db.dump(), before, "the dataset changed");
}

#[tokio::test]
async fn a_malformed_migration_is_refused_with_file_and_line_and_changes_nothing() {
    let (db, before, out_dir, out) = ops_on_tiny("ops_bad", "broken.sql").await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("broken.sql:5") && err.contains("no_such_column"),
        "{err}"
    );
    // Refused in the rehearsal: no load ran, no section was written.
    assert!(!err.contains("under load at"), "{err}");
    assert!(results(&out_dir).get("ops").is_none());
    assert_eq!(db.dump(), before, "the dataset changed");
}

#[tokio::test]
async fn a_new_column_breaks_prepared_select_star_statements_and_the_report_says_so() {
    let (db, before, out_dir, out) = ops_on_tiny("ops_col", "add_column.sql").await;
    assert!(out.status.success(), "{}", stderr(&out));
    let r = results(&out_dir);
    let op = &r["ops"]["operations"][0];
    // The app's connections keep their prepared statements: one that selects stories.* fails
    // with 0A000 ("cached plan must not change result type") once the column exists.
    let errors = op["errors"].as_array().unwrap();
    let stale = errors
        .iter()
        .find(|e| e["sqlstate"] == "0A000")
        .unwrap_or_else(|| panic!("no 0A000 among {errors:?}"));
    assert!(stale["count"].as_u64().unwrap() > 0);
    let started = op["under_load"]["started_s"].as_f64().unwrap();
    assert!(
        stale["first_at_s"].as_f64().unwrap() >= started - 1.0,
        "{stale}"
    );
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(
        html.contains("The app's errors while it ran"),
        "no errors table"
    );
    assert_eq!(db.dump(), before, "the dataset changed");
}

#[tokio::test]
async fn the_backup_runs_under_load_and_restores_to_the_same_fingerprint() {
    let (db, before, out_dir, out) = ops_with("ops_backup", &["--operations", "backup"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let r = results(&out_dir);
    let op = &r["ops"]["operations"][0];
    assert_eq!(op["name"], "backup", "{op}");
    assert!(op["under_load"]["error"].is_null(), "{op}");
    // The document's three steps ran beside the load: two dumps and the gzip.
    let steps = op["under_load"]["statements"].as_array().unwrap();
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert!(steps[2]["head"]
        .as_str()
        .unwrap()
        .starts_with("gzip backup_"));
    let b = &op["backup"];
    let full = b["full_dump_bytes"].as_u64().unwrap();
    let gz = b["full_gzip_bytes"].as_u64().unwrap();
    assert!(full > 10_000 && gz > 0 && gz < full, "{b}");
    assert!(b["tables_dump_bytes"].as_u64().unwrap() > 0, "{b}");
    // The directory dump restored with pg_restore -j holds the same data as the copy.
    let restore = &b["restore"];
    assert!(
        restore["restore_seconds"].as_f64().unwrap() > 0.0,
        "{restore}"
    );
    assert_eq!(restore["same_fingerprint"], true, "{restore}");
    assert_eq!(
        restore["source_fingerprint"], restore["restored_fingerprint"],
        "{restore}"
    );
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(html.contains("id=\"ops-backup\""), "no backup section");
    assert_eq!(db.dump(), before, "the dataset changed");
}

#[tokio::test]
async fn the_pg_cron_job_fires_during_the_load_and_its_runs_are_in_the_results() {
    let (db, before, out_dir, out) = ops_with("ops_cron", &["--operations", "cron"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let r = results(&out_dir);
    let op = &r["ops"]["operations"][0];
    assert_eq!(op["name"], "cron_cleanup", "{op}");
    let c = &op["cron"];
    // The test cluster preloads pg_cron: the real scheduler ran it, not storybench.
    assert_eq!(c["runner"], "pg_cron", "{c}");
    assert!(
        c["pg_cron_version"].as_str().unwrap().starts_with("1."),
        "{c}"
    );
    assert_eq!(c["document_schedule"], "0 * * * *");
    let runs = c["runs"].as_array().unwrap();
    assert!(!runs.is_empty(), "{c} {}", op["under_load"]);
    // Within the load's measured seconds, lined up against its per-second p99.
    let seconds = op["timeline"].as_array().unwrap().len() as f64;
    for run in runs {
        assert_eq!(run["status"], "succeeded", "{run}");
        let (s, e) = (
            run["started_s"].as_f64().unwrap(),
            run["finished_s"].as_f64().unwrap(),
        );
        assert!(
            s >= 0.0 && s <= e && e <= seconds + 1.0,
            "{run} in {seconds} s"
        );
        assert!(run["foreground_p99_ms"].as_f64().is_some(), "{run}");
    }
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(html.contains("id=\"ops-cron_cleanup\""), "no cron section");
    assert_eq!(db.dump(), before, "the dataset changed");
}

/// Ctrl-C while the job is scheduled, and while a backup is being restored: the job is
/// unscheduled and the scratch database and copies dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_ops_leaves_no_scratch_database_or_cron_job() {
    let db = TestDb::new("ops_int").await;
    let root = temp_root("ops_int");
    seed_tiny(&db, &root.join("seed"));
    let before = db.dump();
    let mut admin = common::connect(&common::url_for("postgres")).await;
    for (ops, marker) in [
        ("cron", "scheduled (* * * * *)"),
        ("backup", "restoring the backup into"),
    ] {
        let mut cmd = storybench_cmd();
        cmd.arg("--database-url")
            .arg(&db.url)
            .args([
                "ops",
                "--quick",
                "--rate",
                "40",
                "--operations",
                ops,
                "--out",
            ])
            .arg(root.join(ops));
        let mut w = Watched::spawn(cmd);
        let pid = w.child.id().to_string();
        w.wait_for(marker, Duration::from_secs(120));
        w.signal(Signal::SIGINT);
        let (status, _, err) = w.wait_exit(Duration::from_secs(15));
        assert_eq!(status.code(), Some(130), "{ops}: {err}");
        if ops == "cron" {
            let jobs: i64 = sqlx::query_scalar(q("cron_jobs_of"))
                .bind(&pid)
                .fetch_one(&mut admin)
                .await
                .unwrap();
            assert_eq!(jobs, 0, "{ops}: a cron job was left behind");
        }
        let dbs: i64 = sqlx::query_scalar(q("databases_of"))
            .bind(&pid)
            .fetch_one(&mut admin)
            .await
            .unwrap();
        assert_eq!(dbs, 0, "{ops}: a copy or scratch database was left behind");
    }
    assert_eq!(db.dump(), before, "the dataset changed");
}

/// pgcrypto and audit on tiny: the decrypt's read cost has its ratio and interval and returns
/// the plaintext; the key's places are checked for real (PostgreSQL 15 normalises the literal
/// in pg_stat_statements; pg_stat_activity and the statement log show it); audit_trigger()
/// on adds one audit row per row written and more WAL per write (counted over many writes in
/// the copy's pg_stat_statements, after a CHECKPOINT); nothing changes the dataset.
#[tokio::test]
async fn pgcrypto_read_cost_key_exposure_and_audit_trigger_cost_are_measured() {
    let (db, before, out_dir, out) = ops_with(
        "ops_crypto_audit",
        &["--operations", "pgcrypto,audit,wal-archive"],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let r = results(&out_dir);
    // WAL archiving restarts the server: on an external one it is skipped, and said so.
    let skipped = r["ops"]["skipped"].as_array().unwrap();
    assert!(
        skipped[0].as_str().unwrap().contains("embedded cluster"),
        "{skipped:?}"
    );
    assert!(r["wal_archive"].is_null());
    let c = &r["ops"]["pgcrypto"];
    assert!(c["encrypt"]["rows"].as_i64().unwrap() > 0, "{c}");
    assert!(
        c["encrypt"]["heroes_bytes_encrypted"].as_i64().unwrap()
            > c["encrypt"]["heroes_bytes_plain"].as_i64().unwrap(),
        "{c}"
    );
    let reads = c["reads"].as_array().unwrap();
    assert_eq!(reads.len(), 2, "{c}");
    for rd in reads {
        assert_eq!(rd["decrypted_equals_plaintext"], true, "{rd}");
        assert!(rd["rows"].as_i64().unwrap() > 0, "{rd}");
        assert!(rd["error"].is_null(), "{rd}");
        let arms = rd["arms"].as_array().unwrap();
        let forms: Vec<&str> = arms.iter().map(|a| a["form"].as_str().unwrap()).collect();
        assert_eq!(forms, ["plain", "literal", "bound", "setting"], "{rd}");
        for a in &arms[1..] {
            let i = &a["ratio"];
            let (lo, est, hi) = (
                i["low"].as_f64().unwrap(),
                i["estimate"].as_f64().unwrap(),
                i["high"].as_f64().unwrap(),
            );
            assert!(lo > 0.0 && lo <= est && est <= hi, "{a}");
            assert!(a["work"]["shared_hit"].is_u64(), "{a}");
        }
        assert!(
            rd["bound_vs_literal"]["estimate"].as_f64().is_some(),
            "{rd}"
        );
    }
    let seen = |form: &str, place: &str| -> Value {
        c["exposure"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["form"] == form && x["place"] == place)
            .map_or(Value::Null, |x| x["key_visible"].clone())
    };
    assert_eq!(seen("literal", "pg_stat_statements"), false, "{c}");
    assert_eq!(seen("literal", "pg_stat_activity"), true, "{c}");
    assert_eq!(seen("literal", "log_statement"), true, "{c}");
    assert_eq!(seen("literal", "log_min_duration"), true, "{c}");
    assert_eq!(seen("bound", "pg_stat_statements"), false, "{c}");
    assert_eq!(seen("bound", "pg_stat_activity"), false, "{c}");
    // The statement log writes bound parameters unless log_parameter_max_length = 0.
    assert_eq!(seen("bound", "log_statement"), true, "{c}");
    assert_eq!(seen("bound", "log_statement_no_parameters"), false, "{c}");
    assert_eq!(seen("setting", "pg_stat_activity"), false, "{c}");

    let a = &r["ops"]["audit"];
    assert_eq!(a["wal_from"], "pg_stat_statements", "{a}");
    assert_eq!(a["checkpointed"], true, "{a}");
    let paths = a["paths"].as_array().unwrap();
    let names: Vec<&str> = paths.iter().map(|p| p["path"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["story_creation", "flag_review", "hero_update"],
        "{a}"
    );
    for p in paths {
        assert!(p["error"].is_null(), "{p}");
        let (off, on) = (&p["growth_off"], &p["growth_on"]);
        let written = on["rows_written"].as_i64().unwrap();
        assert!(written >= on["writes"].as_i64().unwrap(), "{p}");
        assert_eq!(on["audit_rows"], on["rows_written"], "{p}");
        assert_eq!(off["rows_written"], on["rows_written"], "{p}");
        assert_eq!(off["audit_rows"], 0, "{p}");
        assert!(on["audit_bytes"].as_i64().unwrap() > 0, "{p}");
        // WAL over the growth writes, each copy after a CHECKPOINT: the trigger's inserts
        // come on top of the same writes, so on > off on every path.
        let wal = |g: &Value| g["wal_bytes"].as_f64().unwrap() / g["writes"].as_f64().unwrap();
        assert!(wal(off) > 0.0 && wal(on) > wal(off), "{p}");
        assert!(p["ratio"]["estimate"].as_f64().is_some(), "{p}");
    }
    // launch_mix at 40/s: create_story in 10 % of the arrivals; no flag review or hero update.
    let per_s = |i: usize| paths[i]["writes_per_second"].as_f64().unwrap();
    assert!((per_s(0) - 4.0).abs() < 1e-9, "{a}");
    assert_eq!(per_s(1), 0.0);
    assert_eq!(per_s(2), 0.0);
    let rows_day = a["rows_per_day"].as_f64().unwrap();
    assert!((rows_day - 4.0 * 86_400.0).abs() < 1.0, "{a}");
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(html.contains("id=\"ops-pgcrypto\""), "no pgcrypto section");
    assert!(html.contains("id=\"ops-audit\""), "no audit section");
    assert!(
        html.contains("keeps the pgcrypto key in the SQL text"),
        "no key finding"
    );
    assert_eq!(db.dump(), before, "the dataset changed");
}
