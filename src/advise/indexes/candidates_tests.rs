use super::*;
use crate::advise::indexes::predicates::TableUse;

fn stories_use() -> TableUse {
    TableUse {
        table: "public.stories".into(),
        equality: ["user_id".to_string()].into(),
        range: ["created_at".to_string()].into(),
        order: vec![("created_at".into(), true)],
        partial: ["deleted_at IS NULL".to_string()].into(),
        indexes_used: Default::default(),
    }
}

const SQL: &str =
    "SELECT * FROM stories WHERE user_id = $1 AND deleted_at IS NULL ORDER BY created_at DESC";

fn existing(name: &str, cols: &[&str]) -> ExistingIndex {
    ExistingIndex {
        name: name.into(),
        table: "public.stories".into(),
        columns: Some(cols.iter().map(|c| c.to_string()).collect()),
        predicate: None,
        unique: false,
        constraint: false,
        definition: String::new(),
        leads_with_foreign_key: false,
        bytes: 0,
    }
}

#[test]
fn equality_columns_lead_then_the_order_then_partial_forms() {
    let keys: Vec<String> = from_use("recent_stories", SQL, &stories_use())
        .iter()
        .map(Candidate::key)
        .collect();
    assert!(
        keys.contains(&"public.stories(user_id)".to_string()),
        "{keys:?}"
    );
    assert!(keys.contains(&"public.stories(user_id, created_at DESC)".to_string()));
    assert!(keys.contains(&"public.stories(user_id, created_at)".to_string()));
    assert!(keys.contains(
        &"public.stories(user_id, created_at DESC) WHERE deleted_at IS NULL".to_string()
    ));
}

#[test]
fn prefixes_of_existing_indexes_are_skipped_and_duplicates_merged() {
    let mut all = from_use("recent_stories", SQL, &stories_use());
    all.extend(from_use("favorite_stories", SQL, &stories_use()));
    let (kept, skipped) = screenable(
        all,
        &[existing("stories_user_created", &["user_id", "created_at"])],
    );
    assert!(skipped
        .iter()
        .any(|s| s.candidate == "public.stories(user_id)"
            && s.reason.contains("stories_user_created")));
    assert!(skipped
        .iter()
        .any(|s| s.candidate == "public.stories(user_id, created_at DESC)"));
    // A partial form of a key a full index already leads with is no new index either.
    assert!(kept.iter().all(|c| c.predicate.is_none()), "{kept:?}");
    let created = kept
        .iter()
        .find(|c| c.key() == "public.stories(created_at)")
        .unwrap();
    assert_eq!(created.suggested_by, ["recent_stories", "favorite_stories"]);
    assert!(kept.iter().all(|c| c.key() != "public.stories(user_id)"));
}

#[test]
fn statements_and_names_are_valid_postgres() {
    let c = &from_use("q", SQL, &stories_use())
        .into_iter()
        .find(|c| c.predicate.is_some())
        .unwrap();
    assert_eq!(
        c.create_sql(true),
        "CREATE INDEX CONCURRENTLY sb_adv_stories_user_id_created_at_part ON public.stories (user_id, created_at DESC) WHERE deleted_at IS NULL"
    );
    assert_eq!(
        c.hypothetical_sql(),
        "CREATE INDEX ON public.stories (user_id, created_at DESC) WHERE deleted_at IS NULL"
    );
    let long = Candidate {
        table: "public.a_table_with_a_rather_long_name".into(),
        columns: ["first_long_column", "second_long_column", "third"]
            .iter()
            .map(|n| KeyColumn {
                name: n.to_string(),
                descending: false,
            })
            .collect(),
        predicate: None,
        suggested_by: vec![],
        from_rls: false,
        sources: vec![Source::Plan],
    };
    assert!(long.index_name().len() <= 63);
}

#[test]
fn a_prefix_index_is_redundant_unless_it_backs_a_constraint() {
    let short = existing("stories_user", &["user_id"]);
    let wide = existing("stories_user_created", &["user_id", "created_at"]);
    let mut pk = existing("stories_pkey_like", &["user_id"]);
    pk.constraint = true;
    let all = [short, wide, pk];
    let r = redundant(&all);
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].0.name.as_str(), r[0].1.name.as_str()),
        ("stories_user", "stories_user_created")
    );
}

#[test]
fn a_bound_parameter_shown_as_a_literal_is_not_a_partial_predicate() {
    let mut u = stories_use();
    u.partial = [
        "user_id = 'd87eb62f-3e8d-4e19-ba78-1f58a95326e9'::uuid".to_string(),
        "status = 'completed'::text".to_string(),
    ]
    .into();
    let sql = "SELECT * FROM stories WHERE user_id = $1 AND status = 'completed'";
    let partials: Vec<String> = from_use("q", sql, &u)
        .iter()
        .filter_map(|c| c.predicate.clone())
        .collect();
    assert_eq!(partials, ["status = 'completed'::text"]);
    let mut flag = stories_use();
    flag.partial = ["is_favorite".to_string()].into();
    let bound = "SELECT * FROM stories WHERE user_id = $1 AND is_favorite = $2";
    assert!(from_use("q", bound, &flag)
        .iter()
        .all(|c| c.predicate.is_none()));
}

#[test]
fn a_key_only_the_policies_ask_for_is_marked_as_rls_only() {
    let under_rls = TableUse {
        table: "public.heroes".into(),
        equality: ["id".to_string(), "user_id".to_string()].into(),
        ..Default::default()
    };
    let bypass = TableUse {
        table: "public.heroes".into(),
        equality: ["id".to_string()].into(),
        ..Default::default()
    };
    let mut all = from_use("recent_stories", "SELECT 1", &under_rls);
    mark_rls(&mut all, std::slice::from_ref(&bypass));
    let by_key = |k: &str| all.iter().find(|c| c.key() == k).unwrap().from_rls;
    assert!(by_key("public.heroes(id, user_id)"));
    assert!(by_key("public.heroes(user_id)"));
    assert!(!by_key("public.heroes(id)"));
}
