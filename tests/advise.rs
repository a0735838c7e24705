//! `advise indexes` on a seeded tiny dataset: a missing index a hot query needs is proposed,
//! screened, built for real and confirmed by its measurement; advice.sql carries exactly
//! the recommended statements; the dataset is left as it was.

mod common;

use common::{stderr, TestDb};
use serde_json::Value;

#[tokio::test]
async fn an_index_a_hot_query_lacks_is_recommended_and_confirmed_by_its_real_build() {
    let db = TestDb::new("advise_missing").await;
    let seeded = db.storybench(&["seed", "--profile", "tiny", "--anchor", "2026-11-20"]);
    assert!(seeded.status.success(), "{}", stderr(&seeded));
    let before = db.dump();
    let out = common::temp_root("advise-missing");
    let run = db.storybench(&[
        "advise",
        "indexes",
        "--indexes",
        "doc",
        "--queries",
        "recently_played,play_story,heroes_with_avatar",
        "--max-verified",
        "3",
        "--budget",
        "200ms",
        "--out",
        &out.to_string_lossy(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let advice = &r["advice"];
    assert!(
        advice["hypopg"].as_str().is_some(),
        "screened with HypoPG: {advice:#}"
    );
    // Under `doc`, recently_played scans play_events whole for one user: the advisor finds
    // the user_id key from the plan (the RLS filter included), HypoPG likes it, the real
    // build is used, reads fewer buffers and is clearly faster.
    let created = advice["created"].as_array().unwrap();
    let found = created
        .iter()
        .find(|v| {
            v["table"] == "public.play_events"
                && v["verdict"] == "recommended"
                && v["statement"].as_str().unwrap().contains("(user_id")
        })
        .unwrap_or_else(|| panic!("play_events(user_id …) recommended: {created:#?}"));
    let read = found["effects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["query"] == "recently_played" && e["uses_index"] == true)
        .expect("recently_played uses the real build");
    assert!(read["ratio"]["high"].as_f64().unwrap() < 1.0, "{read:#}");
    let buffers =
        |w: &Value| w["shared_hit"].as_u64().unwrap() + w["shared_read"].as_u64().unwrap();
    assert!(
        buffers(&read["work_with"]) < buffers(&read["work_without"]),
        "{read:#}"
    );
    assert!(found["build_seconds"].as_f64().unwrap() > 0.0);
    assert!(found["bytes"].as_i64().unwrap() > 0);
    // advice.sql: every recommended statement with its evidence, no rejected one.
    let sql = std::fs::read_to_string(out.join("advice.sql")).unwrap();
    for v in created.iter().chain(advice["dropped"].as_array().unwrap()) {
        let stmt = format!("{};", v["statement"].as_str().unwrap());
        let listed = sql.lines().any(|l| l == stmt);
        assert_eq!(listed, v["verdict"] == "recommended", "{stmt}\n{sql}");
    }
    assert!(sql.contains("--   recently_played ("), "{sql}");
    // Nothing of it happened on the dataset: the copies were made, changed and dropped.
    assert_eq!(db.dump(), before, "the dataset is unchanged");
    let mut conn = db.conn().await;
    let copies: i64 = sqlx::query_scalar(
        r"SELECT count(*) FROM pg_database WHERE datname LIKE 'sbcopy\_%advise%'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(copies, 0, "no copy left behind");
}
