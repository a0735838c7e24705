//! api_usage (one row per backend call, plus a monitoring account's health checks),
//! rate_limits (windows over each user's calls of the last day) and cache_entries.

use super::json::Obj;
use super::users::UserCtx;
use super::{
    pick, pick_str, push_hex, random_uuid, stream_rng, Generator, Out, Rng8, Scratch, Stream,
    Table, DAY, HOUR, MINUTE, SECOND,
};
use rand::RngExt;
use uuid::Uuid;

/// Indices into `profile::FUNCTIONS`.
pub(crate) const F_STORY: usize = 0;
pub(crate) const F_AUDIO: usize = 1;
pub(crate) const F_SCENES: usize = 2;
pub(crate) const F_ILLUSTRATION: usize = 3;
pub(crate) const F_AVATAR: usize = 4;

/// One backend call to record.
#[derive(Default)]
pub(crate) struct Call<'a> {
    pub func: usize,
    /// When the call finished (the row's created_at).
    pub at: i64,
    /// Tokens (characters for audio) a successful call consumes.
    pub tokens: i64,
    /// Response time if the caller already drew it (0: draw one).
    pub response_ms: i64,
    /// The call produced something that exists (a story): it cannot have failed.
    pub succeeded: bool,
    pub story: Option<&'a Uuid>,
    pub hero: Option<&'a Uuid>,
    pub scene: Option<u32>,
    pub language: Option<&'a str>,
    pub monitor: bool,
}

/// Writes one api_usage row and returns its id (request_id is derived from it, so it is
/// unique). Calls of the last 24 hours are remembered in `recent` for rate_limits.
pub(crate) fn api_call(
    g: &Generator,
    out: &mut Out,
    rng: &mut Rng8,
    user: &Uuid,
    recent: Option<&mut Vec<(u8, i64)>>,
    c: Call,
) -> Uuid {
    let id = random_uuid(rng);
    let at = c.at.min(g.anchor - SECOND);
    let a = &g.p.api_usage;
    let x: f64 = rng.random();
    let status = if c.succeeded || x >= a.error_share + a.rate_limited_share {
        "success"
    } else if x < a.error_share {
        "error"
    } else {
        "rate_limited"
    };
    let response_ms = match status {
        "rate_limited" => rng.random_range(2..40),
        _ if c.response_ms > 0 => c.response_ms,
        _ => g.response_ms(rng, c.func),
    };
    let tokens = if status == "success" {
        c.tokens.max(1)
    } else {
        0
    };
    // cost = tokens × price; nano-dollars → micro-dollars (numeric(10,6) holds dollars).
    let cost_micro =
        (tokens as u128 * g.functions[c.func].nano_usd_per_token as u128 / 1000) as i64;
    let w = out.t(Table::ApiUsage);
    w.row(12);
    w.uuid(&id);
    w.uuid(user);
    w.text(g.functions[c.func].name);
    w.text_with(|b| {
        b.extend_from_slice(b"req_");
        b.extend_from_slice(id.simple().encode_lower(&mut [0u8; 32]).as_bytes());
    });
    w.text(status);
    w.int4(response_ms as i32);
    w.int4(tokens as i32);
    w.numeric(cost_micro, 6);
    match status {
        "error" => {
            let (code, message) = pick(rng, &g.texts.system.api_errors);
            w.text(message);
            w.text(code);
        }
        "rate_limited" => {
            w.text("Rate limit exceeded, retry later");
            w.text("RATE_LIMIT_EXCEEDED");
        }
        _ => {
            w.null();
            w.null();
        }
    }
    w.jsonb_with(|b| {
        let mut o = Obj::new(b);
        o.str("source", if c.monitor { "health_check" } else { "app" });
        if let Some(s) = c.story {
            o.uuid("story_id", s);
        }
        if let Some(h) = c.hero {
            o.uuid("hero_id", h);
        }
        if let Some(n) = c.scene {
            o.int("scene_number", n as i64);
        }
        if let Some(l) = c.language {
            o.str("language", l);
        }
        o.str("model", MODELS[c.func]);
        o.end()
    });
    w.timestamptz(at);
    if let Some(recent) = recent {
        if at >= g.anchor - DAY {
            recent.push((c.func as u8, at));
        }
    }
    id
}

