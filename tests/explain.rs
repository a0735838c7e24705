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
    })
    .unwrap()
}

async fn seeded(tag: &str) -> TestDb {
    let db = TestDb::new(tag).await;
    let out = db.storybench(&["seed", "--profile", "tiny", "--anchor", "2026-11-20"]);
    assert!(out.status.success(), "{}", stderr(&out));
    db
}

async fn index_columns(conn: &mut sqlx::PgConnection, index: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/explain_checks.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let q: toml::Table = toml::from_str(&text).unwrap();
    let sql = q["queries"]["index_columns"].as_str().unwrap().to_string();
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
