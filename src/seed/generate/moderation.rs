//! content_flags on a small share of stories, prompts and images, and the audit_log rows
//! the audit trigger would have written for them (INSERT, then UPDATE when reviewed).

use super::json::Obj;
use super::{pick, push_timestamp, random_uuid, Generator, Out, Rng8, Table, HOUR, MINUTE, SECOND};
use rand::RngExt;
use uuid::Uuid;

const FLAG_TYPES: [&str; 6] = [
    "violence",
    "fear",
    "inappropriate",
    "isolation",
    "medical",
    "other",
];
const FLAG_WEIGHTS: [u32; 6] = [15, 35, 10, 15, 10, 15];

struct Flag<'a> {
    id: Uuid,
    content_type: &'static str,
    content_id: Uuid,
    flag_type: &'static str,
    severity: &'static str,
    action: &'static str,
    original: &'a str,
    modified: Option<&'a str>,
    confidence: i64,
    created: i64,
    reviewed: Option<(i64, Uuid)>,
}

/// Flags for one story: maybe the story itself, maybe one scene's prompt, maybe images.
pub(crate) fn story_flags(
    g: &Generator,
    story: &Uuid,
    t: i64,
    scenes: &[Uuid],
    ills: &[(Uuid, i64, bool)],
    rng: &mut Rng8,
    out: &mut Out,
) {
    let f = &g.p.content_flags;
    if rng.random_bool(f.story_share) {
        let at = t + rng.random_range(SECOND..30 * SECOND);
        flag(g, "story", *story, at, rng, out);
    }
    if !scenes.is_empty() && rng.random_bool(f.prompt_share) {
        let at = t + rng.random_range(30 * SECOND..2 * MINUTE);
        flag(g, "prompt", *pick(rng, scenes), at, rng, out);
    }
    for &(ill, done, completed) in ills {
        if completed && rng.random_bool(f.image_share) {
            flag(
                g,
                "image",
                ill,
                done + rng.random_range(SECOND..10 * SECOND),
                rng,
                out,
            );
        }
    }
}

fn flag(
    g: &Generator,
    content_type: &'static str,
    content_id: Uuid,
    at: i64,
    rng: &mut Rng8,
    out: &mut Out,
) {
    let sys = &g.texts.system;
    let created = at.min(g.anchor - SECOND);
    let total: u32 = FLAG_WEIGHTS.iter().sum();
    let mut x = rng.random_range(0..total);
    let flag_type = FLAG_TYPES.iter().zip(FLAG_WEIGHTS).find(|(_, w)| {
        x < *w || {
            x -= w;
            false
        }
    });
    let flag_type = flag_type.map(|(t, _)| *t).unwrap_or("other");
    let severity = super::SEVERITIES[g.severity.sample(rng)];
    let action = match severity {
        "low" => ["approved", "modified"][rng.random_range(0..2)],
        "medium" => ["modified", "modified", "filtered"][rng.random_range(0..3)],
        "high" => ["filtered", "rejected"][rng.random_range(0..2)],
        _ => "rejected",
    };
    let confidence = if severity == "low" {
        rng.random_range(50..=80)
    } else {
        rng.random_range(70..=99)
    };
    let snippet = rng.random_range(0..sys.flag_snippets.len());
    let review_at = created + rng.random_range(10 * MINUTE..72 * HOUR);
    let reviewed = (rng.random_bool(g.p.content_flags.reviewed_share) && review_at < g.anchor)
        .then(|| {
            // Moderators are the staff users 0..staff, which exist at every scale.
            (
                review_at,
                super::user_id(g.seed(), rng.random_range(0..g.p.users.staff)),
            )
        });
    let fl = Flag {
        id: random_uuid(rng),
        content_type,
        content_id,
        flag_type,
        severity,
        action,
        original: &sys.flag_snippets[snippet],
        modified: (action == "modified")
            .then(|| sys.flag_rewrites[snippet % sys.flag_rewrites.len()].as_str()),
        confidence,
        created,
        reviewed,
    };
    let w = out.t(Table::ContentFlags);
    w.row(12);
    w.uuid(&fl.id);
    w.text(fl.content_type);
    w.uuid(&fl.content_id);
    w.text(fl.flag_type);
    w.text(fl.severity);
    w.text(fl.action);
    w.text(fl.original);
    w.opt_text(fl.modified);
    w.numeric(fl.confidence, 2);
    w.timestamptz(fl.created);
    w.opt_timestamptz(fl.reviewed.map(|r| r.0));
    match &fl.reviewed {
        Some((_, by)) => w.uuid(by),
        None => w.null(),
    }

    audit(out, rng, "INSERT", None, &fl, false, fl.created);
    if let Some((at, by)) = fl.reviewed {
        audit(out, rng, "UPDATE", Some(&by), &fl, true, at);
    }
}

/// The row audit_trigger() writes: the flag as JSON (`to_jsonb(NEW)`), the caller as user.
fn audit(
    out: &mut Out,
    rng: &mut Rng8,
    op: &str,
    user: Option<&Uuid>,
    fl: &Flag,
    after_review: bool,
    at: i64,
) {
    let w = out.t(Table::AuditLog);
    w.row(6);
    w.uuid(&random_uuid(rng));
    w.text("content_flags");
    w.text(op);
    match user {
        Some(u) => w.uuid(u),
        None => w.null(),
    }
    w.jsonb_with(|b| {
        let mut o = Obj::new(b);
        o.uuid("id", &fl.id)
            .str("content_type", fl.content_type)
            .uuid("content_id", &fl.content_id)
            .str("flag_type", fl.flag_type)
            .str("severity", fl.severity)
            .str("action_taken", fl.action)
            .str("original_content", fl.original)
            .opt_str("modified_content", fl.modified)
            .fixed("ai_confidence", fl.confidence, 2)
            .raw("created_at", |b| push_timestamp(b, fl.created));
        match fl.reviewed.filter(|_| after_review) {
            Some((at, by)) => {
                o.raw("reviewed_at", |b| push_timestamp(b, at))
                    .uuid("reviewed_by", &by);
            }
            None => {
                o.null("reviewed_at").null("reviewed_by");
            }
        }
        o.end()
    });
    w.timestamptz(at);
}
