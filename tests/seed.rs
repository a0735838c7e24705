//! Seeder tests against a real cluster: determinism, realism, constraints, RLS, safety.

mod common;

use common::{stderr, TestDb};
use serde::Deserialize;
use sqlx::AssertSqlSafe;
use std::collections::BTreeMap;
use storybench::auth::{begin_request, Principal};
use storybench::seed::generate::Generator;
use storybench::seed::profile;

const ANCHOR: &str = "2026-11-20";

#[derive(Deserialize)]
struct Checks {
    queries: BTreeMap<String, String>,
}

fn checks() -> Checks {
    toml::from_str(
        &std::fs::read_to_string(format!(
            "{}/tests/fixtures/seed_checks.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap()
}

fn seed(db: &TestDb, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["seed", "--profile", "tiny", "--anchor", ANCHOR, "--out"];
    let out = common::temp_root("seedout");
    let out = out.to_str().unwrap().to_string();
    args.push(&out);
    args.extend_from_slice(extra);
    db.storybench(&args)
}

async fn db_fingerprint(db: &TestDb) -> String {
    let mut conn = db.conn().await;
    storybench::seed::db_fingerprint(&mut conn).await.unwrap().0
}

async fn recorded(db: &TestDb) -> storybench::seed::DatasetInfo {
    let mut conn = db.conn().await;
    storybench::seed::dataset(&mut conn).await.unwrap().unwrap()
}

/// The streamed fingerprint (from the bytes COPYed) is the same for the same profile,
/// scale, seed and anchor whatever the COPY connections, and differs when any input does;
/// `--verify` records the database-side one beside it.
#[tokio::test]
async fn same_inputs_same_fingerprint_different_seed_different() {
    let (a, b, c, d) = (
        TestDb::new("fp_a").await,
        TestDb::new("fp_b").await,
        TestDb::new("fp_c").await,
        TestDb::new("fp_d").await,
    );
    for (db, extra) in [
        (&a, vec!["--seed", "7", "--jobs", "1", "--verify"]),
        (&b, vec!["--seed", "7", "--jobs", "3"]),
        (&c, vec!["--seed", "8", "--jobs", "3"]),
    ] {
        let out = seed(db, &extra);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = common::temp_root("seedout_d");
    let out = d.storybench(&[
        "seed",
        "--profile",
        "tiny",
        "--anchor",
        "2026-11-21",
        "--seed",
        "7",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (ia, ib, ic, id) = (
        recorded(&a).await,
        recorded(&b).await,
        recorded(&c).await,
        recorded(&d).await,
    );
    assert_eq!(ia.status, "complete");
    let fa = ia.fingerprint.clone().unwrap();
    assert!(fa.starts_with("s1-"), "the streamed definition: {fa}");
    assert_eq!(
        Some(&fa),
        ib.fingerprint.as_ref(),
        "same inputs, --jobs 1 vs 3"
    );
    assert_ne!(
        Some(&fa),
        ic.fingerprint.as_ref(),
        "another seed: other data"
    );
    assert_ne!(
        Some(&fa),
        id.fingerprint.as_ref(),
        "another anchor: other data"
    );
    assert_eq!(ia.row_counts, ib.row_counts);
    assert!(ia.row_counts["public.stories"].as_u64().unwrap() > 0);
    // The database agrees: same data for a and b, other data for c.
    let (da, db_, dc) = (
        db_fingerprint(&a).await,
        db_fingerprint(&b).await,
        db_fingerprint(&c).await,
    );
    assert_eq!(da, db_);
    assert_ne!(da, dc);
    // --verify recorded the database-side value; without it none is recorded.
    assert_eq!(ia.db_fingerprint.as_deref(), Some(da.as_str()));
    assert_eq!(ib.db_fingerprint, None);
    // A second seed of the same inputs streams the same fingerprint again.
    let again = seed(&b, &["--seed", "7", "--jobs", "2", "--reset"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(recorded(&b).await.fingerprint.as_ref(), Some(&fa));
}

#[tokio::test]
async fn tiny_seed_is_valid_realistic_and_matches_the_profile() {
    let db = TestDb::new("tiny").await;
    let out = seed(&db, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let q = checks().queries;
    let mut conn = db.conn().await;
    let anchor: chrono::NaiveDate = ANCHOR.parse().unwrap();
    let scalar = |name: &str| sqlx::query_scalar::<_, i64>(AssertSqlSafe(q[name].clone()));

    assert_eq!(
        scalar("not_valid").fetch_one(&mut conn).await.unwrap(),
        0,
        "every constraint validated"
    );
    assert_eq!(
        scalar("disabled_triggers")
            .fetch_one(&mut conn)
            .await
            .unwrap(),
        0,
        "no disabled triggers"
    );
    assert_eq!(
        scalar("rls_tables_without_rls")
            .fetch_one(&mut conn)
            .await
            .unwrap(),
        0,
        "RLS on every app table"
    );
    assert_eq!(scalar("same_traits").fetch_one(&mut conn).await.unwrap(), 0);
    assert_eq!(
        scalar("play_mismatches")
            .fetch_one(&mut conn)
            .await
            .unwrap(),
        0,
        "play counts agree with play_events"
    );

    // Row counts match the profile's expectation (exact for tiny, which the estimator generates whole).
    let generator = Generator::new(&profile::load("tiny").unwrap(), 1.0, 42, anchor).unwrap();
    let expected: BTreeMap<String, u64> = generator
        .estimate()
        .into_iter()
        .map(|(t, rows, _)| (t.name().to_string(), rows))
        .collect();
    let counts: Vec<(String, i64)> = sqlx::query_as(AssertSqlSafe(q["row_counts"].clone()))
        .fetch_all(&mut conn)
        .await
        .unwrap();
    for (table, n) in counts {
        let want = expected[&table] as f64;
        assert!(n > 0, "{table} is seeded");
        assert!(
            (n as f64 - want).abs() <= want * 0.05 + 1.0,
            "{table}: {n} rows, profile expects {want}"
        );
    }

    let share: f64 = sqlx::query_scalar(AssertSqlSafe(q["top_decile_share"].clone()))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(
        (0.40..=0.60).contains(&share),
        "top 10 % of users own {share:.2} of stories"
    );
    let peak: i32 = sqlx::query_scalar(AssertSqlSafe(q["peak_hour"].clone()))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(
        (17..=22).contains(&peak),
        "stories peak at {peak}:00 UTC, expected the evening"
    );
    let empty: i64 = sqlx::query_scalar(AssertSqlSafe(q["empty_months"].clone()))
        .bind(anchor)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(empty, 0, "api_usage rows in every month of the window");
    let recent: i64 = sqlx::query_scalar(AssertSqlSafe(q["last_24h_usage"].clone()))
        .bind(anchor)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(recent > 0, "api_usage rows in the last 24 hours");

    // RLS-visible rows for a sampled user equal that user's rows counted as service_role.
    let pop = storybench::params::Population::load(&mut conn, anchor)
        .await
        .unwrap();
    let user = pop.median();
    for (table, owner_filter) in [
        ("stories", "user_id = $1"),
        ("heroes", "user_id = $1"),
        ("play_events", "user_id = $1"),
        ("api_usage", "user_id = $1"),
    ] {
        let all = format!("SELECT count(*) FROM {table}");
        let own = format!("SELECT count(*) FROM {table} WHERE {owner_filter}");
        let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
        begin_request(&mut tx, &Principal::User(user))
            .await
            .unwrap();
        let visible: i64 = sqlx::query_scalar(AssertSqlSafe(all))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
        begin_request(&mut tx, &Principal::Service).await.unwrap();
        let owned: i64 = sqlx::query_scalar(AssertSqlSafe(own))
            .bind(user)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(
            visible, owned,
            "{table}: RLS-visible rows of the sampled user"
        );
    }
}

#[tokio::test]
async fn reseeding_without_reset_is_refused_and_changes_nothing() {
    let db = TestDb::new("reseed").await;
    assert!(seed(&db, &[]).status.success());
    let before = db.dump();
    let out = seed(&db, &["--seed", "99"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--reset"), "{}", stderr(&out));
    assert_eq!(before, db.dump(), "a refused re-seed changes nothing");
    let out = seed(&db, &["--seed", "99", "--reset"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_ne!(before, db.dump());
}

#[tokio::test]
async fn bad_scale_and_profiles_are_clear_errors() {
    let db = TestDb::new("badinput").await;
    for (args, needle) in [
        (vec!["--scale", "-1"], "--scale"),
        (vec!["--scale", "1e9"], "--scale"),
        (vec!["--profile", "nosuch"], "nosuch"),
        (vec!["--jobs", "0"], "--jobs"),
    ] {
        let mut all = vec!["seed"];
        all.extend(args.iter());
        let out = db.storybench(&all);
        assert!(!out.status.success(), "{all:?}");
        assert!(stderr(&out).contains(needle), "{all:?}: {}", stderr(&out));
    }
    // A profile with an impossible parameter names the file and the key.
    let dir = common::temp_root("badprofile");
    let text =
        std::fs::read_to_string(format!("{}/seed/tiny.toml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let bad = text.replacen("sigma = ", "sigma = -", 1);
    let path = dir.join("broken.toml");
    std::fs::write(&path, bad).unwrap();
    let out = db.storybench(&["seed", "--profile", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("broken.toml") && err.contains("sigma"),
        "{err}"
    );
    assert!(
        db.dump().lines().all(|l| !l.contains("CREATE TABLE")),
        "nothing was created"
    );
}

#[tokio::test]
async fn an_interrupted_seed_is_detected_by_the_next_command() {
    let db = TestDb::new("interrupt").await;
    let out_dir = common::temp_root("intr");
    let mut child = common::storybench_cmd()
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
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the load is under way, then interrupt it like Ctrl-C.
    let mut conn = db.conn().await;
    let started = std::time::Instant::now();
    loop {
        let loading = storybench::seed::dataset(&mut conn)
            .await
            .ok()
            .flatten()
            .is_some_and(|d| d.status == "loading");
        let rows: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(n_tup_ins), 0)::bigint FROM pg_stat_user_tables",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap_or(0);
        if loading && rows > 0 {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 60,
            "the seed never started loading"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let waited = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "an interrupted seed does not report success"
    );
    assert!(waited.elapsed().as_secs() < 15, "stops within seconds");
    // Partial results were written and say so.
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results["status"], "interrupted");
    assert_eq!(results["partial"], true);
    // Every later measuring command refuses the incomplete dataset and says why.
    let out = db.storybench(&["explain", "--queries", "recent_stories"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("incomplete"), "{}", stderr(&out));
}
