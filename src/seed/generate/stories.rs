//! stories, story_scenes, story_illustrations and play_events, with the API calls that
//! produced them (generate-story, extract-scenes, generate-illustration, generate-audio).

use super::heroes::{event_category, EventPlan, STORAGE};
use super::json::Obj;
use super::moderation;
use super::usage::{api_call, Call, F_AUDIO, F_STORY};
use super::users::{StoryRef, UserCtx};
use super::{
    pick_str, random_uuid, stream_rng, Generator, Out, Rng8, Scratch, Stream, Table, DAY, MINUTE,
    SECOND,
};
use crate::seed::profile::LANGUAGES;
use rand::RngExt;
use rand_distr::Distribution;

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

pub(crate) fn write(
    g: &Generator,
    u: &mut UserCtx,
    events: &mut [EventPlan],
    out: &mut Out,
    s: &mut Scratch,
) {
    let p = &g.p;
    let sp = &p.stories;
    let mut rng = stream_rng(g.seed(), u.index, Stream::Stories);
    let mut scene_rng = stream_rng(g.seed(), u.index, Stream::Scenes);
    let mut play_rng = stream_rng(g.seed(), u.index, Stream::Plays);
    let mut api_rng = stream_rng(g.seed(), u.index, Stream::Api);
    let mut flag_rng = stream_rng(g.seed(), u.index, Stream::Flags);
    let bank = &g.texts.banks[u.lang];
    let lang = LANGUAGES[u.lang];
    let times = std::mem::take(&mut u.story_times);
    for &t in &times {
        let id = random_uuid(&mut rng);
        // A hero that existed then (the first one always did); a few stories lost theirs.
        let hero_idx = if rng.random_bool(sp.no_hero_share) {
            None
        } else {
            let n = u.heroes.iter().filter(|h| h.created <= t).count().max(1);
            let k = rng.random_range(0..n);
            u.heroes
                .iter()
                .enumerate()
                .filter(|(_, h)| h.created <= t)
                .nth(k)
                .map(|(i, _)| i)
                .or(Some(0))
        };
        let hero = &u.heroes[hero_idx.unwrap_or(0)];
        let eligible = events.iter().filter(|e| e.created < t).count();
        let event = if eligible > 0 && rng.random_bool(sp.custom_event_share) {
            let k = rng.random_range(0..eligible);
            events
                .iter()
                .enumerate()
                .filter(|(_, e)| e.created < t)
                .nth(k)
                .map(|(i, _)| i)
        } else {
            None
        };

        let target = rng.random_range(sp.words_min..=sp.words_max);
        let words = bank.story(&hero.name, target, &mut rng, &mut s.content, &mut s.ends);
        s.a.clear();
        bank.title(&hero.name, &mut rng, &mut s.a);
        let audio = rng.random_bool(sp.audio_share);
        let voice = pick_str(&mut rng, &VOICES);
        let estimated = (words as f64 * 60.0 * SECOND as f64 / sp.words_per_minute) as i64;
        let audio_len = (estimated as f64 * rng.random_range(0.92..1.08)) as i64;

        // The story row is saved when generate-story returns.
        let story_ms = g.response_ms(&mut api_rng, F_STORY);
        let story_tokens = words as i64 * 4 / 3 + 450 + rng.random_range(0..200);
        let request = api_call(
            g,
            out,
            &mut api_rng,
            &u.id,
            Some(&mut u.recent_api),
            Call {
                func: F_STORY,
                at: t,
                tokens: story_tokens,
                response_ms: story_ms,
                succeeded: true,
                story: Some(&id),
                language: Some(lang),
                ..Call::default()
            },
        );

        // Plays: favourites are played far more; none before the story or after the anchor.
        let favorite = rng.random_bool(sp.favorite_share);
        let mean = if favorite {
            p.plays.favorite_mean_per_story
        } else {
            p.plays.mean_per_story
        };
        let cap = 1 + (p.plays.max_per_day * (g.anchor - t) as f64 / DAY as f64) as u64;
        let plays = geometric(&mut play_rng, mean).min(cap);
        let play_len = if audio { audio_len } else { estimated };
        let mut last_played = None;
        for _ in 0..plays {
            let at = g.evening_time(&mut play_rng, t + MINUTE, g.anchor);
            last_played = last_played.max(Some(at));
            let completed = play_rng.random_bool(p.plays.completed_share);
            let secs = play_len / SECOND;
            let w = out.t(Table::PlayEvents);
            w.row(6);
            w.uuid(&random_uuid(&mut play_rng));
            w.uuid(&id);
            w.uuid(&u.id);
            w.timestamptz(at);
            w.int4(if completed {
                secs
            } else {
                play_rng.random_range(0..secs.max(1))
            } as i32);
            w.bool(completed);
        }

        let n_scenes = rng
            .random_range(sp.scenes_min..=sp.scenes_max)
            .min(s.ends.len() as u32);
        let w = out.t(Table::Stories);
        w.row(20);
        w.uuid(&id);
        w.uuid(&u.id);
        match hero_idx {
            Some(_) => w.uuid(&hero.id),
            None => w.null(),
        }
        match event {
            Some(e) => w.uuid(&events[e].id),
            None => w.null(),
        }
        w.text(&s.a);
        w.text(&s.content);
        w.text(if event.is_some() {
            "custom"
        } else {
            "built_in"
        });
        w.jsonb_with(|b| match event {
            Some(e) => {
                let ev = &events[e];
                Obj::new(b)
                    .str("event", "custom")
                    .uuid("custom_event_id", &ev.id)
                    .str("title", &bank.events.titles[ev.title])
                    .str("category", event_category(ev))
                    .end()
            }
            None => {
                let (name, category) = BUILT_IN[rng.random_range(0..BUILT_IN.len())];
                Obj::new(b)
                    .str("event", name)
                    .str("category", category)
                    .end()
            }
        });
        if audio {
            w.text_with(|b| {
                b.extend_from_slice(STORAGE.as_bytes());
                b.extend_from_slice(b"/story-audio/");
                b.extend_from_slice(u.id.simple().encode_lower(&mut [0u8; 32]).as_bytes());
                b.push(b'/');
                b.extend_from_slice(id.simple().encode_lower(&mut [0u8; 32]).as_bytes());
                b.extend_from_slice(b".mp3");
            });
            w.interval(audio_len, 0, 0);
            w.text(voice);
        } else {
            w.null();
            w.null();
            w.null();
        }
        w.text(lang);
        w.interval(estimated, 0, 0);
        w.int4(words as i32);
        let model = if rng.random_bool(0.85) {
            "gpt-4o"
        } else {
            "gpt-4o-mini"
        };
        let temperature = [70i64, 80, 80, 90][rng.random_range(0..4)];
        let filter_changes = geometric(&mut rng, 0.4) as i64;
        let cache_hit = rng.random_bool(0.05);
        w.jsonb_with(|b| {
            Obj::new(b)
                .str("model", model)
                .fixed("temperature", temperature, 2)
                .int("tokens_used", story_tokens)
                .int("processing_time_ms", story_ms)
                .int("scene_count", n_scenes as i64)
                .int("filter_changes", filter_changes)
                .bool("cache_hit", cache_hit)
                .raw("request_id", |b| {
                    b.extend_from_slice(b"\"req_");
                    b.extend_from_slice(request.simple().encode_lower(&mut [0u8; 32]).as_bytes());
                    b.push(b'"');
                })
                .end()
        });
        w.timestamptz(t);
        w.timestamptz(last_played.unwrap_or(t).max(t));
        w.bool(favorite);
        w.int4(plays as i32);
        w.opt_timestamptz(last_played);

        if audio {
            let chars = s.content.chars().count() as i64;
            let at = t + g.response_ms(&mut api_rng, F_AUDIO) * 1000;
            api_call(
                g,
                out,
                &mut api_rng,
                &u.id,
                Some(&mut u.recent_api),
                Call {
                    func: F_AUDIO,
                    at,
                    tokens: chars,
                    story: Some(&id),
                    language: Some(lang),
                    ..Call::default()
                },
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
            &id,
            t,
            n_scenes,
            words,
            hero,
            &mut scene_rng,
            &mut api_rng,
            out,
            s,
        );
        u.last_activity = u.last_activity.max(scenes_at).max(last_played.unwrap_or(t));
        if let Some(e) = event {
            events[e].usage += 1;
            events[e].last_used = events[e].last_used.max(t);
        }
        moderation::story_flags(g, &id, t, &s.scene_ids, &s.ills, &mut flag_rng, out);
        u.stories.push(StoryRef {
            id,
            created: t,
            scenes: n_scenes,
            audio,
        });
    }
    u.story_times = times;
}
