//! Explain stage tests on a seeded tiny dataset: plan evidence per strategy, consistency of
//! every catalog query across strategies, catalog errors that name file and line.

mod common;

use common::{stderr, TestDb};
use sqlx::AssertSqlSafe;
use std::time::Duration;
use storybench::measure::explain::{self, ExplainOptions};
use storybench::target::{DbArgs, Target};

fn options(strategies: &[&str], queries: &[&str]) -> ExplainOptions {
    ExplainOptions {
        strategies: strategies.iter().map(|s| s.to_string()).collect(),
        queries: queries.iter().map(|s| s.to_string()).collect(),
        runs: 2,
        warmup: 0,
        budget: Duration::from_millis(200),
        percentiles: vec![50.0],
        seed: 1,
        statement_timeout: Duration::from_secs(30),
        write_batch: 2,
    }
}

fn target(db: &TestDb) -> Target {
    Target::resolve(&DbArgs {
        database_url: Some(db.url.clone()),
        data_dir: "/nonexistent".into(),
        port: None,
        protect: vec!["prod".into()],
        keep_copies: false,
        shared_lock: false,
    })
    .unwrap()
}

async fn seeded(tag: &str) -> TestDb {
    let db = TestDb::new(tag).await;
    let out = db.storybench(&["seed", "--profile", "tiny", "--anchor", "2026-11-20"]);
    assert!(out.status.success(), "{}", stderr(&out));
    db
}

/// The explain runs of this file one at a time: each makes and drops its own copies, and
/// one test checks that none is left.
static COPIES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn check_sql(name: &str) -> String {
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/explain_checks.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let q: toml::Table = toml::from_str(&text).unwrap();
    q["queries"][name].as_str().unwrap().to_string()
}

async fn index_columns(conn: &mut sqlx::PgConnection, index: &str) -> Vec<String> {
    let sql = check_sql("index_columns");
    sqlx::query_scalar::<_, Option<Vec<String>>>(AssertSqlSafe(sql))
        .bind(index)
        .fetch_one(conn)
        .await
        .unwrap()
        .unwrap_or_default()
}

#[tokio::test]
async fn recent_stories_uses_a_user_leading_composite_index_only_under_doc() {
    let db = seeded("plans").await;
    let out = common::temp_root("explain-plans");
    let _one = COPIES.lock().await;
    let section = explain::run(
        &target(&db),
        &options(&["fk_only", "doc"], &["recent_stories"]),
        &out,
    )
    .await
    .unwrap();
    let q = &section.queries[0];
    let heavy = &q.subjects[0];
    let mut conn = db.conn().await;
    let mut composite_user_index = std::collections::BTreeMap::new();
    for run in &heavy.by_strategy {
        let plan = run.plan.as_ref().expect("a plan");
        let stories: Vec<_> = plan
            .relations
            .iter()
            .filter(|r| r.relation == "stories")
            .collect();
        assert!(!stories.is_empty(), "{}: stories is scanned", run.strategy);
        let mut uses = false;
        for rel in stories {
            for index in rel.index.iter().flat_map(|i| i.split(", ")) {
                let cols = index_columns(&mut conn, index).await;
                // An index that leads with user_id and serves more than the FK lookup.
                if cols.first().map(String::as_str) == Some("user_id") && cols.len() > 1 {
                    uses = true;
                }
            }
        }
        composite_user_index.insert(run.strategy.clone(), uses);
        assert!(
            std::path::Path::new(&out)
                .join(run.plan_file.as_ref().unwrap())
                .is_file(),
            "raw plan saved"
        );
    }
    assert!(
        !composite_user_index["fk_only"],
        "fk_only has no (user_id, …) composite index to use"
    );
    assert!(
        composite_user_index["doc"],
        "doc's (user_id, …) index serves recent stories"
    );
    assert!(
        heavy.diffs.iter().any(|d| !d.changes.is_empty()),
        "the plan diff shows the change"
    );
}

#[tokio::test]
async fn every_catalog_query_runs_and_agrees_on_every_strategy() {
    let db = seeded("allq").await;
    let out = common::temp_root("explain-all");
    let _one = COPIES.lock().await;
    let section = explain::run(
        &target(&db),
        &options(&["fk_only", "doc", "tuned"], &[]),
        &out,
    )
    .await
    .unwrap();
    assert!(section.errors.is_empty(), "errors: {:#?}", section.errors);
    let catalog = storybench::catalog::load_default().unwrap();
    assert_eq!(section.queries.len(), catalog.queries.len());
    for q in &section.queries {
        assert!(
            q.consistent,
            "{} returns different rows on different strategies",
            q.name
        );
        for s in &q.subjects {
            assert_eq!(s.by_strategy.len(), 3, "{}", q.name);
            assert!(
                s.by_strategy
                    .iter()
                    .all(|r| r.latency.as_ref().is_some_and(|l| l.count >= 1)),
                "{} measured",
                q.name
            );
        }
    }
    assert_eq!(section.overall.len(), 3);
    assert!(section.strategies.iter().all(|s| s.index_bytes > 0));
    assert!(
        section
            .strategies
            .iter()
            .all(|s| s.wal_bytes_per_story.is_some_and(|w| w > 0.0)),
        "WAL per story measured"
    );
    // Measuring left the schema on the strategy it found.
    let mut conn = db.conn().await;
    assert_eq!(
        storybench::schema::current_variant(&mut conn)
            .await
            .unwrap()
            .unwrap()
            .indexes,
        "doc"
    );
}

