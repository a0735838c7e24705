//! Plan summarizer and plan diff on real EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) output
//! captured from PostgreSQL 15 (tests/fixtures/plans/*.json); no database needed.
//! Fixtures: ~200 users, 11,662 stories (the heaviest user has 2,000), 60,000 api_usage
//! rows over 13 monthly partitions (+ empty future ones), `doc` index strategy unless the
//! name says otherwise.

use storybench::plan::{diff, render_text, summarize, ChangeKind, PlanSummary};

fn fixture(name: &str) -> PlanSummary {
    let path = format!(
        "{}/tests/fixtures/plans/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    summarize(&v).unwrap_or_else(|e| panic!("{name}: {e:#}"))
}

fn approx(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn nested_loop_with_misestimate() {
    // stories s JOIN story_scenes sc, filtered on `word_count + 0 = 80`: the planner
    // cannot estimate the expression (default selectivity 0.5 %) and expects 10 stories.
    let s = fixture("nested_loop_misestimate");
    assert_eq!(s.joins, ["Nested Loop"]);
    assert_eq!(s.relations.len(), 2);
    let st = &s.relations[0];
    assert_eq!(
        (st.relation.as_str(), st.alias.as_str(), st.access.as_str()),
        ("stories", "s", "Bitmap Heap Scan")
    );
    assert_eq!(st.index.as_deref(), Some("idx_stories_favorite"));
    assert_eq!(st.filter.as_deref(), Some("((word_count + 0) = 80)"));
    assert!(approx(st.est_rows, 10.0, 0.1) && approx(st.actual_rows, 2000.0, 0.1));
    let sc = &s.relations[1];
    assert_eq!(sc.access, "Index Only Scan");
    assert_eq!(
        sc.index.as_deref(),
        Some("story_scenes_story_id_scene_number_key")
    );
    assert_eq!(sc.loops, 2000);
    assert_eq!(sc.index_cond.as_deref(), Some("(story_id = s.id)"));
    let m = s.worst_misestimate.as_ref().unwrap();
    assert!(approx(m.factor, 200.0, 1.0), "{m:?}");
    assert!(m.underestimate);
    assert_eq!(m.node, "Nested Loop");
    assert!(s.partitions.is_none());
    assert_eq!(s.initplans, 0);
    // the inner index scan, run 2,000 times, is where the time goes
    let inner = s
        .nodes
        .iter()
        .find(|n| n.node_type == "Index Only Scan")
        .unwrap();
    assert_eq!(inner.depth, 1);
    assert!(inner.share_of_total > 0.5, "{inner:?}");
    assert!(approx(inner.actual_total_ms, 0.003 * 2000.0, 0.01));
}

#[test]
fn bitmap_heap_scan_with_filter() {
    let s = fixture("bitmap_heap_scan");
    assert_eq!(s.relations.len(), 1);
    let r = &s.relations[0];
    assert_eq!(r.access, "Bitmap Heap Scan");
    assert_eq!(r.index.as_deref(), Some("idx_illustrations_status"));
    assert_eq!(r.index_cond.as_deref(), Some("(status = 'failed'::text)"));
    assert_eq!(r.filter.as_deref(), Some("(retry_count < 2)"));
    assert_eq!(r.rows_removed_by_filter, 4771);
    assert_eq!(r.alias, "story_illustrations");
    assert_eq!(
        r.describe(),
        "Bitmap Heap Scan using idx_illustrations_status on story_illustrations"
    );
    assert!(s.worst_misestimate.as_ref().unwrap().factor < 1.1);
    assert!(s.shared_hit > 0);
    assert!(s.joins.is_empty() && s.sorts.is_empty());
    assert_eq!(
        s.nodes[1].label,
        "Bitmap Index Scan on idx_illustrations_status"
    );
    assert!(s.nodes[0]
        .details
        .iter()
        .any(|d| d == "Rows Removed by Filter: 4771"));
}

#[test]
fn partitioned_append_pruned_at_plan_time() {
    // constant 30-day window: 2 of 17 partitions survive planning
    let s = fixture("partitions_plan_time");
    let p = s.partitions.as_ref().unwrap();
    assert_eq!(
        (p.in_plan, p.scanned, p.subplans_removed, p.never_executed),
        (2, 2, 0, 0)
    );
    assert_eq!(p.total, None);
    let names: Vec<&str> = s.relations.iter().map(|r| r.relation.as_str()).collect();
    assert_eq!(names, ["api_usage_p202610", "api_usage_p202611"]);
    assert!(s
        .relations
        .iter()
        .all(|r| r.partition_parent.as_deref() == Some("api_usage")));
    assert_eq!(s.relations[0].access, "Bitmap Heap Scan");
    assert_eq!(
        s.relations[0].index.as_deref(),
        Some("api_usage_p202610_created_at_idx")
    );
    assert_eq!(s.relations[1].access, "Seq Scan");
    assert_eq!(s.sorts, ["Sort (quicksort, 25kB)"]);
    assert!(s.nodes.iter().any(|n| n.label == "HashAggregate"));
}

#[test]
fn partitioned_generic_plan_subplans_removed() {
    // force_generic_plan: pruning on $2 happens at executor start
    let s = fixture("partitions_generic_plan");
    let p = s.partitions.as_ref().unwrap();
    assert_eq!(
        (p.in_plan, p.scanned, p.subplans_removed, p.never_executed),
        (2, 2, 15, 0)
    );
    assert!(s.relations.iter().all(|r| r.access == "Index Only Scan"));
    assert_eq!(
        s.relations[1].index.as_deref(),
        Some("api_usage_p202611_user_id_function_name_created_at_idx")
    );
    // a generic plan estimates 1 row per partition
    let m = s.worst_misestimate.as_ref().unwrap();
    assert!(approx(m.factor, 69.0, 0.5), "{m:?}");
    assert!(s.nodes.iter().any(|n| n.label == "GroupAggregate"));
}

#[test]
fn partitioned_run_time_pruning_never_executed() {
    // bounds from InitPlans: every partition is in the plan, 16 never run
    let s = fixture("partitions_runtime");
    let p = s.partitions.as_ref().unwrap();
    assert_eq!(
        (p.in_plan, p.scanned, p.subplans_removed, p.never_executed),
        (17, 1, 0, 16)
    );
    assert_eq!(s.initplans, 2);
    let ran: Vec<&str> = s
        .relations
        .iter()
        .filter(|r| !r.never_executed)
        .map(|r| r.relation.as_str())
        .collect();
    assert_eq!(ran, ["api_usage_p202611"]);
    assert!(render_text(&s).contains("never executed"));
}

#[test]
fn index_scan_plan_and_initplan_policy_plan() {
    let s = fixture("recent_stories_doc");
    assert_eq!(
        s.relations[0].describe(),
        "Index Scan using idx_stories_user_created on stories s"
    );
    assert_eq!(
        s.relations[1].describe(),
        "Index Scan using heroes_pkey on heroes h"
    );
    assert_eq!(s.sorts, ["Incremental Sort (quicksort, 35kB)"]);
    // under LIMIT, rows a node was never asked for are not a misestimate
    assert!(s.worst_misestimate.is_none());
    assert!(s.nodes.iter().any(|n| n.label == "Memoize"));

    // the same query relying on the `initplan` policies alone, as `authenticated`
    let r = fixture("rls_initplan");
    assert_eq!(r.initplans, 2);
    assert_eq!(
        r.relations[1].index.as_deref(),
        Some("idx_stories_user_hero_created")
    );
    assert_eq!(
        r.relations[1].index_cond.as_deref(),
        Some("((user_id = $0) AND (hero_id = h.id))")
    );
    let m = r.worst_misestimate.as_ref().unwrap();
    assert!(
        approx(m.factor, 2000.0, 1.0) && m.node == "Nested Loop",
        "{m:?}"
    );
    let init = r
        .nodes
        .iter()
        .filter(|n| {
            n.subplan
                .as_deref()
                .is_some_and(|p| p.starts_with("InitPlan"))
        })
        .count();
    assert_eq!(init, 2);
}

#[test]
fn self_times_are_exclusive_and_shares_sum_to_about_one() {
    for name in [
        "nested_loop_misestimate",
        "recent_stories_seqscan",
        "partitions_plan_time",
        "bitmap_heap_scan",
    ] {
        let s = fixture(name);
        let total: f64 = s.nodes.iter().map(|n| n.self_ms).sum();
        assert!(
            approx(total, s.nodes[0].actual_total_ms, 1e-6),
            "{name}: {total} vs {}",
            s.nodes[0].actual_total_ms
        );
        assert!(s
            .nodes
            .iter()
            .all(|n| n.self_ms >= 0.0 && n.self_ms <= n.actual_total_ms + 1e-9));
        let share: f64 = s.nodes.iter().map(|n| n.share_of_total).sum();
        assert!(share > 0.8 && share <= 1.0, "{name}: {share}");
    }
}

#[test]
fn diff_seq_scan_to_index_scan() {
    let seq = fixture("recent_stories_seqscan");
    let idx = fixture("recent_stories_doc");
    let d = diff(&seq, &idx);
    let texts: Vec<&str> = d.iter().map(|c| c.text.as_str()).collect();
    assert!(
        texts.contains(&"Seq Scan on stories s → Index Scan using idx_stories_user_created"),
        "{texts:#?}"
    );
    assert!(
        texts.contains(&"Seq Scan on heroes h → Index Scan using heroes_pkey"),
        "{texts:#?}"
    );
    assert!(texts.contains(&"Hash Join → Nested Loop"), "{texts:#?}");
    assert!(
        texts.contains(&"Sort (top-N heapsort) → Incremental Sort (quicksort)"),
        "{texts:#?}"
    );
    let stories = d
        .iter()
        .find(|c| c.relation.as_deref() == Some("stories"))
        .unwrap();
    assert_eq!(stories.kind, ChangeKind::AccessPath);
    assert_eq!(stories.before, "Seq Scan on stories s");
    assert_eq!(
        stories.after,
        "Index Scan using idx_stories_user_created on stories s"
    );
    assert_eq!(d.len(), 4, "{texts:#?}");

    // and back: both relations become sequential scans
    let back = diff(&idx, &seq);
    assert_eq!(
        back.iter()
            .filter(|c| c.kind == ChangeKind::NewSeqScan)
            .count(),
        2
    );
    assert!(back
        .iter()
        .any(|c| c.text == "Index Scan using idx_stories_user_created on stories s → Seq Scan"));

    // a plan compared with itself has no changes
    assert!(diff(&idx, &idx).is_empty());
}

#[test]
fn diff_between_index_strategies() {
    let fk = fixture("recent_stories_fk_only");
    let doc = fixture("recent_stories_doc");
    let d = diff(&fk, &doc);
    let c = d
        .iter()
        .find(|c| c.relation.as_deref() == Some("stories"))
        .unwrap();
    assert_eq!(c.kind, ChangeKind::AccessPath);
    assert_eq!(c.text, "Bitmap Heap Scan using idx_stories_user_id on stories s → Index Scan using idx_stories_user_created");
    assert!(d.iter().any(|c| c.kind == ChangeKind::JoinMethod));
    assert!(d.iter().any(|c| c.kind == ChangeKind::SortMethod));
}

#[test]
fn diff_reports_index_change_and_grown_misestimate() {
    let explicit = fixture("recent_stories_doc");
    let policy_only = fixture("rls_initplan");
    let d = diff(&explicit, &policy_only);
    let ic = d
        .iter()
        .find(|c| c.kind == ChangeKind::IndexChanged)
        .expect("index changed");
    assert_eq!(ic.text, "Index Scan using idx_stories_user_created on stories s → Index Scan using idx_stories_user_hero_created");
    let m = d
        .iter()
        .find(|c| c.kind == ChangeKind::MisestimateGrew)
        .expect("misestimate grew");
    assert_eq!((m.before.as_str(), m.after.as_str()), ("1.0×", "2000.0×"));
    assert!(d
        .iter()
        .any(|c| c.kind == ChangeKind::AccessPath && c.relation.as_deref() == Some("heroes")));
}

#[test]
fn diff_partitions_scanned() {
    let generic = fixture("partitions_generic_plan");
    let runtime = fixture("partitions_runtime");
    let d = diff(&generic, &runtime);
    let p = d
        .iter()
        .find(|c| c.kind == ChangeKind::PartitionsScanned)
        .unwrap();
    assert_eq!(p.text, "partitions scanned of api_usage: 2 → 1");
    // partitions are compared by count, not reported one by one
    assert!(d.iter().all(|c| c
        .relation
        .as_deref()
        .is_none_or(|r| !r.starts_with("api_usage_p"))));
}

#[test]
fn render_and_serde_roundtrip() {
    let s = fixture("nested_loop_misestimate");
    let text = render_text(&s);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("planning 3.095 ms · execution 9.101 ms"),
        "{text}"
    );
    assert!(lines[1].starts_with("Nested Loop ("), "{text}");
    assert!(
        lines[2].starts_with("  -> Bitmap Heap Scan on stories s ("),
        "{text}"
    );
    assert!(
        lines[3].starts_with("    -> Bitmap Index Scan on idx_stories_favorite ("),
        "{text}"
    );
    assert!(text.contains("rows 2000 of 10 est"), "{text}");
    assert!(text.contains("worst misestimate: 200.0×"), "{text}");
    let json = serde_json::to_string(&s).unwrap();
    let back: PlanSummary = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    // accepts the element as well as the one-element array, rejects garbage
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/tests/fixtures/plans/bitmap_heap_scan.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(summarize(&v[0]).unwrap(), summarize(&v).unwrap());
    assert!(summarize(&serde_json::json!([{"Nope": 1}])).is_err());
}

#[test]
fn leakproof_trap_plan_keeps_like_in_the_filter() {
    // `doc` policies as authenticated, explicit user filter: the uuid equality is an index
    // condition, but the policy (auth.uid() per row) and the non-leakproof LIKE are a Filter.
    let s = fixture("rls_doc_title_like");
    let r = &s.relations[0];
    assert_eq!(r.access, "Index Scan");
    assert_eq!(r.index.as_deref(), Some("idx_stories_user_created"));
    let filter = r.filter.as_deref().unwrap();
    assert!(
        filter.contains("auth.uid()") && filter.contains("~~ 'The M%'"),
        "{filter}"
    );
    assert!(!r.index_cond.as_deref().unwrap().contains("~~"));
    assert_eq!(r.rows_removed_by_filter, 84);
}
