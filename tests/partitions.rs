//! Partitioned vs flat api_usage on a real cluster with the tiny dataset: both layouts
//! answer every analytics query alike, the 30-day one-user query reads only the partitions
//! of its window (custom and generic plans), and partition maintenance leaves both
//! scratch copies consistent while the seeded dataset stays as seeded.

mod common;

use chrono::{DateTime, Datelike, Duration as ChronoDuration, Utc};
use common::{stderr, TestDb};
use std::collections::BTreeSet;
use std::time::Duration;
use storybench::measure::exec::{self, principal_for, RequestContext};
use storybench::measure::partitions::probe::{self, Arm, GENERIC};
use storybench::params::{rng_for, ParamValue, Population};

const ANCHOR: &str = "2026-11-20";

async fn seeded(tag: &str) -> TestDb {
    let db = TestDb::new(tag).await;
    let out = db.storybench(&["seed", "--profile", "tiny", "--anchor", ANCHOR]);
    assert!(out.status.success(), "{}", stderr(&out));
    db
}

#[tokio::test]
async fn both_layouts_return_identical_results_for_every_analytics_query() {
    let db = seeded("part_same").await;
    let mut conn = db.conn().await;
    let dataset = storybench::seed::require_complete(&mut conn).await.unwrap();
    let population = Population::load(&mut conn, dataset.anchor).await.unwrap();
    let catalog = storybench::catalog::load_default().unwrap();
    let (specs, _skipped) = storybench::measure::partitions::select_queries(&catalog, &[]).unwrap();
    assert!(specs.len() >= 6, "only {} analytics queries", specs.len());
    let timeout = Duration::from_secs(30);
    let (part, flat) = (
        RequestContext::new(storybench::schema::Layout::Partitioned, timeout),
        RequestContext::new(storybench::schema::Layout::Flat, timeout),
    );
    let mut non_empty = 0;
    for spec in specs {
        for user in [population.heavy(), population.median()] {
            let mut rng = rng_for(7, &spec.name);
            let params = population
                .draw(&mut conn, spec, user, &mut rng)
                .await
                .unwrap();
            let who = principal_for(spec, user);
            let a = exec::digest(&mut conn, &spec.sql, &params, &who, &part)
                .await
                .unwrap();
            let b = exec::digest(&mut conn, &spec.sql, &params, &who, &flat)
                .await
                .unwrap();
            assert_eq!(a, b, "{} differs between layouts", spec.name);
            if a.0 > 0 {
                non_empty += 1;
            }
        }
    }
    assert!(
        non_empty >= 6,
        "too few queries returned rows to compare ({non_empty})"
    );
}

/// Partitions (api_usage_pYYYYMM) whose month intersects [from, to).
fn months_of(from: DateTime<Utc>, to: DateTime<Utc>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut day = from.date_naive();
    while chrono::NaiveDateTime::from(day) < to.naive_utc() {
        out.insert(format!("api_usage_p{:04}{:02}", day.year(), day.month()));
        day += ChronoDuration::days(1);
    }
    out
}

#[tokio::test]
async fn thirty_day_user_query_touches_only_its_partitions() {
    let db = seeded("part_prune").await;
    let mut conn = db.conn().await;
    let dataset = storybench::seed::require_complete(&mut conn).await.unwrap();
    let population = Population::load(&mut conn, dataset.anchor).await.unwrap();
    let catalog = storybench::catalog::load_default().unwrap();
    let spec = catalog.get("user_usage_30d_daily").unwrap();
    let total = storybench::measure::partitions::partition_count(&mut conn)
        .await
        .unwrap();
    let user = population.heavy();
    let params = population
        .draw(&mut conn, spec, user, &mut rng_for(1, "prune"))
        .await
        .unwrap();
    let ParamValue::Timestamptz(since) = params[1] else {
        panic!("second parameter is not a timestamp: {params:?}")
    };
    let expected = months_of(since, since + ChronoDuration::days(30));
    assert!(expected.len() <= 2 && total > expected.len() + 10);
    let who = principal_for(spec, user);
    let ctx = RequestContext::new(
        storybench::schema::Layout::Partitioned,
        Duration::from_secs(30),
    );
    for generic in [false, true] {
        let arm = Arm {
            sql: &spec.sql,
            params: &params,
            who: &who,
            ctx: &ctx,
            settings: if generic { vec![GENERIC] } else { vec![] },
        };
        let raw = probe::explain(&mut conn, &arm, generic).await.unwrap();
        let plan = storybench::plan::summarize(&raw).unwrap();
        let parts = plan.partitions.clone().expect("a partitioned plan");
        let scanned: BTreeSet<String> = probe::scanned(&plan).into_iter().collect();
        assert!(!scanned.is_empty(), "generic={generic}: nothing scanned");
        assert!(
            scanned.is_subset(&expected),
            "generic={generic}: scanned {scanned:?}, window covers {expected:?}"
        );
        // Every other partition was pruned: at plan time or at executor start.
        assert!(
            parts.in_plan <= expected.len(),
            "generic={generic}: {parts:?}"
        );
        if generic {
            assert!(
                parts.subplans_removed >= total - expected.len(),
                "a generic plan prunes at executor start: {parts:?}"
            );
        }
    }
}

#[tokio::test]
async fn maintenance_keeps_both_copies_consistent_and_the_dataset_as_seeded() {
    let db = seeded("part_maint").await;
    let before = db.dump();
    let out_dir = common::temp_root("part_maint_out");
    let out = db.storybench(&[
        "partitions",
        "--queries",
        "user_usage_30d_daily,dau",
        "--runs",
        "2",
        "--warmup",
        "0",
        "--no-indexes",
        "--scaling-repetitions",
        "1",
        "--writers",
        "2",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
            .unwrap();
    let p = &results["partitions"];
    assert_eq!(p["layouts_identical"], true);
    let m = &p["maintenance"];
    let c = &m["consistency"];
    assert_eq!(c["consistent"], true, "{c}");
    assert_eq!(c["partitioned_digest"], c["flat_digest"]);
    assert_eq!(c["partitioned_months"], c["flat_months"]);
    let month = m["month"].as_str().unwrap();
    assert!(
        !c["partitioned_months"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r[0] == month),
        "month {month} still has rows"
    );
    let rows = p["rows"].as_i64().unwrap();
    let month_rows = m["month_rows"].as_i64().unwrap();
    let inserted = c["inserted_rows"].as_i64().unwrap();
    assert!(month_rows > 0 && inserted > 0);
    assert_eq!(
        c["partitioned_rows"].as_i64().unwrap(),
        rows - month_rows + inserted
    );
    for op in [
        "create_partition",
        "detach_partition",
        "drop_partition",
        "delete_month",
    ] {
        assert!(
            m["operations"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o["name"] == op),
            "{op} missing"
        );
    }
    assert_eq!(m["operations"][3]["rows"].as_i64().unwrap(), month_rows);
    // Scaling ran on scratch copies; all of it is gone again, the seeded data unchanged.
    assert!(p["scaling"]["points"].as_array().unwrap().len() >= 8);
    assert_eq!(
        before,
        db.dump(),
        "the partitions stage changed the database"
    );
}