const MODELS: [&str; 5] = ["gpt-4o", "tts-1", "gpt-4o-mini", "dall-e-3", "dall-e-3"];

/// The monitoring account (user 0) calls one function every `monitor_interval_hours`
/// over the whole window, so every month and the last day have rows at any scale.
pub(crate) fn monitor(g: &Generator, out: &mut Out) {
    let mut rng = stream_rng(g.seed(), 0, Stream::Monitor);
    let user = super::user_id(g.seed(), 0);
    let step = (g.p.api_usage.monitor_interval_hours * HOUR as f64) as i64;
    let mut t = g.anchor - 30 * MINUTE;
    let mut k = 0usize;
    while t > g.start + MINUTE {
        let func = k % g.functions.len();
        api_call(
            g,
            out,
            &mut rng,
            &user,
            None,
            Call {
                func,
                at: t,
                tokens: 20,
                monitor: true,
                ..Call::default()
            },
        );
        t -= step;
        k += 1;
    }
}

/// One window per (function, window start) the user called in the last day; the count is
/// the number of calls in it, so windows are unique and consistent with api_usage.
pub(crate) fn rate_limits(g: &Generator, u: &mut UserCtx, out: &mut Out) {
    if u.recent_api.is_empty() {
        return;
    }
    let mut rng = stream_rng(g.seed(), u.index, Stream::Cache);
    let window = g.p.rate_limits.window_minutes as i64 * MINUTE;
    let mut calls: Vec<(u8, i64)> = u
        .recent_api
        .iter()
        .map(|&(f, t)| (f, t.div_euclid(window) * window))
        .collect();
    calls.sort_unstable();
    let mut i = 0;
    while i < calls.len() {
        let key = calls[i];
        let n = calls[i..].iter().take_while(|c| **c == key).count();
        let w = out.t(Table::RateLimits);
        w.row(6);
        w.uuid(&random_uuid(&mut rng));
        w.uuid(&u.id);
        w.text(g.functions[key.0 as usize].name);
        w.int4(n as i32);
        w.timestamptz(key.1);
        w.timestamptz(key.1 + window);
        i += n;
    }
}

/// A few cache entries per user (stories' scene lists, TTS results, avatars, usage
/// counters), a share of them expired. Keys embed the object's uuid, so they are unique.
pub(crate) fn cache(g: &Generator, u: &UserCtx, out: &mut Out, s: &mut Scratch) {
    let mut rng = stream_rng(g.seed(), u.index, Stream::Cache);
    let c = &g.p.cache;
    let n = if c.mean_per_user > 0.0 {
        let x: f64 = rand_distr::Distribution::sample(
            &rand_distr::Poisson::new(c.mean_per_user).expect("mean > 0"),
            &mut rng,
        );
        x as usize
    } else {
        0
    };
    let mut used: Vec<(u8, usize)> = Vec::with_capacity(n);
    // The draws keep their order (object, times, value): the seed's fingerprint depends on it.
    for _ in 0..n {
        let Some((kind, obj)) = uncached_object(&mut rng, u, &used) else {
            continue;
        };
        used.push((kind, obj));
        let t = entry_times(g, u, &mut rng, (kind, obj));
        s.a.clear();
        let mut value = Vec::with_capacity(256);
        entry_value(&mut rng, u, (kind, obj), &mut s.a, &mut value);
        let w = out.t(Table::CacheEntries);
        w.row(7);
        w.text(&s.a);
        w.jsonb_with(|b| b.extend_from_slice(&value));
        w.timestamptz(t.expires);
        w.timestamptz(t.created);
        w.int4(t.accessed);
        w.timestamptz(t.last);
        w.int4(value.len() as i32);
    }
}

