//! Through pgbouncer (the Debian package, as CI installs it): claims set per transaction
//! never reach another client's transaction, while claims set for the session do (the audit
//! can fail); and a scenario load through transaction pooling runs clean with unnamed
//! statements, records the pooler's counters and leaves no pgbouncer behind.

mod common;

use common::{connect, seed_tiny, stderr, temp_root, TestDb};
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use std::str::FromStr;
use std::time::Duration;
use storybench::pooler::claims_audit::{self, Emulation};
use storybench::pooler::pgbouncer::Pgbouncer;
use storybench::pooler::{PoolMode, Protocol};

#[tokio::test]
async fn claims_never_leak_through_transaction_pooling_and_a_session_claim_is_caught() {
    let db = TestDb::new("pooler_claims").await;
    let root = temp_root("pooler_claims");
    seed_tiny(&db, &root.join("seed"));
    let server = PgConnectOptions::from_str(&db.url).unwrap();
    // Three server connections for twenty clients: every backend serves many clients.
    let bouncer = Pgbouncer::start(
        &server,
        "",
        PoolMode::Transaction,
        3,
        Duration::from_secs(10),
    )
    .unwrap();
    let through = bouncer.client_options(&server).database(&db.name);
    let mut direct = connect(&db.url).await;
    let users = claims_audit::sample_users(&mut direct, 20).await.unwrap();
    assert!(users.len() >= 2, "the tiny dataset has users");

    let clean = claims_audit::run(
        &through,
        &users,
        20,
        10,
        Protocol::Unnamed,
        Emulation::TransactionLocal,
    )
    .await
    .unwrap();
    assert_eq!(clean.leaks, 0, "{:?}", clean.examples);
    assert_eq!((clean.requests, clean.bare_transactions), (200, 200));
    assert!(
        clean.backends <= 3,
        "pgbouncer kept to its pool: {} backends",
        clean.backends
    );
    assert!(
        clean.shared_backends >= 1,
        "clients shared server connections"
    );

    let planted = claims_audit::run(
        &through,
        &users,
        20,
        10,
        Protocol::Unnamed,
        Emulation::SessionSet,
    )
    .await
    .unwrap();
    assert!(
        planted.leaks > 0,
        "a claim set for the session reaches other clients"
    );
    assert!(
        planted
            .examples
            .iter()
            .any(|e| e.contains("without claims saw")),
        "{:?}",
        planted.examples
    );
}

#[tokio::test]
async fn a_load_through_transaction_pooling_runs_clean_and_records_the_pooler() {
    let db = TestDb::new("pooler_load").await;
    let root = temp_root("pooler_load");
    seed_tiny(&db, &root.join("seed"));
    let out_dir = root.join("load");
    let out = db.storybench(&[
        "load",
        "--scenario",
        "bedtime",
        "--pooler",
        "pgbouncer:transaction",
        "--pooler-size",
        "3",
        "--users",
        "12",
        "--rate",
        "40",
        "--duration",
        "2s",
        "--warmup",
        "0s",
        "--out",
        &out_dir.to_string_lossy(),
    ]);
    assert!(out.status.success(), "load: {}", stderr(&out));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
            .unwrap();
    let load = &r["load"];
    assert_eq!(
        load["figures"]["failed"], 0,
        "{}",
        load["figures"]["errors"]
    );
    assert!(load["figures"]["ok"].as_u64().unwrap() > 0);
    let pooler = &load["pooler"];
    assert_eq!(pooler["mode"], "transaction");
    assert_eq!(pooler["protocol"], "unnamed");
    assert_eq!(pooler["claims_audit"]["leaks"], 0);
    // Every transaction of the run (warm-up included) went through pgbouncer.
    assert!(
        pooler["stats"]["transactions"].as_u64().unwrap()
            >= load["figures"]["ok"].as_u64().unwrap(),
        "{pooler}"
    );
    let report = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(report.contains("id=\"load-pooler\""));
    // Its pgbouncer is gone with it.
    assert_eq!(
        common::pgbouncers_left_for(port_of(&db.url)),
        0,
        "a pgbouncer directory was left behind"
    );
}

fn port_of(url: &str) -> u16 {
    PgConnectOptions::from_str(url).unwrap().get_port()
}

/// `advise citus` on the seeded schema: each policy set checked on a copy (the dataset's own
/// policies untouched), the initplan form refused, the claims and the keys that need user_id.
#[tokio::test]
async fn advise_citus_names_what_breaks_and_leaves_the_dataset_alone() {
    let db = TestDb::new("citus").await;
    let root = temp_root("citus");
    seed_tiny(&db, &root.join("seed"));
    let mut conn = connect(&db.url).await;
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_policy")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    // A copy is made from the dataset: no other session may be on it meanwhile.
    drop(conn);
    let out_dir = root.join("advise");
    let out = db.storybench(&["advise", "citus", "--out", &out_dir.to_string_lossy()]);
    assert!(out.status.success(), "advise citus: {}", stderr(&out));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
            .unwrap();
    let c = &r["citus"];
    let placement = |t: &str| {
        c["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["table"] == t)
            .map(|x| x["placement"].as_str().unwrap().to_string())
    };
    assert_eq!(placement("public.stories").as_deref(), Some("distributed"));
    assert_eq!(
        placement("public.story_scenes").as_deref(),
        Some("needs_column")
    );
    assert_eq!(
        placement("public.cache_entries").as_deref(),
        Some("reference")
    );
    let sets = c["policy_sets"].as_array().unwrap();
    let refused = |s: &str| {
        sets.iter().find(|x| x["policies"] == s).unwrap()["with_subquery"]
            .as_u64()
            .unwrap()
    };
    assert!(
        refused("initplan") > refused("doc"),
        "the initplan form wraps auth.uid() in sub-selects"
    );
    let problems = c["problems"].as_array().unwrap();
    let has = |kind: &str, object: &str| {
        problems
            .iter()
            .any(|p| p["kind"] == kind && p["object"].as_str().unwrap().contains(object))
    };
    assert!(has("claims_not_propagated", "auth.uid"));
    assert!(has(
        "foreign_key_without_distribution_column",
        "stories_hero_id_fkey"
    ));
    assert!(has("unique_without_distribution_column", "stories_pkey"));
    assert!(
        problems
            .iter()
            .all(|p| !p["source"].as_str().unwrap().is_empty()),
        "every rule names its source"
    );
    let mut conn = connect(&db.url).await;
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_policy")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        before, after,
        "the policy sets were switched on a copy only"
    );
    assert!(std::fs::read_to_string(out_dir.join("report.html"))
        .unwrap()
        .contains("id=\"citus\""));
}
