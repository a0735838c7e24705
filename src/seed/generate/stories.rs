//! stories, story_scenes, story_illustrations and play_events, with the API calls that
//! produced them (generate-story, extract-scenes, generate-illustration, generate-audio).

use super::heroes::{event_category, EventPlan, Hero, STORAGE};
use super::json::Obj;
use super::moderation;
use super::text::Bank;
use super::usage::{api_call, Call, F_AUDIO, F_STORY};
use super::users::{StoryRef, UserCtx};
use super::{
    pick_str, random_uuid, stream_rng, Generator, Out, Rng8, Scratch, Stream, Table, DAY, MINUTE,
    SECOND,
};
use crate::seed::copy_binary::CopyWriter;
use crate::seed::profile::LANGUAGES;
use rand::RngExt;
use rand_distr::Distribution;
use uuid::Uuid;

pub(crate) const EMOTIONS: [&str; 7] = [
    "joyful",
    "peaceful",
    "exciting",
    "mysterious",
    "heartwarming",
    "adventurous",
    "contemplative",
];
pub(crate) const VOICES: [&str; 6] = ["alloy", "echo", "fable", "nova", "shimmer", "coral"];
const BUILT_IN: [(&str, &str); 8] = [
    ("bedtime", "friendship"),
    ("bedtime", "fantasy"),
    ("bedtime", "nature"),
    ("bedtime", "adventure"),
    ("school_day", "friendship"),
    ("weekend_adventure", "adventure"),
    ("birthday", "fantasy"),
    ("rainy_day", "mystery"),
];

/// Geometric count with the given mean (most values small, a long tail): failures before
/// the first success with success probability 1 / (1 + mean).
fn geometric(rng: &mut Rng8, mean: f64) -> u64 {
    if mean <= 0.0 {
        return 0;
    }
    rand_distr::Geometric::new(1.0 / (1.0 + mean))
        .expect("probability in (0, 1]")
        .sample(rng)
}

/// The per-user random streams a user's stories draw from.
struct Streams {
    story: Rng8,
    scene: Rng8,
    play: Rng8,
    api: Rng8,
    flag: Rng8,
}

/// What one story drew: the figures its stories row is written from.
struct Draft {
    id: Uuid,
    at: i64,
    lang: &'static str,
    hero: Option<usize>,
    event: Option<usize>,
    words: u32,
    audio: bool,
    voice: &'static str,
    estimated: i64,
    audio_len: i64,
    story_ms: i64,
    tokens: i64,
    request: Uuid,
    favorite: bool,
    plays: u64,
    last_played: Option<i64>,
    scenes: u32,
}

pub(crate) fn write(
    g: &Generator,
    u: &mut UserCtx,
    events: &mut [EventPlan],
    out: &mut Out,
    s: &mut Scratch,
) {
    let mut r = Streams {
        story: stream_rng(g.seed(), u.index, Stream::Stories),
        scene: stream_rng(g.seed(), u.index, Stream::Scenes),
        play: stream_rng(g.seed(), u.index, Stream::Plays),
        api: stream_rng(g.seed(), u.index, Stream::Api),
        flag: stream_rng(g.seed(), u.index, Stream::Flags),
    };
    let times = std::mem::take(&mut u.story_times);
    for &t in &times {
        story(g, u, events, out, s, &mut r, t);
    }
    u.story_times = times;
}

/// One story created at `t`: its generate-story call, plays, row, audio call, scenes and
/// flags. The draws keep their order: the output depends only on the seed.
fn story(
    g: &Generator,
    u: &mut UserCtx,
    events: &mut [EventPlan],
    out: &mut Out,
    s: &mut Scratch,
    r: &mut Streams,
    t: i64,
) {
    let d = draw(g, u, events, out, s, r, t);
    let bank = &g.texts.banks[u.lang];
    let hero = &u.heroes[d.hero.unwrap_or(0)];
    story_row(
        out.t(Table::Stories),
        &mut r.story,
        (&u.id, hero),
        events,
        bank,
        s,
        &d,
    );
    if d.audio {
        audio_call(
            g,
            out,
            &mut r.api,
            (&u.id, &mut u.recent_api),
            &s.content,
            &d,
        );
    }
    let user = super::scenes::Who {
        id: &u.id,
        lang: u.lang,
    };
    let scenes_at = super::scenes::write(
        g,
        user,
        &mut u.recent_api,
        &d.id,
        t,
        d.scenes,
        d.words,
        hero,
        &mut r.scene,
        &mut r.api,
        out,
        s,
    );
    u.last_activity = u
        .last_activity
        .max(scenes_at)
        .max(d.last_played.unwrap_or(t));
    if let Some(e) = d.event {
        events[e].usage += 1;
        events[e].last_used = events[e].last_used.max(t);
    }
    moderation::story_flags(g, &d.id, t, &s.scene_ids, &s.ills, &mut r.flag, out);
    u.stories.push(StoryRef {
        id: d.id,
        created: t,
        scenes: d.scenes,
        audio: d.audio,
    });
}

