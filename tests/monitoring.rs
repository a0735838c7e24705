//! The document's monitoring queries on the tiny dataset: every query in results.json with
//! its cost (engine time with an interval, buffers) and its result rows, and in the report.

mod common;

use common::{seed_tiny, stderr, temp_root, TestDb};
use serde_json::Value;

#[tokio::test]
async fn monitoring_results_appear_in_results_and_report_with_their_cost() {
    let db = TestDb::new("monitoring").await;
    let root = temp_root("monitoring");
    seed_tiny(&db, &root.join("seed"));
    let before = db.dump();
    let out_dir = root.join("monitoring");
    let out = db.storybench(&["monitoring", "--out", &out_dir.to_string_lossy()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
            .unwrap();
    let qs = r["monitoring"]["queries"].as_array().unwrap();
    let names: Vec<&str> = qs.iter().map(|q| q["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "database_size",
            "table_sizes",
            "active_connections",
            "slow_queries",
            "daily_active_users",
            "popular_content",
            "api_performance"
        ]
    );
    for q in qs {
        assert!(q["error"].is_null(), "{q}");
        assert!(q["p50"]["estimate"].as_f64().unwrap() > 0.0, "{q}");
        assert!(q["p50"]["low"].as_f64().unwrap() <= q["p50"]["estimate"].as_f64().unwrap());
        assert!(q["work"]["shared_hit"].is_number(), "{q}");
    }
    let by = |n: &str| qs.iter().find(|q| q["name"] == n).unwrap();
    // The copy's size in MB, one row; the public tables, largest first, capped at 20 rows.
    assert!(by("database_size")["rows"][0]["size_mb"].as_i64().unwrap() > 0);
    let tables = by("table_sizes");
    let n = tables["row_count"].as_i64().unwrap();
    assert!(n >= 10, "{tables}");
    assert_eq!(tables["rows"].as_array().unwrap().len() as i64, n.min(20));
    assert_eq!(tables["truncated"], n > 20);
    let popular = by("popular_content")["rows"].as_array().unwrap();
    assert_eq!(popular.len(), 10);
    assert!(
        popular[0]["story_count"].as_i64().unwrap() >= popular[9]["story_count"].as_i64().unwrap()
    );
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(html.contains("id=\"monitoring\""));
    assert!(html.contains("monitoring-popular_content"));
    assert_eq!(db.dump(), before, "the dataset changed");
}
