//! Operations under load on a real cluster with the tiny dataset: a migration that holds
//! ACCESS EXCLUSIVE on stories for about a second shows as lock waits behind it and as a
//! stall of the queries on stories, and a malformed migration is refused with its file and
//! line before any load runs. Both leave the seeded dataset exactly as it was.

mod common;

use common::{seed_tiny, stderr, temp_root, TestDb};
use serde_json::Value;

fn results(dir: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

/// Seeds tiny into a fresh database, dumps it, and runs `ops --quick` at 40/s with one
/// fixture migration: (database, dump before, output directory, the command's output).
async fn ops_on_tiny(
    tag: &str,
    migration: &str,
) -> (TestDb, String, std::path::PathBuf, std::process::Output) {
    let db = TestDb::new(tag).await;
    let root = temp_root(tag);
    seed_tiny(&db, &root.join("seed"));
    let before = db.dump();
    let out_dir = root.join("ops");
    let file = format!("tests/fixtures/migrations/{migration}");
    let out = db.storybench(&[
        "ops",
        "--quick",
        "--rate",
        "40",
        "--migration",
        &file,
        "--out",
        &out_dir.to_string_lossy(),
    ]);
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
