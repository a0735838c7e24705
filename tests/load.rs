//! Load scenarios against a real cluster on the tiny dataset: scenario runs record every
//! query without errors, create_story's rows land owned by the right users, the open model
//! does not hide a stall (coordinated omission), and capacity search ranks a slowed query
//! below a normal one.

mod common;

use common::{stderr, TestDb};
use serde_json::Value;
use sqlx::{AssertSqlSafe, Connection, Row};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use storybench::auth::{begin_request, Principal};

fn checks() -> BTreeMap<String, String> {
    #[derive(serde::Deserialize)]
    struct F {
        queries: BTreeMap<String, String>,
    }
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/load_checks.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    toml::from_str::<F>(&text).unwrap().queries
}

fn q(name: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(checks()[name].clone())
}

async fn seeded(tag: &str) -> TestDb {
    let db = TestDb::new(tag).await;
    common::seed_tiny(&db, &tmp(tag));
    db
}

fn tmp(tag: &str) -> std::path::PathBuf {
    common::temp_root(tag)
}

fn results(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

/// Runs a short closed-model scenario and checks every query ran, without errors.
fn run_scenario(db: &TestDb, scenario: &str) -> Value {
    let out_dir = tmp(scenario);
    let out = db.storybench(&[
        "--keep-copies",
        "load",
        "--scenario",
        scenario,
        "--users",
        "4",
        "--duration",
        "3s",
        "--warmup",
        "1s",
        "--think-scale",
        "0",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{scenario}: {}", stderr(&out));
    let r = results(&out_dir);
    let load = &r["load"];
    let f = &load["figures"];
    assert_eq!(f["failed"], 0, "{scenario}: {}", f["errors"]);
    assert_eq!(f["errors"].as_array().unwrap().len(), 0, "{}", f["errors"]);
    assert!(f["ok"].as_u64().unwrap() > 0);
    assert!(!f["transaction_latency"]["histogram"]
        .as_str()
        .unwrap()
        .is_empty());
    let ran: BTreeMap<String, &Value> = f["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["name"].as_str().unwrap().to_string(), q))
        .collect();
    for name in load["scenario"]["queries"].as_array().unwrap() {
        let name = name.as_str().unwrap();
        let stats = ran
            .get(name)
            .unwrap_or_else(|| panic!("{scenario}: `{name}` never ran"));
        assert!(stats["ok"].as_u64().unwrap() > 0, "{scenario}: {name}");
        assert!(stats["latency"]["count"].as_u64().unwrap() > 0);
        assert!(!stats["latency"]["histogram"].as_str().unwrap().is_empty());
    }
    // goose saw the same requests and wrote its report beside ours.
    assert!(load["goose"]["requests"].as_u64().unwrap() > 0);
    assert!(out_dir.join("goose-report.html").exists());
    r
}

#[tokio::test]
async fn bedtime_and_create_story_run_clean_and_write_owned_rows() {
    let db = seeded("load_journeys").await;
    let mut conn = db.conn().await;
    let t0: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(q("now"))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    // The dataset is the template of the load's copy: no session may stay on it.
    drop(conn);
    run_scenario(&db, "bedtime");
    let r = run_scenario(&db, "create_story");
    // The load wrote to its own pristine copy (kept for this check), not to the dataset.
    let copy = r["stages"][0]["copy"].as_str().unwrap().to_string();
    let mut conn = common::connect(&common::url_for(&copy)).await;
    let created = r["load"]["figures"]["queries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "create_story")
        .unwrap()["ok"]
        .as_i64()
        .unwrap();
    let row = sqlx::query(q("new_stories"))
        .bind(t0)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let (n, foreign_hero, no_scenes, missing_ill): (i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    // Warm-up transactions wrote rows too, uncounted.
    assert!(
        n >= created && created > 0,
        "{n} stories, {created} counted"
    );
    assert_eq!((foreign_hero, no_scenes, missing_ill), (0, 0, 0));
    let row = sqlx::query(q("new_usage"))
        .bind(t0)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let (owned, all): (i64, i64) = (row.get(0), row.get(1));
    assert!(
        all >= 2 * created && owned == all,
        "api_usage {owned}/{all}"
    );
    // Each owner sees their new stories through RLS, as the app would.
    let owners: Vec<uuid::Uuid> = sqlx::query_scalar(q("owners_since"))
        .bind(t0)
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert!(!owners.is_empty());
    for owner in owners {
        let mut tx = conn.begin().await.unwrap();
        begin_request(&mut tx, &Principal::User(owner))
            .await
            .unwrap();
        let visible: i64 = sqlx::query_scalar(q("own_new_stories"))
            .bind(t0)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert!(visible > 0, "user {owner} sees none of their new stories");
        tx.rollback().await.unwrap();
    }
    drop(conn);
    common::drop_database(&copy).await;
}

const PROBE: &str = r#"
description = "Test: the home screen query alone."
principal = "app"
[[transaction]]
name = "home"
weight = 1
[[transaction.step]]
query = "recent_stories"
"#;

/// Stall length and the latency the test counts samples above.
const STALL: Duration = Duration::from_millis(1000);
const ABOVE_MS: f64 = 300.0;

#[tokio::test]
async fn open_model_reports_a_stall_no_coordinated_omission() {
    let db = seeded("load_co").await;
    let dir = tmp("co");
    std::fs::write(dir.join("probe.toml"), PROBE).unwrap();
    let out_dir = dir.join("out");
    let scenario = dir.join("probe.toml");
    let rate = 100.0;
    let args: Vec<String> = [
        "load",
        "--scenario",
        scenario.to_str().unwrap(),
        "--users",
        "8",
        "--rate",
        &rate.to_string(),
        "--duration",
        "5s",
        "--warmup",
        "0s",
        "--out",
        out_dir.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let url = db.url.clone();
    let child = std::thread::spawn(move || {
        common::storybench_cmd()
            .arg("--database-url")
            .arg(&url)
            .args(&args)
            .output()
            .unwrap()
    });
    // The load measures on its own pristine copy: find it by its users' sessions, then
    // wait there until the probe's query has run a few times (the measurement has started;
    // users connecting and loading their rows come before); then stall its stories table.
    let mut admin = common::connect(&common::url_for("postgres")).await;
    let started = std::time::Instant::now();
    let copy = loop {
        let row: Option<(String, i64)> = sqlx::query_as(q("storybench_on_copies"))
            .fetch_optional(&mut admin)
            .await
            .unwrap();
        // 8 users: more sessions than any other test's load copy has beside it.
        if let Some((name, _)) = row.filter(|(_, n)| *n >= 8) {
            break name;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60) && !child.is_finished(),
            "the load's users never connected to its copy"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut conn = common::connect(&common::url_for(&copy)).await;
    let started = std::time::Instant::now();
    sqlx::query(q("create_pg_stat_statements"))
        .execute(&mut conn)
        .await
        .unwrap();
    loop {
        let n: i64 = sqlx::query_scalar(q("probe_calls"))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        if n >= 8 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30) && !child.is_finished(),
            "the probe query never ran on {copy} ({n} calls seen)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut tx = conn.begin().await.unwrap();
    sqlx::query(q("lock_stories"))
        .execute(&mut *tx)
        .await
        .unwrap();
    tokio::time::sleep(STALL).await;
    tx.commit().await.unwrap();
    let out = child.join().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let f = &results(&out_dir)["load"]["figures"];
    assert_eq!(f["failed"], 0);
    assert_eq!(f["dropped"], 0, "no arrival was skipped");
    // Measured from each intended start, every arrival due during the first 700 ms of the
    // stall waited more than 300 ms: about 70 samples. Measured from the actual send (the
    // omission), only the 4 requests in flight would: the bound sits far from both.
    let hist = storybench::latency::Latency::decode(
        f["transaction_latency"]["histogram"].as_str().unwrap(),
    )
    .unwrap();
    let slow = hist.count_above_ms(ABOVE_MS);
    let due = rate * (STALL.as_secs_f64() - ABOVE_MS / 1000.0);
    assert!(
        slow as f64 >= due / 2.0,
        "{slow} samples above {ABOVE_MS} ms, {due} arrivals were due in the stall: the stall is hidden"
    );
    assert!(
        f["schedule_lag"]["max_ms"].as_f64().unwrap() >= ABOVE_MS,
        "{}",
        f["schedule_lag"]
    );
}

#[tokio::test]
async fn capacity_search_ranks_a_slowed_query_lower() {
    let db = seeded("load_cap").await;
    let dir = tmp("cap");
    let mut found = Vec::new();
    // The 20 ms sleep, then an instant statement (tests/fixtures/sleep/).
    for query in ["sleep", "normal"] {
        let file = common::fixture(&format!("sleep/{query}.toml"));
        let out_dir = dir.join(format!("out_{query}"));
        let out = db.storybench(&[
            "capacity",
            "--scenario",
            file.to_str().unwrap(),
            "--slo",
            "p95<40ms",
            "--users",
            "2",
            "--start-rate",
            "10",
            "--max-rate",
            "320",
            "--step-duration",
            "1s",
            "--warmup",
            "0s",
            "--max-steps",
            "6",
            "--out",
            out_dir.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{query}: {}", stderr(&out));
        let c = &results(&out_dir)["capacity"];
        assert!(c["steps"].as_array().unwrap().len() >= 2, "{c}");
        found.push(c["sustainable_rate"].as_f64().unwrap_or(0.0));
    }
    assert!(
        found[0] < found[1],
        "slowed {} vs normal {}",
        found[0],
        found[1]
    );
    // The speed floor (SELECT 1 ≥ 160/s) is benches/capacity_floor.sh: no timed bound here.
}

#[tokio::test]
async fn malformed_scenario_names_file_and_line() {
    let db = TestDb::new("load_bad").await;
    let dir = tmp("bad");
    let file = dir.join("broken.toml");
    std::fs::write(&file, PROBE.replace("recent_stories", "no_such_query")).unwrap();
    let out = db.storybench(&["load", "--scenario", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}:8:", file.display())) && err.contains("no_such_query"),
        "{err}"
    );
    std::fs::write(&file, PROBE.replace("weight = 1", "weight = -2")).unwrap();
    let err = stderr(&db.storybench(&["load", "--scenario", file.to_str().unwrap()]));
    assert!(
        err.contains(&format!("{}:6:", file.display())) && err.contains("weight"),
        "{err}"
    );
}
