//! story_scenes and story_illustrations of one story, with their extract-scenes and
//! generate-illustration calls.

use super::heroes::{Hero, STORAGE};
use super::json::Obj;
use super::stories::EMOTIONS;
use super::text::Fill;
use super::usage::{api_call, Call, F_ILLUSTRATION, F_SCENES};
use super::{
    pick, pick_str, push_hex, push_timestamp, random_uuid, Generator, Out, Rng8, Scratch, Table,
    HOUR, MINUTE, SECOND,
};
use crate::seed::copy_binary::CopyWriter;
use crate::seed::profile::LANGUAGES;
use rand::RngExt;
use uuid::Uuid;

/// The story's owner, for the API rows of its scenes.
#[derive(Clone, Copy)]
pub(crate) struct Who<'a> {
    pub id: &'a Uuid,
    pub lang: usize,
}

/// One story, for the rows of its scenes and illustrations.
struct StoryCtx<'a> {
    g: &'a Generator,
    u: Who<'a>,
    story: &'a Uuid,
    hero: &'a Hero,
    /// When extract-scenes returned: the scenes' creation time.
    scenes_at: i64,
    /// The number of scenes.
    k: usize,
    mood: &'a str,
    style: &'a str,
}

/// Scenes cut at sentence boundaries, each with its illustration. Returns the latest
/// API call time; leaves the scene and illustration ids in the scratch buffers.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write(
    g: &Generator,
    u: Who,
    recent: &mut Vec<(u8, i64)>,
    story: &Uuid,
    t: i64,
    k: u32,
    words: u32,
    hero: &Hero,
    rng: &mut Rng8,
    api_rng: &mut Rng8,
    out: &mut Out,
    s: &mut Scratch,
) -> i64 {
    let ip = &g.p.illustrations;
    let extract_ms = g.response_ms(api_rng, F_SCENES);
    let scenes_at = t + extract_ms * 1000;
    let call = Call {
        func: F_SCENES,
        at: scenes_at,
        tokens: words as i64 * 4 / 3 + 250,
        response_ms: extract_ms,
        story: Some(story),
        language: Some(LANGUAGES[u.lang]),
        ..Call::default()
    };
    api_call(g, out, api_rng, u.id, Some(&mut *recent), call);
    let is_recent = g.anchor - t < (ip.recent_hours * HOUR as f64) as i64;
    let statuses = if is_recent {
        &g.ill_status_recent
    } else {
        &g.ill_status
    };
    let mood = pick_str(rng, &g.texts.prompts.moods);
    let style = pick_str(rng, &g.texts.prompts.styles);
    #[rustfmt::skip]
    let c = StoryCtx { g, u, story, hero, scenes_at, k: k as usize, mood, style };
    s.scene_ids.clear();
    s.ills.clear();
    s.c.clear(); // previous completed generation id, for visual-consistency chaining
    let mut latest = scenes_at;
    for j in 0..c.k {
        let scene_id = scene_row(&c, j, rng, out, s);
        let status = super::ILL_STATUSES[statuses.sample(rng)];
        let done_at = illustration(&c, j, scene_id, status, (rng, api_rng), recent, out, s);
        latest = latest.max(done_at);
    }
    latest
}

/// The story_scenes row of scene `j` (its prompt left in `s.b`); returns its id.
fn scene_row(c: &StoryCtx, j: usize, rng: &mut Rng8, out: &mut Out, s: &mut Scratch) -> Uuid {
    let g = c.g;
    let (k, n) = (c.k, s.ends.len());
    let (s0, s1) = (j * n / k, (j + 1) * n / k);
    let (start, words_before) = if s0 == 0 { (0, 0) } else { s.ends[s0 - 1] };
    let end = s.ends[s1 - 1].0;
    let scene_id = random_uuid(rng);
    s.b.clear();
    let fill = Fill {
        hero: &c.hero.name,
        style: c.style,
        look: &c.hero.look,
        mood: c.mood,
        palette: &c.hero.palette,
    };
    g.texts.banks[0].render(pick(rng, &g.texts.prompts.scenes), &fill, rng, &mut s.b);
    let importance = if j == 0 || j + 1 == k {
        "key"
    } else if rng.random_bool(0.4) {
        "major"
    } else {
        "minor"
    };
    let w = out.t(Table::StoryScenes);
    w.row(10);
    w.uuid(&scene_id);
    w.uuid(c.story);
    w.int4(j as i32 + 1);
    w.text(s.content[start..end].trim());
    w.text(&s.b);
    if rng.random_bool(0.9) {
        w.text_with(|b| {
            b.extend_from_slice(s.b.as_bytes());
            b.extend_from_slice(g.texts.prompts.sanitize_suffix.as_bytes());
        });
    } else {
        w.null();
    }
    // Seconds into the narration, one decimal.
    w.numeric(
        (words_before as f64 * 600.0 / g.p.stories.words_per_minute).round() as i64,
        1,
    );
    w.text(pick_str(rng, &EMOTIONS));
    w.text(importance);
    w.timestamptz(c.scenes_at);
    s.scene_ids.push(scene_id);
    scene_id
}

