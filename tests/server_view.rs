//! The server view against a real server: the pg_stat_statements table holds the
//! application's statements; storybench's own bookkeeping is counted apart.

mod common;

use common::TestDb;
use sqlx::{AssertSqlSafe, Executor};
use storybench::measure::server_view::{self, WaitSampler};

#[tokio::test]
async fn own_statements_are_excluded_from_the_server_view() {
    let db = TestDb::new("srvview").await;
    let mut conn = db.conn().await;
    storybench::schema::ensure_pg_stat_statements(&mut conn)
        .await
        .unwrap();
    for sql in [
        "CREATE SCHEMA storybench",
        "CREATE TABLE storybench.meta (key text PRIMARY KEY, value jsonb)",
        "CREATE TABLE app_things (id int PRIMARY KEY, user_id int)",
        "INSERT INTO app_things SELECT g, g % 7 FROM generate_series(1, 500) g",
    ] {
        conn.execute(AssertSqlSafe(sql)).await.unwrap();
    }
    let before = server_view::snapshot(&mut conn).await.unwrap();
    for i in 0..5 {
        // An app request as PostgREST makes it: claims set-up, the query, commit.
        conn.execute("BEGIN").await.unwrap();
        sqlx::query("SELECT set_config('request.jwt.claims', $1, true)")
            .bind(format!("{{\"sub\":\"{i}\"}}"))
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("SELECT id FROM app_things WHERE user_id = $1 ORDER BY id LIMIT 5")
            .bind(i)
            .fetch_all(&mut conn)
            .await
            .unwrap();
        conn.execute("COMMIT").await.unwrap();
        // storybench's bookkeeping and probes.
        sqlx::query("SELECT value FROM storybench.meta WHERE key = $1")
            .bind("dataset")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        sqlx::query("SELECT to_regclass($1) IS NOT NULL")
            .bind("public.app_things")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        sqlx::query("SELECT relname FROM pg_class WHERE relname = $1")
            .bind("app_things")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    }
    let after = server_view::snapshot(&mut conn).await.unwrap();
    let view = server_view::delta(&before, &after, &WaitSampler::default());
    let app: Vec<&str> = view.statements.iter().map(|s| s.query.as_str()).collect();
    assert!(
        app.iter()
            .any(|q| q.contains("FROM app_things") && q.contains("user_id")),
        "the app's statement is shown: {app:?}"
    );
    for s in &view.statements {
        assert!(
            !server_view::is_own(&s.query),
            "own statement shown: {}",
            s.query
        );
        for word in [
            "storybench.",
            "BEGIN",
            "COMMIT",
            "set_config",
            "pg_class",
            "pg_stat",
            "to_regclass",
        ] {
            assert!(
                !s.query.contains(word),
                "{word} in the app table: {}",
                s.query
            );
        }
    }
    let own: Vec<&str> = view
        .own_statements
        .iter()
        .map(|s| s.query.as_str())
        .collect();
    for word in [
        "storybench.meta",
        "BEGIN",
        "COMMIT",
        "set_config",
        "pg_class",
        "to_regclass",
        "pg_stat_statements",
    ] {
        assert!(
            own.iter().any(|q| q.contains(word)),
            "{word} shown apart: {own:?}"
        );
    }
}