/// Draws a story's figures and text (into `s`), writing its generate-story call and plays.
fn draw(
    g: &Generator,
    u: &mut UserCtx,
    events: &[EventPlan],
    out: &mut Out,
    s: &mut Scratch,
    r: &mut Streams,
    t: i64,
) -> Draft {
    let sp = &g.p.stories;
    let bank = &g.texts.banks[u.lang];
    let lang = LANGUAGES[u.lang];
    let rng = &mut r.story;
    let id = random_uuid(rng);
    let hero = pick_hero(rng, u, t, sp.no_hero_share);
    let hero_name = &u.heroes[hero.unwrap_or(0)].name;
    let event = pick_event(rng, events, t, sp.custom_event_share);

    let target = rng.random_range(sp.words_min..=sp.words_max);
    let words = bank.story(hero_name, target, rng, &mut s.content, &mut s.ends);
    s.a.clear();
    bank.title(hero_name, rng, &mut s.a);
    let audio = rng.random_bool(sp.audio_share);
    let voice = pick_str(rng, &VOICES);
    let estimated = (words as f64 * 60.0 * SECOND as f64 / sp.words_per_minute) as i64;
    let audio_len = (estimated as f64 * rng.random_range(0.92..1.08)) as i64;

    // The story row is saved when generate-story returns.
    let story_ms = g.response_ms(&mut r.api, F_STORY);
    let tokens = words as i64 * 4 / 3 + 450 + rng.random_range(0..200);
    let call = Call {
        func: F_STORY,
        at: t,
        tokens,
        response_ms: story_ms,
        succeeded: true,
        story: Some(&id),
        language: Some(lang),
        ..Call::default()
    };
    let request = api_call(g, out, &mut r.api, &u.id, Some(&mut u.recent_api), call);

    let favorite = rng.random_bool(sp.favorite_share);
    let play_len = if audio { audio_len } else { estimated };
    let (plays, last_played) =
        write_plays(g, out, &mut r.play, (&id, &u.id), t, favorite, play_len);
    let scenes = rng
        .random_range(sp.scenes_min..=sp.scenes_max)
        .min(s.ends.len() as u32);
    Draft {
        id,
        at: t,
        lang,
        hero,
        event,
        words,
        audio,
        voice,
        estimated,
        audio_len,
        story_ms,
        tokens,
        request,
        favorite,
        plays,
        last_played,
        scenes,
    }
}

/// A hero that existed at `t` (the first one always did); a few stories lost theirs.
fn pick_hero(rng: &mut Rng8, u: &UserCtx, t: i64, no_hero_share: f64) -> Option<usize> {
    if rng.random_bool(no_hero_share) {
        return None;
    }
    let n = u.heroes.iter().filter(|h| h.created <= t).count().max(1);
    let k = rng.random_range(0..n);
    u.heroes
        .iter()
        .enumerate()
        .filter(|(_, h)| h.created <= t)
        .nth(k)
        .map(|(i, _)| i)
        .or(Some(0))
}

/// One of the custom events created before `t`, for a share of the stories.
fn pick_event(rng: &mut Rng8, events: &[EventPlan], t: i64, share: f64) -> Option<usize> {
    let eligible = events.iter().filter(|e| e.created < t).count();
    if eligible == 0 || !rng.random_bool(share) {
        return None;
    }
    let k = rng.random_range(0..eligible);
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.created < t)
        .nth(k)
        .map(|(i, _)| i)
}

/// The play_events of a story created at `t`: favourites are played far more; none before
/// the story or after the anchor. Returns the count and the last play.
fn write_plays(
    g: &Generator,
    out: &mut Out,
    rng: &mut Rng8,
    (story, user): (&Uuid, &Uuid),
    t: i64,
    favorite: bool,
    play_len: i64,
) -> (u64, Option<i64>) {
    let p = &g.p.plays;
    let mean = if favorite {
        p.favorite_mean_per_story
    } else {
        p.mean_per_story
    };
    let cap = 1 + (p.max_per_day * (g.anchor - t) as f64 / DAY as f64) as u64;
    let plays = geometric(rng, mean).min(cap);
    let mut last_played = None;
    for _ in 0..plays {
        let at = g.evening_time(rng, t + MINUTE, g.anchor);
        last_played = last_played.max(Some(at));
        let completed = rng.random_bool(p.completed_share);
        let secs = play_len / SECOND;
        let w = out.t(Table::PlayEvents);
        w.row(6);
        w.uuid(&random_uuid(rng));
        w.uuid(story);
        w.uuid(user);
        w.timestamptz(at);
        w.int4(if completed {
            secs
        } else {
            rng.random_range(0..secs.max(1))
        } as i32);
        w.bool(completed);
    }
    (plays, last_played)
}