/// The illustration of scene `j` with the given status: its generate-illustration call (unless
/// pending or processing) and its row. Returns when it was last worked on.
#[allow(clippy::too_many_arguments)]
fn illustration(
    c: &StoryCtx,
    j: usize,
    scene_id: Uuid,
    status: &'static str,
    (rng, api_rng): (&mut Rng8, &mut Rng8),
    recent: &mut Vec<(u8, i64)>,
    out: &mut Out,
    s: &mut Scratch,
) -> i64 {
    let g = c.g;
    let ill_id = random_uuid(rng);
    let created = c.scenes_at + j as i64 * SECOND;
    let (retries, done_at) = match status {
        "pending" => (0, created),
        "processing" => (0, created + rng.random_range(SECOND..MINUTE)),
        "completed" => (
            if rng.random_bool(g.p.illustrations.completed_after_retry_share) {
                rng.random_range(1..=2)
            } else {
                0
            },
            0,
        ),
        "failed" => (rng.random_range(3..=5), 0),
        _ => (rng.random_range(1..=4), 0),
    };
    let done_at = if done_at > 0 {
        done_at
    } else {
        let at = (created + g.response_ms(api_rng, F_ILLUSTRATION) * 1000 * (1 + retries as i64))
            .min(g.anchor - SECOND);
        let call = Call {
            func: F_ILLUSTRATION,
            at,
            tokens: 70 + (s.b.len() / 6) as i64,
            story: Some(c.story),
            scene: Some(j as u32 + 1),
            ..Call::default()
        };
        let request = api_call(g, out, api_rng, c.u.id, Some(&mut *recent), call);
        if status == "completed" {
            s.a.clear();
            s.a.push_str("gen_");
            push_hex(&mut s.a, &request);
        }
        at
    };
    let row = IllRow {
        id: ill_id,
        scene_id,
        status,
        retries,
        created,
        done_at,
    };
    illustration_row(c, j, &row, rng, out.t(Table::StoryIllustrations), s);
    let completed = status == "completed";
    if completed {
        std::mem::swap(&mut s.a, &mut s.c);
    }
    s.ills.push((ill_id, done_at, completed));
    done_at
}

/// An illustration's figures, for its row.
struct IllRow {
    id: Uuid,
    scene_id: Uuid,
    status: &'static str,
    retries: i32,
    created: i64,
    done_at: i64,
}

/// The story_illustrations row (14 columns); a completed one has its files, its generation
/// id (`s.a`) and the previous one's (`s.c`).
fn illustration_row(
    c: &StoryCtx,
    j: usize,
    r: &IllRow,
    rng: &mut Rng8,
    w: &mut CopyWriter,
    s: &Scratch,
) {
    let g = c.g;
    let story = c.story;
    w.row(14);
    w.uuid(&r.id);
    w.uuid(&r.scene_id);
    w.uuid(story);
    if r.status == "completed" {
        let base = |b: &mut Vec<u8>| {
            b.extend_from_slice(STORAGE.as_bytes());
            b.extend_from_slice(b"/story-illustrations/");
            b.extend_from_slice(story.simple().encode_lower(&mut [0u8; 32]).as_bytes());
            b.extend_from_slice(format!("/scene-{}", j + 1).as_bytes());
        };
        w.text_with(|b| {
            base(b);
            b.extend_from_slice(b".png");
        });
        w.text_with(|b| {
            base(b);
            b.extend_from_slice(b"_thumb.jpg");
        });
        w.text(&s.a);
        w.opt_text((!s.c.is_empty()).then_some(s.c.as_str()));
        w.text_with(|b| {
            b.extend_from_slice(pick_str(rng, &g.texts.prompts.revised_prefix).as_bytes());
            b.push(b' ');
            b.extend_from_slice(s.b.as_bytes());
        });
    } else {
        for _ in 0..5 {
            w.null();
        }
    }
    w.text(r.status);
    if matches!(r.status, "failed" | "retrying") {
        w.text(pick_str(rng, &g.texts.system.illustration_errors));
    } else {
        w.null();
    }
    w.int4(r.retries);
    generation_json(w, r, j);
    w.timestamptz(r.created);
    w.timestamptz(r.done_at);
}

/// The illustration's `generation_metadata` jsonb, by status.
fn generation_json(w: &mut CopyWriter, r: &IllRow, j: usize) {
    let (created, done_at, retries) = (r.created, r.done_at, r.retries);
    match r.status {
        "pending" => w.null(),
        "processing" => w.jsonb_with(|b| {
            Obj::new(b)
                .str("model", "dall-e-3")
                .str("size", "1024x1024")
                .raw("started_at", |b| push_timestamp(b, created))
                .end()
        }),
        "completed" => w.jsonb_with(|b| {
            Obj::new(b)
                .str("model", "dall-e-3")
                .str("size", "1024x1024")
                .str("quality", "standard")
                .str("style", "vivid")
                .int("processing_time_ms", (done_at - created) / 1000)
                .int("scene_number", j as i64 + 1)
                .end()
        }),
        _ => w.jsonb_with(|b| {
            Obj::new(b)
                .str("model", "dall-e-3")
                .int("attempts", retries as i64)
                .raw("last_error_at", |b| push_timestamp(b, done_at))
                .end()
        }),
    }
}
