//! heroes, hero_gallery (with their generate-avatar calls) and custom_events.

use super::json::Obj;
use super::text::{Fill, Visual};
use super::usage::{api_call, Call, F_AVATAR};
use super::users::{first_name, UserCtx};
use super::{
    pick, pick_str, push_hex, random_uuid, stream_rng, Generator, Out, Stream, Table, MINUTE,
    QUIET_BEFORE_ANCHOR, SECOND,
};
use rand::RngExt;
use uuid::Uuid;

/// The app's fixed character traits (primary and secondary always differ).
pub(crate) const TRAITS: [&str; 14] = [
    "brave",
    "kind",
    "curious",
    "funny",
    "clever",
    "creative",
    "adventurous",
    "gentle",
    "caring",
    "shy",
    "energetic",
    "thoughtful",
    "patient",
    "playful",
];
pub(crate) const STORAGE: &str = "https://storybench.supabase.co/storage/v1/object/public";
const CATEGORIES: [&str; 6] = [
    "adventure",
    "fantasy",
    "science",
    "nature",
    "friendship",
    "mystery",
];
const AGE_RANGES: [&str; 4] = ["4-6", "6-8", "8-10", "all"];
const TONES: [&str; 4] = ["calming", "exciting", "educational", "humorous"];

pub(crate) struct Hero {
    pub id: Uuid,
    pub created: i64,
    pub name: String,
    /// English description for image prompts.
    pub look: String,
    pub palette: String,
}

pub(crate) struct EventPlan {
    pub id: Uuid,
    pub created: i64,
    pub title: usize,
    pub category: usize,
    pub usage: i32,
    pub last_used: i64,
}

/// Up to `n` distinct indices below `len`.
fn distinct(rng: &mut super::Rng8, len: usize, n: usize) -> [usize; 4] {
    let mut out = [usize::MAX; 4];
    let n = n.min(len).min(4);
    let mut k = 0;
    while k < n {
        let i = rng.random_range(0..len);
        if !out[..k].contains(&i) {
            out[k] = i;
            k += 1;
        }
    }
    out
}

/// A hero's drawn appearance: the `visual_profile` fields and the prompt's look and palette.
struct Looks<'a> {
    hair_color: &'a str,
    hair_style: &'a str,
    eyes: &'a str,
    skin: &'a str,
    clothing: &'a str,
    features: Vec<&'a str>,
    colors: [&'a str; 3],
    look: String,
    palette: String,
}

/// Reused string buffers for the gallery rows.
#[derive(Default)]
struct Scratch {
    url: String,
    prompt: String,
    primary_gen: String,
    gen_id: String,
}

pub(crate) fn write(g: &Generator, u: &mut UserCtx, out: &mut Out) {
    let mut rng = stream_rng(g.seed(), u.index, Stream::Heroes);
    let mut api_rng = stream_rng(g.seed(), u.index, Stream::AvatarApi);
    let bank = &g.texts.banks[u.lang];
    let latest = g.anchor - QUIET_BEFORE_ANCHOR;
    let mut s = Scratch::default();
    // The draws below keep their order: the seed's fingerprint depends on it.
    for h in 0..u.n_heroes {
        let id = random_uuid(&mut rng);
        // The first hero comes with sign-up (before any story); later ones any time after.
        let created = if h == 0 || u.signup + 2 * MINUTE >= latest {
            u.signup + rng.random_range(10 * SECOND..60 * SECOND)
        } else {
            rng.random_range(u.signup + 2 * MINUTE..latest)
        };
        let name = first_name(g, u.lang, &mut rng).to_string();
        let primary = rng.random_range(0..TRAITS.len());
        let mut secondary = rng.random_range(0..TRAITS.len() - 1);
        if secondary >= primary {
            secondary += 1;
        }
        let looks = draw_looks(&mut rng, &g.texts.visual);
        render_prompt(g, &name, &looks, &mut rng, &mut s.prompt);
        let (last_image, primary_url) =
            write_gallery(g, u, out, (&mut rng, &mut api_rng), (&id, created), &mut s);
        u.last_activity = u.last_activity.max(last_image);

        let w = out.t(Table::Heroes);
        w.row(14);
        w.uuid(&id);
        w.uuid(&u.id);
        w.text(&name);
        w.text(TRAITS[primary]);
        w.text(TRAITS[secondary]);
        w.text(pick_str(&mut rng, &bank.hero.appearances));
        w.text(pick_str(&mut rng, &bank.hero.abilities));
        w.text(&s.prompt);
        w.text(&primary_url);
        w.text(&s.primary_gen);
        w.jsonb_with(|b| {
            Obj::new(b)
                .str("hair_color", looks.hair_color)
                .str("hair_style", looks.hair_style)
                .str("eye_color", looks.eyes)
                .str("skin_tone", looks.skin)
                .str("clothing_style", looks.clothing)
                .str_array("distinctive_features", &looks.features)
                .str_array("color_palette", &looks.colors)
                .end()
        });
        w.timestamptz(created);
        w.timestamptz(last_image);
        w.bool(rng.random_bool(g.p.heroes.active_share));
        u.heroes.push(Hero {
            id,
            created,
            name,
            look: looks.look,
            palette: looks.palette,
        });
    }
}