#[tokio::test]
async fn strategies_run_interleaved_on_pristine_copies_that_are_dropped() {
    let db = seeded("copies").await;
    let out = common::temp_root("explain-copies");
    let _one = COPIES.lock().await;
    let mut conn = db.conn().await;
    let indexes_before = storybench::schema::index_inventory(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let section = explain::run(
        &target(&db),
        &options(
            &["fk_only", "doc", "tuned"],
            &["recent_stories", "create_story"],
        ),
        &out,
    )
    .await
    .unwrap();
    assert!(section.errors.is_empty(), "{:#?}", section.errors);
    for q in &section.queries {
        for s in &q.subjects {
            let rounds = s.rounds.as_ref().expect("engine rounds");
            assert!(rounds.rounds >= 6, "{}: p50's floor", q.name);
            for (i, r) in s.by_strategy.iter().enumerate() {
                // Every strategy ran once in every round: measured side by side.
                let l = r.latency.as_ref().unwrap();
                assert_eq!(l.count as usize, rounds.rounds, "{} {}", q.name, r.strategy);
                assert!(l.supported_percentile >= 50.0);
                let work = r.work.as_ref().expect("work figures");
                assert!(work.shared_hit + work.shared_read > 0, "{}", q.name);
                assert!(!work.shape.is_empty());
                if q.kind == storybench::catalog::Kind::Write {
                    assert!(work.wal_bytes.is_some_and(|w| w > 0.0), "{}", q.name);
                }
                assert_eq!(r.ratio_vs_baseline.is_some(), i > 0, "{}", q.name);
                assert_eq!(r.side.is_some(), i > 0);
            }
        }
        let v = q.verdict.as_ref().unwrap();
        assert!(v.speedup_interval.is_some());
        assert_eq!(v.clear, v.winner.is_some());
    }
    // Each strategy was built on its own copy: the doc and tuned plans use their indexes,
    // while the dataset itself keeps the indexes it had, and no copy is left behind.
    let heavy = &section.queries[0].subjects[0];
    let used = |s: &str| {
        let run = heavy.by_strategy.iter().find(|r| r.strategy == s).unwrap();
        run.plan
            .as_ref()
            .unwrap()
            .relations
            .iter()
            .filter_map(|r| r.index.clone())
            .collect::<Vec<_>>()
    };
    assert_ne!(used("fk_only"), used("doc"), "strategies differ");
    let mut conn = db.conn().await;
    assert_eq!(
        storybench::schema::index_inventory(&mut conn)
            .await
            .unwrap(),
        indexes_before
    );
    let mut admin = common::connect(&common::url_for("postgres")).await;
    let left: i64 = sqlx::query_scalar(AssertSqlSafe(check_sql("copies_left")))
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(left, 0, "every pristine copy is dropped");
    assert!(section.overall.iter().all(|o| o.geomean_interval.is_some()));
}

#[tokio::test]
async fn catalog_errors_name_file_and_line() {
    let db = seeded("badcat").await;
    let shipped = std::fs::read_to_string(format!(
        "{}/scenarios/queries.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let dir = common::temp_root("badcat");
    let cases = [
        ("syntax", "\n[[query]]\nname = \"broken\"\ndescription = \"x\"\nrole = \"app\"\nkind = \"read\"\nparams = [\"user\"]\nsql = \"SELEC * FROM stories WHERE user_id = $1\"\n", "key sql", "syntax error"),
        ("sampler", "\n[[query]]\nname = \"broken\"\ndescription = \"x\"\nrole = \"app\"\nkind = \"read\"\nparams = [\"nosuch_sampler\"]\nsql = \"SELECT $1\"\n", "nosuch_sampler", "queries.toml:"),
        ("duplicate", "\n[[query]]\nname = \"recent_stories\"\ndescription = \"x\"\nrole = \"app\"\nkind = \"read\"\nparams = []\nsql = \"SELECT 1\"\n", "recent_stories", "queries.toml:"),
    ];
    let shipped_lines = shipped.lines().count();
    for (tag, extra, needle, needle2) in cases {
        let path = dir.join(format!("{tag}.queries.toml"));
        std::fs::write(&path, format!("{shipped}{extra}")).unwrap();
        let out = common::storybench_cmd()
            .env("STORYBENCH_CATALOG", &path)
            .args(["--database-url", &db.url, "explain", "--runs", "1", "--out"])
            .arg(dir.join(tag))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{tag} must fail");
        let err = stderr(&out);
        // The line of the entry's header or of the offending key within it.
        let marker = format!("{tag}.queries.toml:");
        let at = err
            .find(&marker)
            .unwrap_or_else(|| panic!("{tag}: names the file: {err}"))
            + marker.len();
        let line: usize = err[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap();
        let header = shipped_lines + 2;
        assert!(
            (header..header + 8).contains(&line),
            "{tag}: line {line} is within the broken entry (starts at {header}): {err}"
        );
        assert!(
            err.contains(needle) && err.contains(needle2),
            "{tag}: {err}"
        );
    }
}
