//! The RLS stage against a real cluster on the tiny dataset: the isolation audit (clean on
//! the shipped policy sets, catching a planted permissive policy), rows agreeing across
//! modes, and unset claims reported as a configuration error.

mod common;

use common::TestDb;
use serde_json::Value;
use sqlx::Executor;
use std::path::{Path, PathBuf};

async fn seeded(tag: &str) -> TestDb {
    let db = TestDb::new(tag).await;
    let out = db.storybench(&[
        "seed",
        "--profile",
        "tiny",
        "--out",
        &out_dir(&format!("{tag}-seed")).to_string_lossy(),
    ]);
    assert!(out.status.success(), "seed: {}", common::stderr(&out));
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

#[tokio::test]
async fn audit_is_clean_on_shipped_policies_and_catches_a_planted_leak() {
    let db = seeded("audit").await;
    let dir = out_dir("audit-clean");
    let out = db.storybench(&[
        "rls",
        "--audit-only",
        "--audit-users",
        "3",
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
    for set in audit["sets"].as_array().unwrap() {
        assert!(set["attempts"].as_u64().unwrap() >= 4 * 4 * 10, "{set:#}");
        assert_eq!(set["leaks"], 0, "{set:#}");
        assert_eq!(set["errors"], 0, "{set:#}");
    }

    // A deliberately broken extra permissive policy: every role sees every story.
    let mut conn = db.conn().await;
    conn.execute("CREATE POLICY \"planted: everyone sees stories\" ON public.stories USING (true)")
        .await
        .unwrap();
    // The stage copies the dataset (CREATE DATABASE … TEMPLATE): no session may stay on it.
    drop(conn);
    let dir = out_dir("audit-leak");
    let out = db.storybench(&[
        "rls",
        "--audit-only",
        "--policy-sets",
        "initplan",
        "--out",
        &dir.to_string_lossy(),
    ]);
    assert!(!out.status.success(), "a leak must fail the command");
    assert!(
        common::stderr(&out).contains("leak"),
        "{}",
        common::stderr(&out)
    );
    let r = results(&dir);
    let found = &r["rls"]["audit"]["sets"][0];
    assert_eq!(found["as_found"], true);
    assert!(found["leaks"].as_u64().unwrap() > 0, "{found:#}");
    let stories = found["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "stories")
        .unwrap();
    assert!(stories["leaks"].as_u64().unwrap() > 0, "{stories:#}");
    assert!(
        found["leak_details"][0]
            .as_str()
            .unwrap()
            .contains("stories"),
        "{found:#}"
    );
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        html.contains("RLS isolation audit FAILED"),
        "banner in the report"
    );
    // The audit ran on a pristine copy: the dataset itself is as it was (planted policy
    // included).
    let mut conn = db.conn().await;
    let planted: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_policies WHERE policyname LIKE 'planted%'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(planted, 1);
}

#[tokio::test]
async fn rows_agree_across_modes_for_every_app_query() {
    let db = seeded("rows").await;
    let dir = out_dir("rows");
    let mut args = vec!["rls", "--out"];
    let d = dir.to_string_lossy().to_string();
    args.push(&d);
    args.extend(QUICK);
    let out = db.storybench(&args);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let r = results(&dir);
    let rls = &r["rls"];
    assert_eq!(
        rls["correctness_failures"].as_array().unwrap().len(),
        0,
        "{rls:#}"
    );
    assert_eq!(rls["config_errors"].as_array().unwrap().len(), 0);
    let queries = rls["queries"].as_array().unwrap();
    assert!(queries.len() >= 10, "every app query is measured");
    let mut heavy_rows = 0;
    for q in queries {
        for s in q["subjects"].as_array().unwrap() {
            let modes = s["modes"].as_array().unwrap();
            let bypass = &modes[0];
            assert_eq!(bypass["mode"], "bypass");
            assert!(modes.len() >= 2, "{} has RLS modes", q["name"]);
            for m in &modes[1..] {
                assert_eq!(
                    m["error"],
                    Value::Null,
                    "{} {} {}",
                    q["name"],
                    s["subject"],
                    m["mode"]
                );
                assert_eq!(
                    m["rows"], bypass["rows"],
                    "{} {} {}",
                    q["name"], s["subject"], m["mode"]
                );
                assert_eq!(
                    m["same_rows"], true,
                    "{} {} {}",
                    q["name"], s["subject"], m["mode"]
                );
                assert!(m["overhead"]["median"].as_f64().unwrap() > 0.0);
                // Under RLS the same statement without claims sees only shared rows.
                if q["kind"] == "read" && q["name"] != "public_events_by_category" {
                    assert_eq!(
                        m["no_claims_rows"], 0,
                        "{} {} {}",
                        q["name"], s["subject"], m["mode"]
                    );
                }
            }
            if s["subject"] == "heavy" && bypass["rows"].as_i64().unwrap_or(0) > 0 {
                heavy_rows += 1;
            }
        }
    }
    assert!(
        heavy_rows >= 8,
        "the heavy user has rows in most app queries"
    );
    // The original policy set is back.
    let mut conn = db.conn().await;
    let v = storybench::schema::current_variant(&mut conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.policies, rls["policies_found"].as_str().unwrap());
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