fn draw_looks<'a>(rng: &mut super::Rng8, v: &'a Visual) -> Looks<'a> {
    let (hair_color, hair_style) = (pick_str(rng, &v.hair_colors), pick_str(rng, &v.hair_styles));
    let (eyes, skin, clothing) = (
        pick_str(rng, &v.eye_colors),
        pick_str(rng, &v.skin_tones),
        pick_str(rng, &v.clothing_styles),
    );
    let nf = rng.random_range(1..=2);
    let f = distinct(rng, v.features.len(), nf);
    let c = distinct(rng, v.colors.len(), 3);
    let features: Vec<&str> = f[..nf].iter().map(|&i| v.features[i].as_str()).collect();
    let colors: [&str; 3] = [&v.colors[c[0]], &v.colors[c[1]], &v.colors[c[2]]];
    let look =
        format!("{hair_style} {hair_color} hair, {eyes} eyes, {skin} skin and a {clothing} outfit");
    let palette = format!("{}, {} and {}", colors[0], colors[1], colors[2]);
    Looks {
        hair_color,
        hair_style,
        eyes,
        skin,
        clothing,
        features,
        colors,
        look,
        palette,
    }
}

/// The avatar prompt (English bank, whatever the user's language).
fn render_prompt(
    g: &Generator,
    name: &str,
    looks: &Looks,
    rng: &mut super::Rng8,
    prompt: &mut String,
) {
    prompt.clear();
    let fill = Fill {
        hero: name,
        style: pick_str(rng, &g.texts.prompts.styles),
        look: &looks.look,
        palette: &looks.palette,
        mood: "",
    };
    g.texts.banks[0].render(pick(rng, &g.texts.prompts.avatars), &fill, rng, prompt);
}

