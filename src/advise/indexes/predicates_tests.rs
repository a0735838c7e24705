use super::*;
use serde_json::json;

fn relations() -> Relations {
    let mut r = Relations::default();
    let cols = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    r.by_relation.insert(
        "public.stories".into(),
        (
            "public.stories".into(),
            cols(&[
                "id",
                "user_id",
                "hero_id",
                "created_at",
                "status",
                "is_favorite",
                "deleted_at",
            ]),
        ),
    );
    r.by_relation.insert(
        "public.heroes".into(),
        (
            "public.heroes".into(),
            cols(&["id", "user_id", "name", "is_active"]),
        ),
    );
    r.by_relation.insert(
        "public.api_usage_2026_11".into(),
        ("public.api_usage".into(), cols(&["user_id", "created_at"])),
    );
    r
}

/// A heroes-first join under RLS: the policy's InitPlan filter on both tables, a parameterized
/// index condition naming the other alias, a constant and a null test, a sort above.
fn plan() -> serde_json::Value {
    json!([{ "Plan": {
    "Node Type": "Limit", "Total Cost": 42.5,
    "Plans": [{ "Node Type": "Sort", "Sort Key": ["s.created_at DESC", "lower(s.status)"],
      "Plans": [{ "Node Type": "Nested Loop",
        "Plans": [
          { "Node Type": "Seq Scan", "Relation Name": "heroes", "Schema": "public", "Alias": "h",
            "Filter": "(h.is_active AND (h.user_id = $0))" },
          { "Node Type": "Index Scan", "Relation Name": "stories", "Schema": "public", "Alias": "s",
            "Index Name": "stories_hero_id_idx",
            "Index Cond": "(s.hero_id = h.id)",
            "Filter": "((s.deleted_at IS NULL) AND ((s.status)::text = 'completed'::text) AND (s.user_id = $0) AND (lower(s.status) <> 'x'::text))" }
        ]}]}]}}])
}

#[test]
fn a_join_under_rls_gives_each_table_its_own_columns() {
    let uses = table_uses(&plan(), &relations());
    let stories = uses.iter().find(|u| u.table == "public.stories").unwrap();
    assert_eq!(
        stories.equality.iter().collect::<Vec<_>>(),
        ["hero_id", "status", "user_id"]
    );
    assert!(stories.range.is_empty());
    assert_eq!(stories.order, vec![("created_at".to_string(), true)]);
    assert!(stories.partial.contains("deleted_at IS NULL"));
    assert!(stories.partial.contains("status = 'completed'::text"));
    assert!(stories.indexes_used.contains("stories_hero_id_idx"));
    let heroes = uses.iter().find(|u| u.table == "public.heroes").unwrap();
    // `h.id` in the stories index condition belongs to heroes, not stories' `id`.
    assert_eq!(heroes.equality.iter().collect::<Vec<_>>(), ["user_id"]);
    assert!(heroes.partial.contains("is_active"), "{heroes:?}");
    assert!(!stories.equality.contains("id"));
}

#[test]
fn ranges_reversed_comparisons_and_partitions_fold_into_their_table() {
    let plan = json!({ "Plan": { "Node Type": "Seq Scan", "Relation Name": "api_usage_2026_11",
        "Schema": "public", "Alias": "api_usage_2026_11", "Total Cost": 10.0,
        "Filter": "((api_usage_2026_11.created_at >= '2026-11-01 00:00:00+00'::timestamp with time zone) AND ($1 = api_usage_2026_11.user_id))" }});
    let uses = table_uses(&plan, &relations());
    assert_eq!(uses.len(), 1);
    assert_eq!(uses[0].table, "public.api_usage");
    assert_eq!(uses[0].range.iter().collect::<Vec<_>>(), ["created_at"]);
    assert_eq!(uses[0].equality.iter().collect::<Vec<_>>(), ["user_id"]);
    assert_eq!(total_cost(&plan), Some(10.0));
}

#[test]
fn function_arguments_and_unknown_relations_are_not_candidates() {
    let plan = json!({ "Plan": { "Node Type": "Seq Scan", "Relation Name": "other",
        "Schema": "public", "Alias": "o", "Filter": "(o.user_id = $1)" }});
    assert!(table_uses(&plan, &relations()).is_empty());
    let mut u = TableUse::default();
    let cols: BTreeSet<String> = ["title".to_string()].into();
    read_predicate("(lower(s.title) = 'x'::text)", "s", &cols, &mut u);
    assert!(u.partial.is_empty() && u.equality.is_empty(), "{u:?}");
}