/// An object not cached yet (kind, object index); gives up after a few tries.
fn uncached_object(rng: &mut Rng8, u: &UserCtx, used: &[(u8, usize)]) -> Option<(u8, usize)> {
    (0..6).find_map(|_| {
        let kind = rng.random_range(0..4u8);
        let len = match kind {
            0 | 1 => u.stories.len(),
            2 => u.heroes.len(),
            _ => 1,
        };
        let pair = (
            kind,
            if len == 0 {
                return None;
            } else {
                rng.random_range(0..len)
            },
        );
        (!used.contains(&pair)).then_some(pair)
    })
}

struct EntryTimes {
    created: i64,
    expires: i64,
    accessed: i32,
    last: i64,
}

/// When an entry was made, expires (a share already expired) and was last read.
fn entry_times(g: &Generator, u: &UserCtx, rng: &mut Rng8, (kind, obj): (u8, usize)) -> EntryTimes {
    let c = &g.p.cache;
    let lo = u.signup + MINUTE;
    let since = match kind {
        0 | 1 => u.stories[obj].created,
        2 => u.heroes[obj].created,
        _ => lo,
    }
    .max(lo);
    let ttl = rng.random_range(HOUR..=(c.ttl_hours_max * HOUR as f64) as i64);
    let span = g.anchor - since;
    let (created, expires) = if rng.random_bool(c.expired_share) && span > 3 * MINUTE {
        let expires = rng.random_range(since + 2 * MINUTE..g.anchor);
        (
            rng.random_range((expires - ttl).max(since)..expires - MINUTE),
            expires,
        )
    } else {
        let created =
            rng.random_range(since.max(g.anchor - ttl + MINUTE).min(g.anchor - MINUTE)..g.anchor);
        (created, (created + ttl).max(g.anchor + MINUTE))
    };
    let accessed = rng.random_range(0..12i32);
    let last = if accessed == 0 {
        created
    } else {
        rng.random_range(created..expires.min(g.anchor))
    };
    EntryTimes {
        created,
        expires,
        accessed,
        last,
    }
}

/// The entry's key (into `key`) and JSON value (into `value`) for the cached object.
fn entry_value(
    rng: &mut Rng8,
    u: &UserCtx,
    (kind, obj): (u8, usize),
    key: &mut String,
    value: &mut Vec<u8>,
) {
    match kind {
        0 => {
            let st = &u.stories[obj];
            key.push_str("scenes:");
            push_hex(key, &st.id);
            let mut o = Obj::new(value);
            o.uuid("story_id", &st.id)
                .int("scene_count", st.scenes as i64);
            o.raw("emotions", |b| {
                b.push(b'[');
                for i in 0..st.scenes {
                    if i > 0 {
                        b.push(b',');
                    }
                    super::json::string(b, pick_str(rng, &super::stories::EMOTIONS));
                }
                b.push(b']');
            });
            o.end();
        }
        1 => {
            let st = &u.stories[obj];
            key.push_str("tts:");
            push_hex(key, &st.id);
            let mut o = Obj::new(value);
            o.uuid("story_id", &st.id)
                .bool("audio_ready", st.audio)
                .str("voice", pick_str(rng, &super::stories::VOICES));
            o.int("duration_ms", rng.random_range(120_000..420_000))
                .end();
        }
        2 => {
            let h = &u.heroes[obj];
            key.push_str("avatar:");
            push_hex(key, &h.id);
            Obj::new(value)
                .uuid("hero_id", &h.id)
                .str("name", &h.name)
                .str("look", &h.look)
                .end();
        }
        _ => {
            key.push_str("usage:");
            push_hex(key, &u.id);
            Obj::new(value)
                .uuid("user_id", &u.id)
                .int("requests_today", rng.random_range(1..60))
                .int("stories_total", u.stories.len() as i64)
                .end();
        }
    }
}
