//! `advise indexes` on a seeded tiny dataset: a missing index a hot query needs is proposed,
//! screened, built for real, used by the real plan and judged by the verdict rule; advice.sql
//! carries exactly the recommended statements; the dataset is left as it was.

mod common;

use common::{stderr, TestDb};
use serde_json::Value;

/// The advise runs of this file one at a time: they share the test cluster, and one test
/// checks that no advise copy is left on it.
static COPIES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `advise WHAT ARGS… --budget BUDGET --out OUT`, the argument block every run here shares.
fn advise<'a>(what: &'a str, args: &[&'a str], budget: &'a str, out: &'a str) -> Vec<&'a str> {
    let mut all = vec!["advise", what];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--budget", budget, "--out", out]);
    all
}

#[tokio::test]
async fn an_index_a_hot_query_lacks_is_built_for_real_used_and_judged_by_its_rule() {
    let _one = COPIES.lock().await;
    let db = TestDb::new("advise_missing").await;
    let seeded = db.storybench(&["seed", "--profile", "tiny", "--anchor", "2026-11-20"]);
    assert!(seeded.status.success(), "{}", stderr(&seeded));
    let before = db.dump();
    let out = common::temp_root("advise-missing");
    let run = db.storybench(&advise(
        "indexes",
        &[
            "--indexes",
            "doc",
            // The recommended policy set: under doc's per-row auth.uid() HypoPG fails on these
            // plans and the verdict on play_events moved between runs (buffers 132 → 141).
            "--policies",
            "initplan",
            "--queries",
            "recently_played,play_story,heroes_with_avatar",
            "--max-verified",
            "6",
        ],
        "200ms",
        &out.to_string_lossy(),
    ));
    assert!(run.status.success(), "{}", stderr(&run));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let advice = &r["advice"];
    assert!(
        advice["hypopg"].as_str().is_some(),
        "screened with HypoPG: {advice:#}"
    );
    // pg_qualstats: where the server has the package, the embedded cluster preloads it and
    // the executed predicates (RLS quals included) add candidates, marked by their source.
    let mut conn = db.conn().await;
    let installed: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_qualstats')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    drop(conn);
    let note = advice["qualstats_note"].as_str().unwrap();
    if installed {
        assert!(advice["qualstats"].as_str().is_some(), "{note}");
        assert!(
            advice["qualstats_predicates"].as_u64().unwrap() > 0,
            "{note}"
        );
        let from_qualstats = advice["screened"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| {
                s["candidate"]["sources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x == "qualstats")
            })
            .count();
        assert!(
            from_qualstats > 0,
            "candidates from pg_qualstats: {advice:#}"
        );
    } else {
        assert!(advice["qualstats"].is_null());
        assert!(note.contains("not installed"), "{note}");
    }
    // Under `doc`, recently_played scans play_events whole for one user: the advisor finds
    // the user_id key from the plan (the RLS filter included), HypoPG likes it, the real
    // build is used, reads fewer buffers and is clearly faster.
    let created = advice["created"].as_array().unwrap();
    let found = created
        .iter()
        .find(|v| {
            v["table"] == "public.play_events"
                && v["statement"].as_str().unwrap().contains("(user_id")
        })
        .unwrap_or_else(|| panic!("play_events(user_id …) built and measured: {created:#?}"));
    let effects = found["effects"].as_array().unwrap();
    assert!(
        effects
            .iter()
            .any(|e| e["query"] == "recently_played" && e["uses_index"] == true),
        "the real plan of recently_played uses the real build: {found:#}"
    );
    // The verdict follows its rule: recommended only with a read clearly faster on fewer
    // buffers. (Which way it goes on this small dataset moved between runs: the time of a
    // sub-ms read; the rule is what is tested here, docs/advisor.md has the A/A figures.)
    let buffers =
        |w: &Value| w["shared_hit"].as_u64().unwrap() + w["shared_read"].as_u64().unwrap();
    let confirmed = effects.iter().any(|e| {
        e["uses_index"] == true
            && e["kind"] == "read"
            && e["ratio"]["high"].as_f64().unwrap_or(1.0) < 0.95
            && buffers(&e["work_with"]) as f64 <= 0.9 * buffers(&e["work_without"]) as f64
    });
    if found["verdict"] == "recommended" {
        assert!(confirmed, "recommended with its evidence: {found:#}");
    } else {
        assert!(!found["reason"].as_str().unwrap().is_empty(), "{found:#}");
    }
    assert!(found["build_seconds"].as_f64().unwrap() > 0.0);
    assert!(found["bytes"].as_i64().unwrap() > 0);
    // advice.sql: every recommended statement with its evidence, no rejected one.
    let sql = std::fs::read_to_string(out.join("advice.sql")).unwrap();
    for v in created.iter().chain(advice["dropped"].as_array().unwrap()) {
        let stmt = format!("{};", v["statement"].as_str().unwrap());
        let listed = sql.lines().any(|l| l == stmt);
        assert_eq!(listed, v["verdict"] == "recommended", "{stmt}\n{sql}");
    }
    if found["verdict"] == "recommended" {
        assert!(
            sql.contains("--   recently_played ("),
            "its evidence: {sql}"
        );
    }
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

/// `advise schema`: the recommended variant (`tuned` + `initplan`) is clean by Supabase's
/// linter rules but for the api_usage partitions (schema/README.md, deviation 24); the
/// document's policies are not, and --strict turns advisories into exit 1.
#[tokio::test]
async fn the_recommended_variant_is_clean_by_supabases_linter_rules() {
    let _one = COPIES.lock().await;
    let db = TestDb::new("advise_lint").await;
    let seeded = db.storybench(&["seed", "--profile", "tiny", "--anchor", "2026-11-20"]);
    assert!(seeded.status.success(), "{}", stderr(&seeded));
    let before = db.dump();
    let lint = |args: &[&str], out: &std::path::Path| {
        let mut all = vec!["advise", "schema"];
        all.extend_from_slice(args);
        let o = out.to_string_lossy().to_string();
        all.extend_from_slice(&["--out", &o]);
        let run = db.storybench(&all);
        let r: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap())
                .unwrap_or(Value::Null);
        (
            run,
            r["lint"]["advisories"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        )
    };
    // Clean: the api_usage partitions live in the unexposed schema `partitions` there.
    let (run, recommended) = lint(&["--strict"], &common::temp_root("advise-lint-recommended"));
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(recommended.is_empty(), "initplan + tuned: {recommended:#?}");
    // --measure on the clean variant still reads the plans: tuned's (user_id, title
    // text_pattern_ops) index serves the title search as an index condition bypassing RLS,
    // but under RLS LIKE (not leakproof) stays a Filter above the policy.
    let out = common::temp_root("advise-lint-leakproof");
    let run = db.storybench(&advise(
        "schema",
        &["--measure"],
        "50ms",
        &out.to_string_lossy(),
    ));
    assert!(run.status.success(), "{}", stderr(&run));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let costs = r["lint"]["costs"].as_array().unwrap();
    let leaks: Vec<&Value> = costs
        .iter()
        .filter(|c| c["rule"] == "non_leakproof_under_rls")
        .collect();
    assert!(!leaks.is_empty(), "the advisory fires: {costs:#?}");
    for c in &leaks {
        let shown: Vec<&str> = c["fix"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert!(
            shown.iter().any(|f| f.starts_with("Filter: ")),
            "{shown:#?}"
        );
        assert!(
            shown
                .iter()
                .any(|f| f.starts_with("bypassing RLS, Index Cond: ")),
            "{shown:#?}"
        );
        // Work beside the time: both plans' buffers, under RLS and bypassing it; the Filter
        // above the policy never reads fewer pages than the index condition.
        assert!(hits(c, "work_as_is") >= hits(c, "work_fixed"), "{c:#}");
        assert!(c["ratio"]["estimate"].as_f64().is_some(), "{c:#}");
    }
    // The title search's LIKE: a Seq Scan under RLS, the pattern index bypassing it.
    assert!(
        leaks.iter().any(|c| c["object"] == "stories_title_search"
            && hits(c, "work_as_is") > hits(c, "work_fixed")),
        "{leaks:#?}"
    );
    let (run, doc) = lint(
        &["--policies", "doc", "--indexes", "doc", "--strict"],
        &common::temp_root("advise-lint-doc"),
    );
    assert_eq!(
        run.status.code(),
        Some(1),
        "--strict with advisories: {}",
        stderr(&run)
    );
    let has = |rule: &str, object: &str| {
        doc.iter()
            .any(|a| a["rule"] == rule && a["object"].as_str().unwrap().contains(object))
    };
    assert!(has("auth_rls_initplan", "public.stories"), "{doc:#?}");
    // The document's service policy has no TO: it is OR-ed with every user policy.
    assert!(has(
        "multiple_permissive_policies",
        "public.custom_events (authenticated, SELECT)"
    ));
    // The document's DDL keeps the partitions in public: closed, and flagged.
    assert!(
        has("rls_enabled_no_policy", "public.api_usage_p"),
        "{doc:#?}"
    );
    assert_eq!(db.dump(), before, "the dataset is unchanged");
}

/// `advise schema --measure`: each advisory's fix made on a second copy and the statements
/// it affects timed against the copy as it is, with intervals and work figures.
#[tokio::test]
async fn schema_advisories_are_measured_on_a_fixed_copy() {
    let _one = COPIES.lock().await;
    let db = TestDb::new("advise_costs").await;
    let seeded = db.storybench(&["seed", "--profile", "tiny", "--anchor", "2026-11-20"]);
    assert!(seeded.status.success(), "{}", stderr(&seeded));
    let before = db.dump();
    let out = common::temp_root("advise-costs");
    let run = db.storybench(&advise(
        "schema",
        &["--policies", "doc", "--indexes", "doc", "--measure"],
        "100ms",
        &out.to_string_lossy(),
    ));
    assert!(run.status.success(), "{}", stderr(&run));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let costs = r["lint"]["costs"].as_array().unwrap();
    let of = |rule: &str| -> Vec<&Value> { costs.iter().filter(|c| c["rule"] == rule).collect() };
    // Bare auth.uid(): every app query timed with the policies wrapped, an interval each.
    let initplan = of("auth_rls_initplan");
    let recent = initplan
        .iter()
        .find(|c| c["statement"] == "recent_stories")
        .unwrap_or_else(|| panic!("recent_stories measured: {costs:#?}"));
    assert!(
        recent["fix"][0].as_str().unwrap().contains("(SELECT auth."),
        "{recent:#}"
    );
    let ratio = &recent["ratio"];
    assert!(ratio["low"].as_f64().unwrap() <= ratio["estimate"].as_f64().unwrap());
    assert!(ratio["estimate"].as_f64().unwrap() <= ratio["high"].as_f64().unwrap());
    assert!(recent["work_as_is"]["shared_hit"].is_u64(), "{recent:#}");
    // OR-ed permissive policies: the service policy scoped, FOR ALL split.
    let permissive = of("multiple_permissive_policies");
    let fix: Vec<&str> = permissive[0]["fix"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        fix.iter().any(|f| f.ends_with("TO service_role")),
        "{fix:#?}"
    );
    assert!(fix.iter().any(|f| f.contains("FOR DELETE")), "{fix:#?}");
    // Unindexed foreign keys: the parent's DELETE timed, the check's lookup as work figures;
    // where the child is big enough for the planner to use the new index (play_events), the
    // lookup reads fewer buffers with it (deterministic work, not time).
    let fks = of("unindexed_foreign_keys");
    assert!(!fks.is_empty(), "{costs:#?}");
    for c in &fks {
        assert!(
            c["statement"].as_str().unwrap().starts_with("DELETE FROM "),
            "{c:#}"
        );
        assert!(c["error"].is_null(), "{c:#}");
        assert!(c["ratio"]["estimate"].as_f64().is_some(), "{c:#}");
    }
    let buffers =
        |w: &Value| w["shared_hit"].as_u64().unwrap() + w["shared_read"].as_u64().unwrap();
    assert!(
        fks.iter()
            // An index or bitmap scan names its index ("… using idx …"); the planner picks
            // either on this small table.
            .any(|c| c["work_fixed"]["shape"].to_string().contains(" using ")
                && buffers(&c["work_fixed"]) < buffers(&c["work_as_is"])),
        "{fks:#?}"
    );
    assert_eq!(db.dump(), before, "the dataset is unchanged");
}

/// The RLS-only case of issue 17: under `initplan` policies with `doc` indexes,
/// `recent_stories` for the heaviest user starts from heroes (the heroes policy's filter is
/// estimated as independent of the query's own filter on stories: the join is expected to
/// return about one row, so the LIMIT no longer stops the ordered stories scan early).
/// `advise schema --measure` finds it from the plans under RLS and bypassing it, explains it
/// with both plans, and measures the proposed policy form on a second copy.
#[tokio::test]
async fn advise_explains_a_join_order_the_policies_change() {
    let _one = COPIES.lock().await;
    let db = TestDb::new("advise_join_order").await;
    let seeded = db.storybench(&["seed", "--profile", "tiny", "--anchor", "2026-11-20"]);
    assert!(seeded.status.success(), "{}", stderr(&seeded));
    let before = db.dump();
    let out = common::temp_root("advise-join-order");
    let run = db.storybench(&[
        "advise",
        "schema",
        "--policies",
        "initplan",
        "--indexes",
        "doc",
        "--measure",
        "--budget",
        "50ms",
        "--out",
        &out.to_string_lossy(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let costs = r["lint"]["costs"].as_array().unwrap();
    let recent = costs
        .iter()
        .find(|c| c["rule"] == "rls_join_order" && c["statement"] == "recent_stories")
        .unwrap_or_else(|| panic!("recent_stories reordered by the policies: {costs:#?}"));
    assert_eq!(recent["object"], "public.heroes", "{recent:#}");
    // The explanation: heroes first under RLS, stories first bypassing it.
    let plans: Vec<&str> = recent["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let first = |line: &str| line.find(" on heroes").unwrap() < line.find(" on stories").unwrap();
    assert!(
        plans[0].starts_with("under RLS: ") && first(plans[0]),
        "{plans:#?}"
    );
    assert!(
        plans[1].starts_with("bypassing RLS: ") && !first(plans[1]),
        "{plans:#?}"
    );
    // Work, not time: the plan under RLS touches clearly more buffers than bypassing it.
    let buffers =
        |w: &Value| w["shared_hit"].as_u64().unwrap() + w["shared_read"].as_u64().unwrap();
    let (as_is, bypass) = (
        buffers(&recent["work_as_is"]),
        buffers(&recent["work_bypass"]),
    );
    assert!(
        as_is as f64 >= 1.5 * bypass as f64,
        "{as_is} vs {bypass}: {recent:#}"
    );
    // The proposal, made on the second copy and measured: the same ten rows.
    assert!(
        recent["fix"][0]
            .as_str()
            .unwrap()
            .contains("IN (SELECT auth.uid())"),
        "{recent:#}"
    );
    assert_eq!(recent["work_fixed"]["rows"], recent["work_as_is"]["rows"]);
    assert!(recent["error"].is_null(), "{recent:#}");
    let printed = format!("{}{}", common::stdout(&run), stderr(&run));
    assert!(printed.contains("under RLS: "), "{printed}");
    assert_eq!(db.dump(), before, "the dataset is unchanged");
}

/// advise degrades with a clear message on a real server without pg_qualstats preloaded (an
/// embedded cluster whose shared_preload_libraries was edited): the advice still comes, from
/// the plans alone. (HypoPG refused is not tested: an event trigger that refuses it is a
/// user object, and storybench rightly refuses a dataset holding one.)
#[tokio::test]
async fn advise_says_so_when_pg_qualstats_is_missing() {
    let _one = COPIES.lock().await;
    let root = common::temp_root("advise-degraded");
    let data = root.join("pgdata");
    let sb = |args: &[&str]| {
        common::storybench_cmd()
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .unwrap()
    };
    let seeded = sb(&["seed", "--profile", "tiny", "--anchor", common::ANCHOR]);
    assert!(seeded.status.success(), "{}", stderr(&seeded));
    // The server as a host without pg_qualstats in shared_preload_libraries runs it.
    let conf = data.join("storybench.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    let edited: String = text
        .lines()
        .map(|l| {
            if l.starts_with("shared_preload_libraries") {
                l.replace(",pg_qualstats", "")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&conf, edited + "\n").unwrap();
    let started = sb(&["db", "start"]);
    assert!(started.status.success(), "{}", stderr(&started));
    let url = common::stdout(&started).lines().last().unwrap().to_string();
    let mut conn = common::connect(&url).await;
    let preload: String = sqlx::query_scalar("SELECT current_setting('shared_preload_libraries')")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(!preload.contains("pg_qualstats"), "{preload}");
    drop(conn);
    let out = root.join("out");
    let run = sb(&advise(
        "indexes",
        &[
            "--indexes",
            "doc",
            "--policies",
            "initplan",
            "--queries",
            "recently_played",
            "--max-verified",
            "1",
            "--no-compare",
        ],
        "50ms",
        &out.to_string_lossy(),
    ));
    let stopped = sb(&["db", "stop"]);
    assert!(stopped.status.success(), "{}", stderr(&stopped));
    assert!(run.status.success(), "{}", stderr(&run));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let advice = &r["advice"];
    // pg_qualstats: installed, not preloaded, said once; the plans alone are read.
    assert!(advice["qualstats"].is_null(), "{advice:#}");
    let note = advice["qualstats_note"].as_str().unwrap();
    assert!(
        note.contains("does not preload it") && note.contains("plans only"),
        "{note}"
    );
    // The advice still comes from the plans: candidates were read and judged.
    assert!(
        advice["hypopg"].is_string() || advice["hypopg_note"].is_string(),
        "{advice:#}"
    );
    let printed = format!("{}{}", common::stdout(&run), stderr(&run));
    assert!(printed.contains("does not preload it"), "{printed}");
}

/// advise through a role that may create databases but is not a superuser: storybench runs
/// end to end (it owns its database, so seed, pristine copies and the variant switches work),
/// but CREATE EXTENSION hypopg is refused there. advise says so with the server's reason and
/// builds the candidates for real unscreened.
#[tokio::test]
async fn advise_says_so_when_hypopg_is_refused() {
    let _one = COPIES.lock().await;
    // The API roles are cluster-wide and created by a superuser's first seed (service_role
    // has BYPASSRLS, which only a superuser grants).
    let first = TestDb::new("advise_roles").await;
    let seeded = first.storybench(&["seed", "--profile", "tiny", "--anchor", common::ANCHOR]);
    assert!(seeded.status.success(), "{}", stderr(&seeded));
    let role = "sb_not_superuser";
    let name = "t_advise_hypopg_refused";
    let mut admin = common::connect(&common::url_for("postgres")).await;
    for stmt in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("DROP ROLE IF EXISTS {role}"),
        format!("CREATE ROLE {role} LOGIN CREATEDB NOSUPERUSER"),
        format!("GRANT anon, authenticated, service_role TO {role}"),
        format!("CREATE DATABASE {name} OWNER {role}"),
    ] {
        sqlx::Executor::execute(&mut admin, sqlx::AssertSqlSafe(stmt))
            .await
            .unwrap();
    }
    let mut url = url::Url::parse(&common::url_for(name)).unwrap();
    url.set_username(role).unwrap();
    let url = url.to_string();
    let sb = |args: &[&str]| {
        common::storybench_cmd()
            .arg("--database-url")
            .arg(&url)
            .args(args)
            .output()
            .unwrap()
    };
    let seeded = sb(&["seed", "--profile", "tiny", "--anchor", common::ANCHOR]);
    assert!(seeded.status.success(), "{}", stderr(&seeded));
    let out = common::temp_root("advise-hypopg-refused");
    let run = sb(&[
        "advise",
        "indexes",
        "--indexes",
        "doc",
        "--policies",
        "initplan",
        "--queries",
        "recently_played",
        "--max-verified",
        "1",
        "--budget",
        "50ms",
        "--no-compare",
        "--out",
        &out.to_string_lossy(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let advice = &r["advice"];
    assert!(advice["hypopg"].is_null(), "{advice:#}");
    let note = advice["hypopg_note"].as_str().unwrap();
    assert!(
        note.contains("permission denied") && note.contains("without screening"),
        "{note}"
    );
    let printed = format!("{}{}", common::stdout(&run), stderr(&run));
    assert!(printed.contains("without screening"), "{printed}");
    // Unscreened, not skipped: a candidate was built for real and judged.
    assert!(
        advice["screened"].as_array().unwrap().is_empty(),
        "{advice:#}"
    );
    let built = advice["created"].as_array().unwrap();
    assert!(!built.is_empty(), "{advice:#}");
    assert!(built.iter().all(|v| v["bytes"].as_i64().unwrap() > 0));
    let mut cleanup = common::connect(&common::url_for("postgres")).await;
    for stmt in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("DROP ROLE IF EXISTS {role}"),
    ] {
        sqlx::Executor::execute(&mut cleanup, sqlx::AssertSqlSafe(stmt))
            .await
            .unwrap();
    }
}

/// Shared buffers hit by one of a cost's two plans.
fn hits(c: &Value, plan: &str) -> u64 {
    c[plan]["shared_hit"].as_u64().unwrap()
}