/// Gallery: the first avatar right after creation, regenerations later; the latest is primary.
/// Returns the latest image's time and the primary image's URL (its generation id in
/// `s.primary_gen`).
fn write_gallery(
    g: &Generator,
    u: &mut UserCtx,
    out: &mut Out,
    (rng, api_rng): (&mut super::Rng8, &mut super::Rng8),
    (id, created): (&Uuid, i64),
    s: &mut Scratch,
) -> (i64, String) {
    let latest = g.anchor - QUIET_BEFORE_ANCHOR;
    let n_images = g.gallery_counts.sample(rng) + 1;
    let mut times = [0i64; 4];
    times[0] = created + rng.random_range(8 * SECOND..40 * SECOND);
    for t in times.iter_mut().take(n_images).skip(1) {
        *t = if created + MINUTE < latest {
            rng.random_range(created + MINUTE..latest)
        } else {
            created + MINUTE
        };
    }
    times[..n_images].sort_unstable();
    let mut primary_url = String::new();
    for (k, &t) in times[..n_images].iter().enumerate() {
        let image_id = random_uuid(rng);
        let call = api_call(
            g,
            out,
            api_rng,
            &u.id,
            Some(&mut u.recent_api),
            Call {
                func: F_AVATAR,
                at: t,
                tokens: 90,
                hero: Some(id),
                ..Call::default()
            },
        );
        s.gen_id.clear();
        s.gen_id.push_str("gen_");
        push_hex(&mut s.gen_id, &call);
        let url = &mut s.url;
        url.clear();
        url.push_str(STORAGE);
        url.push_str("/hero-avatars/");
        push_hex(url, &u.id);
        url.push('/');
        push_hex(url, &image_id);
        let is_primary = k + 1 == n_images;
        let w = out.t(Table::HeroGallery);
        w.row(8);
        w.uuid(&image_id);
        w.uuid(id);
        w.text_with(|b| b.extend_from_slice(format!("{url}.png").as_bytes()));
        w.text_with(|b| b.extend_from_slice(format!("{url}_thumb.jpg").as_bytes()));
        w.text(&s.gen_id);
        w.text(&s.prompt);
        w.bool(is_primary);
        w.timestamptz(t);
        if is_primary {
            primary_url = format!("{url}.png");
            s.primary_gen.clone_from(&s.gen_id);
        }
    }
    (times[n_images - 1], primary_url)
}

pub(crate) fn plan_events(g: &Generator, u: &UserCtx) -> Vec<EventPlan> {
    let mut rng = stream_rng(g.seed(), u.index, Stream::Events);
    let bank = &g.texts.banks[u.lang];
    let latest = g.anchor - QUIET_BEFORE_ANCHOR;
    (0..u.n_events)
        .map(|_| {
            let created = if u.signup + MINUTE < latest {
                rng.random_range(u.signup + MINUTE..latest)
            } else {
                u.signup + MINUTE
            };
            EventPlan {
                id: random_uuid(&mut rng),
                created,
                title: rng.random_range(0..bank.events.titles.len()),
                category: rng.random_range(0..CATEGORIES.len()),
                usage: 0,
                last_used: created,
            }
        })
        .collect()
}

pub(crate) fn event_category(e: &EventPlan) -> &'static str {
    CATEGORIES[e.category]
}

pub(crate) fn write_events(g: &Generator, u: &UserCtx, events: &[EventPlan], out: &mut Out) {
    let mut rng = stream_rng(g.seed(), u.index, Stream::Events);
    let bank = &g.texts.banks[u.lang];
    let ev = &g.p.custom_events;
    for e in events {
        let nk = rng.random_range(2..=4);
        let k = distinct(&mut rng, bank.events.keywords.len(), nk);
        let keywords: Vec<&str> = k[..nk.min(bank.events.keywords.len())]
            .iter()
            .map(|&i| bank.events.keywords[i].as_str())
            .collect();
        let w = out.t(Table::CustomEvents);
        w.row(15);
        w.uuid(&e.id);
        w.uuid(&u.id);
        w.text(&bank.events.titles[e.title]);
        if rng.random_bool(0.8) {
            w.text(pick_str(&mut rng, &bank.events.descriptions));
        } else {
            w.null();
        }
        w.text(pick_str(&mut rng, &bank.events.prompt_seeds));
        w.text(CATEGORIES[e.category]);
        w.text(pick_str(&mut rng, &AGE_RANGES));
        w.text(pick_str(&mut rng, &TONES));
        w.text_array(&keywords);
        if rng.random_bool(0.7) {
            w.text_with(|b| {
                b.extend_from_slice(STORAGE.as_bytes());
                b.extend_from_slice(b"/pictograms/");
                b.extend_from_slice(e.id.simple().encode_lower(&mut [0u8; 32]).as_bytes());
                b.extend_from_slice(b".png");
            });
        } else {
            w.null();
        }
        w.int4(e.usage);
        w.bool(rng.random_bool(ev.favorite_share));
        w.bool(rng.random_bool(ev.public_share));
        w.timestamptz(e.created);
        w.timestamptz(e.last_used);
    }
}