/// The stories row (20 columns).
fn story_row(
    w: &mut CopyWriter,
    rng: &mut Rng8,
    (user, hero): (&Uuid, &Hero),
    events: &[EventPlan],
    bank: &Bank,
    s: &Scratch,
    d: &Draft,
) {
    w.row(20);
    w.uuid(&d.id);
    w.uuid(user);
    match d.hero {
        Some(_) => w.uuid(&hero.id),
        None => w.null(),
    }
    match d.event {
        Some(e) => w.uuid(&events[e].id),
        None => w.null(),
    }
    w.text(&s.a);
    w.text(&s.content);
    w.text(if d.event.is_some() {
        "custom"
    } else {
        "built_in"
    });
    event_json(w, rng, d.event.map(|e| &events[e]), bank);
    if d.audio {
        w.text_with(|b| {
            b.extend_from_slice(STORAGE.as_bytes());
            b.extend_from_slice(b"/story-audio/");
            b.extend_from_slice(user.simple().encode_lower(&mut [0u8; 32]).as_bytes());
            b.push(b'/');
            b.extend_from_slice(d.id.simple().encode_lower(&mut [0u8; 32]).as_bytes());
            b.extend_from_slice(b".mp3");
        });
        w.interval(d.audio_len, 0, 0);
        w.text(d.voice);
    } else {
        w.null();
        w.null();
        w.null();
    }
    w.text(d.lang);
    w.interval(d.estimated, 0, 0);
    w.int4(d.words as i32);
    generation_json(w, rng, d);
    w.timestamptz(d.at);
    w.timestamptz(d.last_played.unwrap_or(d.at).max(d.at));
    w.bool(d.favorite);
    w.int4(d.plays as i32);
    w.opt_timestamptz(d.last_played);
}

/// The story's `event` jsonb: its custom event, else a built-in occasion.
fn event_json(w: &mut CopyWriter, rng: &mut Rng8, event: Option<&EventPlan>, bank: &Bank) {
    w.jsonb_with(|b| match event {
        Some(ev) => Obj::new(b)
            .str("event", "custom")
            .uuid("custom_event_id", &ev.id)
            .str("title", &bank.events.titles[ev.title])
            .str("category", event_category(ev))
            .end(),
        None => {
            let (name, category) = BUILT_IN[rng.random_range(0..BUILT_IN.len())];
            Obj::new(b)
                .str("event", name)
                .str("category", category)
                .end()
        }
    });
}

/// The story's `generation_metadata` jsonb: model, settings and the generate-story call.
fn generation_json(w: &mut CopyWriter, rng: &mut Rng8, d: &Draft) {
    let model = if rng.random_bool(0.85) {
        "gpt-4o"
    } else {
        "gpt-4o-mini"
    };
    let temperature = [70i64, 80, 80, 90][rng.random_range(0..4)];
    let filter_changes = geometric(rng, 0.4) as i64;
    let cache_hit = rng.random_bool(0.05);
    w.jsonb_with(|b| {
        Obj::new(b)
            .str("model", model)
            .fixed("temperature", temperature, 2)
            .int("tokens_used", d.tokens)
            .int("processing_time_ms", d.story_ms)
            .int("scene_count", d.scenes as i64)
            .int("filter_changes", filter_changes)
            .bool("cache_hit", cache_hit)
            .raw("request_id", |b| {
                b.extend_from_slice(b"\"req_");
                b.extend_from_slice(d.request.simple().encode_lower(&mut [0u8; 32]).as_bytes());
                b.push(b'"');
            })
            .end()
    });
}

/// The generate-audio call of a story with audio, one token per character.
fn audio_call(
    g: &Generator,
    out: &mut Out,
    api_rng: &mut Rng8,
    (user, recent): (&Uuid, &mut Vec<(u8, i64)>),
    content: &str,
    d: &Draft,
) {
    let chars = content.chars().count() as i64;
    let at = d.at + g.response_ms(api_rng, F_AUDIO) * 1000;
    let call = Call {
        func: F_AUDIO,
        at,
        tokens: chars,
        story: Some(&d.id),
        language: Some(d.lang),
        ..Call::default()
    };
    api_call(g, out, api_rng, user, Some(recent), call);
}
