use super::*;

fn fixture() -> RunResults {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/results/quick_all_sections.json"
    );
    RunResults::read(std::path::Path::new(path)).unwrap()
}

fn topic(f: &[Finding], t: Topic) -> Vec<&Finding> {
    f.iter().filter(|x| x.topic == t).collect()
}

#[test]
fn every_topic_of_the_fixture_is_answered_from_its_figures() {
    let r = fixture();
    let f = of(&r, None);
    let cap = topic(&f, Topic::Capacity)[0];
    let c = r.capacity.as_ref().unwrap();
    assert!(cap
        .headline
        .contains(&format!("≥ {:.1}", c.sustainable_rate.unwrap())));
    assert!(cap
        .headline
        .contains(&format!("{:.0} active", c.equivalent_users.unwrap())));
    let ix = topic(&f, Topic::Indexes)[0];
    assert!(ix.headline.starts_with("Adopt doc"), "{}", ix.headline);
    assert!(ix.headline.contains("1.20×"), "{}", ix.headline);
    let rls = topic(&f, Topic::Rls);
    assert!(rls[0].headline.starts_with("Use the initplan policies"));
    assert!(rls[0].headline.contains("buffers"), "server work shown");
    assert!(rls[1].headline.contains("no leak in 672 attempts"));
    assert_eq!(rls[1].evidence, "rls-audit");
    let p = topic(&f, Topic::Partitions);
    assert!(
        p[0].headline.starts_with("Pruning works"),
        "{}",
        p[0].headline
    );
    assert!(p[1].headline.contains("does not pay"), "{}", p[1].headline);
    assert!(p[1].headline.contains("2.39×"), "{}", p[1].headline);
    assert!(topic(&f, Topic::Baseline).is_empty(), "no baseline given");
}

#[test]
fn a_ratio_whose_interval_includes_one_is_no_measurable_difference() {
    let i = Interval {
        low: 0.97,
        high: 1.31,
        kind: "95 % CI".into(),
    };
    assert!(!measurable(1.14, Some(&i)));
    assert!(
        measurable(1.14, None),
        "outside the noise band without an interval"
    );
    assert!(!measurable(1.03, None));
    let (v, text) = ratio_text(1.14, Some(&i));
    assert_eq!(v, "1.14×");
    assert_eq!(text.as_deref(), Some("[0.97–1.31], 95 % CI"));
}

#[test]
fn strategies_within_the_noise_are_reported_as_no_measurable_difference() {
    let mut r = fixture();
    let ex = r.explain.as_mut().unwrap();
    ex.overall.retain(|o| o.strategy != "doc");
    ex.overall.iter_mut().for_each(|o| o.geomean_speedup = 1.02);
    let f = of(&r, None);
    let ix = topic(&f, Topic::Indexes)[0];
    assert_eq!(ix.tone, Tone::Unclear);
    assert!(
        ix.headline
            .starts_with("No measurable difference between fk_only and tuned"),
        "{}",
        ix.headline
    );
}

#[test]
fn a_baseline_without_regressions_says_none_and_the_text_ends_with_evidence() {
    let r = fixture();
    let c = crate::compare::compare(&r, &r, 0.10);
    let f = of(&r, Some(&c));
    let b = topic(&f, Topic::Baseline)[0];
    assert!(b.headline.starts_with("No regression"), "{}", b.headline);
    let text = render_text(&f, Some("reports/x/report.html"));
    assert!(text.starts_with("Findings\n"));
    assert!(text.contains("evidence: reports/x/report.html#capacity"));
    assert!(!text.contains('\x1b'));
}
