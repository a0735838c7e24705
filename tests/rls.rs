//! The RLS stage against a real cluster on the tiny dataset: the isolation audit (clean on
//! the shipped policy sets, catching a planted permissive policy), rows agreeing across
//! modes, and unset claims reported as a configuration error.

mod common;

use common::TestDb;
use serde_json::Value;
use sqlx::{AssertSqlSafe, Executor};
use std::path::{Path, PathBuf};

async fn seeded(tag: &str) -> TestDb {
    let db = TestDb::new(tag).await;
    common::seed_tiny(&db, &out_dir(&format!("{tag}-seed")));
    db
}

fn out_dir(tag: &str) -> PathBuf {
    common::temp_root(&format!("rls-{tag}"))
}

fn results(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("results.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Quick matrix settings: one trial, one run per mode, no set-up cost measurement.
const QUICK: [&str; 8] = [
    "--trials",
    "1",
    "--runs",
    "1",
    "--warmup",
    "0",
    "--setup-runs",
    "0",
];

/// Audit targets in scenarios/rls.toml, counted here from the file itself.
fn audit_target_names() -> Vec<String> {
    let text =
        std::fs::read_to_string(format!("{}/scenarios/rls.toml", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
    let doc: toml::Value = toml::from_str(&text).unwrap();
    doc["audit"]["target"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

/// The tables tests/fixtures/audit_skip.sql empties: the audit must skip exactly these.
const EMPTIED: [&str; 2] = ["cache_entries", "content_flags"];

fn skipped_names(set: &Value) -> Vec<String> {
    let mut names: Vec<String> = set["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let s = s.as_str().unwrap();
            s.strip_suffix(" (no row of another user)")
                .unwrap_or_else(|| panic!("a skip says why: {s}"))
                .to_string()
        })
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn audit_is_clean_on_shipped_policies_and_accounts_for_every_attempt() {
    let db = seeded("audit").await;
    let mut conn = db.conn().await;
    common::run_fixture(&mut conn, "audit_skip.sql").await;
    // The dataset was changed on purpose: seal it as it now is (storybench refuses a dataset
    // written to since its seal), and leave it idle (the stage copies it).
    storybench::pristine::reseal(&mut conn).await.unwrap();
    drop(conn);
    let dir = out_dir("audit-clean");
    let users = 3;
    let out = db.storybench(&[
        "rls",
        "--audit-only",
        "--audit-users",
        &users.to_string(),
        "--out",
        &dir.to_string_lossy(),
    ]);
    assert!(
        out.status.success(),
        "clean audit: {}",
        common::stderr(&out)
    );
    let r = results(&dir);
    let audit = &r["rls"]["audit"];
    assert_eq!(audit["leaks"], 0, "{audit:#}");
    // As found + doc, initplan, definer.
    assert_eq!(audit["sets"].as_array().unwrap().len(), 4);
    let targets = audit_target_names();
    let mut expected_skipped: Vec<String> = EMPTIED.iter().map(|s| s.to_string()).collect();
    expected_skipped.sort();
    // Every sampled user plus anon attacks every target that has a row, with four verbs.
    let attackers = users + 1;
    let expected_attempts = 4 * attackers * (targets.len() - expected_skipped.len());
    for set in audit["sets"].as_array().unwrap() {
        assert_eq!(skipped_names(set), expected_skipped, "{set:#}");
        assert_eq!(set["attempts"], expected_attempts, "{set:#}");
        assert_eq!(set["leaks"], 0, "{set:#}");
        assert_eq!(set["errors"], 0, "{set:#}");
        assert_eq!(set["leaks_found"].as_array().unwrap().len(), 0);
        let tables = set["tables"].as_array().unwrap();
        assert_eq!(tables.len(), targets.len(), "one entry per target");
        for t in tables {
            let skipped = expected_skipped.iter().any(|s| t["target"] == s.as_str());
            let want = if skipped { 0 } else { 4 * attackers };
            assert_eq!(t["attempts"], want, "{t:#}");
        }
    }
}

/// One planted leak per verb, one for anon and one on a child table (tests/fixtures/leaks/):
/// each alone must fail the audit, be reported with exactly its table, verb and role, and be
/// gone once the audit re-applies a shipped policy set.
#[tokio::test]
async fn audit_reports_each_planted_leak_with_table_verb_and_role() {
    let db = seeded("leaks").await;
    let users = 3u64;
    let cases = [
        ("select_heroes.sql", "heroes", "SELECT", "authenticated"),
        ("insert_stories.sql", "stories", "INSERT", "authenticated"),
        (
            "update_events.sql",
            "custom_events (public)",
            "UPDATE",
            "authenticated",
        ),
        (
            "delete_events.sql",
            "custom_events (public)",
            "DELETE",
            "authenticated",
        ),
        ("anon_stories.sql", "stories", "SELECT", "anon"),
        (
            "child_scenes.sql",
            "story_scenes",
            "SELECT",
            "authenticated",
        ),
    ];
    for (fixture, target, verb, role) in cases {
        let mut conn = db.conn().await;
        common::run_fixture(&mut conn, &format!("leaks/{fixture}")).await;
        // The stage copies the dataset (CREATE DATABASE … TEMPLATE): no session may stay on it.
        drop(conn);
        let dir = out_dir(&format!("leak-{fixture}"));
        let out = db.storybench(&[
            "rls",
            "--audit-only",
            "--audit-users",
            &users.to_string(),
            "--policy-sets",
            "initplan",
            "--out",
            &dir.to_string_lossy(),
        ]);
        let err = common::stderr(&out);
        assert!(!out.status.success(), "{fixture}: a leak must fail: {err}");
        let named = format!("{target} {verb} as {role}");
        assert!(err.contains(&named), "{fixture}: names `{named}`: {err}");
        let r = results(&dir);
        let found = &r["rls"]["audit"]["sets"][0];
        assert_eq!(found["as_found"], true);
        // Each sampled user attacks once per target and verb; anon once.
        let attempts = if role == "anon" { 1 } else { users };
        assert_eq!(
            found["leaks_found"],
            serde_json::json!([{"target": target, "verb": verb, "role": role, "attempts": attempts}]),
            "{fixture}: exactly the planted leak: {found:#}"
        );
        assert_eq!(found["leaks"], attempts, "{fixture}");
        let table = found["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["target"] == target)
            .unwrap();
        assert_eq!(table["leaks"], attempts, "{fixture}: {table:#}");
        let detail = found["leak_details"][0].as_str().unwrap();
        assert!(
            detail.contains(target) && detail.contains(verb),
            "{fixture}: {detail}"
        );
        // The re-applied shipped set is clean.
        let reapplied = &r["rls"]["audit"]["sets"][1];
        assert_eq!(reapplied["policies"], "initplan");
        assert_eq!(reapplied["leaks"], 0, "{fixture}: {reapplied:#}");
        if fixture == "select_heroes.sql" {
            let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
            assert!(
                html.contains("RLS isolation audit FAILED"),
                "banner in the report"
            );
        }
        // The audit ran on a pristine copy: the dataset itself still holds the planted
        // policy; remove it before the next case.
        let mut conn = db.conn().await;
        let drops: Vec<String> = sqlx::query_scalar(
            "SELECT format('DROP POLICY %I ON %I.%I', policyname, schemaname, tablename) FROM pg_policies WHERE policyname LIKE 'planted%'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert_eq!(drops.len(), 1, "{fixture}: the dataset is as it was");
        for d in drops {
            conn.execute(AssertSqlSafe(d)).await.unwrap();
        }
    }
}

#[tokio::test]
async fn unset_claims_are_reported_as_a_configuration_error() {
    let db = seeded("noclaims").await;
    let dir = out_dir("noclaims");
    let d = dir.to_string_lossy().to_string();
    let mut args = vec![
        "rls",
        "--claims-unset",
        "--users",
        "heavy",
        "--policy-sets",
        "initplan",
        "--out",
        &d,
    ];
    args.extend(QUICK);
    let out = db.storybench(&args);
    assert!(!out.status.success(), "unset claims must fail the run");
    assert!(
        common::stderr(&out).contains("configuration error"),
        "{}",
        common::stderr(&out)
    );
    let r = results(&dir);
    let rls = &r["rls"];
    assert_eq!(rls["claims"], "unset");
    let errors = rls["config_errors"].as_array().unwrap();
    assert!(!errors.is_empty());
    for q in rls["queries"].as_array().unwrap() {
        for s in q["subjects"].as_array().unwrap() {
            let modes = s["modes"].as_array().unwrap();
            let bypass_rows = modes[0]["rows"].as_i64().unwrap_or(0);
            for m in &modes[1..] {
                if q["name"] == "public_events_by_category" {
                    continue; // shared rows: visible without an identity
                }
                assert_eq!(
                    m["rows"], 0,
                    "{} {}: no claims, no rows",
                    q["name"], m["mode"]
                );
                if bypass_rows > 0 {
                    assert!(
                        m["config_error"].is_string(),
                        "{} {} flagged",
                        q["name"],
                        m["mode"]
                    );
                    assert_eq!(m["overhead"], Value::Null, "no ratio from an empty result");
                }
            }
        }
    }
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("configuration error"));
}
