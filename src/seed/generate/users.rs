//! auth.users, and each user's plan: sign-up time (growth over the window), language,
//! activity, and how many heroes, events and stories they have and when.

use super::heroes::Hero;
use super::json::Obj;
use super::text::push_ascii_slug;
use super::{
    stream_rng, Generator, Out, Rng8, Scratch, Stream, Table, DAY, HOUR, MINUTE,
    QUIET_BEFORE_ANCHOR, SECOND,
};
use fake::faker::name::raw::{FirstName, LastName};
use fake::locales::{DE_DE, EN, FR_FR, IT_IT};
use fake::Fake;
use rand::RngExt;
use rand_distr::{Distribution, Poisson};
use uuid::Uuid;

/// A fixed bcrypt-shaped hash: the same for every user (nobody signs in with it).
const PASSWORD_HASH: &str = "$2a$10$PzJ3mC8rV5x2kQe7sYtNfOa0u9bW1hD4gL6nR2cX8vZ5yT3qE7iKm";

/// Everything generated for one user that later tables depend on.
pub(crate) struct UserCtx {
    pub index: u64,
    pub id: Uuid,
    pub signup: i64,
    pub lang: usize,
    pub active: bool,
    pub n_heroes: usize,
    pub n_events: usize,
    /// Creation times of the user's stories, ascending.
    pub story_times: Vec<i64>,
    pub heroes: Vec<Hero>,
    pub stories: Vec<StoryRef>,
    /// (function, created_at) of API calls in the last 24 hours, for rate_limits.
    pub recent_api: Vec<(u8, i64)>,
    /// Latest thing the user did.
    pub last_activity: i64,
}

/// What cache entries need to know about a story.
pub(crate) struct StoryRef {
    pub id: Uuid,
    pub created: i64,
    pub scenes: u32,
    pub audio: bool,
}

pub(crate) fn plan(g: &Generator, index: u64) -> UserCtx {
    let p = &g.p;
    let mut rng = stream_rng(g.seed(), index, Stream::Plan);
    let latest = g.anchor - QUIET_BEFORE_ANCHOR - 5 * MINUTE;
    let signup = if index < p.users.staff {
        // Staff accounts (the moderators) exist from the first day.
        g.start + index as i64 * HOUR + rng.random_range(0..HOUR)
    } else {
        // Density ∝ exp(growth · t/T): inverse CDF of the truncated exponential.
        let u: f64 = rng.random();
        let gr = p.users.growth;
        let frac = if gr < 1e-9 {
            u
        } else {
            (1.0 + u * (gr.exp() - 1.0)).ln() / gr
        };
        g.start + (frac * (latest - g.start) as f64) as i64
    };
    let lang = g.languages.sample(&mut rng);
    let active = rng.random_bool(p.users.active_share);
    let n_heroes = g.hero_counts.sample(&mut rng) + 1;
    let n_events = if p.custom_events.mean_per_user > 0.0 {
        let n: f64 = Poisson::new(p.custom_events.mean_per_user)
            .expect("mean > 0")
            .sample(&mut rng);
        (n as usize).min(p.custom_events.max_per_user as usize)
    } else {
        0
    };

    // Heavy-tailed activity: log-normal stories per user, capped by how long they have
    // had the app (nobody writes 200 stories on their first day).
    let z = stratified_normal(g.seed(), index, &mut rng);
    let tenure_days = (g.anchor - signup) as f64 / DAY as f64;
    let cap = (p.stories.max_per_day * tenure_days).ceil().max(1.0) as u64;
    let n = ((g.story_mu + p.stories.sigma * z).exp().round() as u64)
        .min(p.stories.max_per_user as u64)
        .min(cap);
    let lo = signup + 2 * MINUTE;
    let hi = g.anchor - QUIET_BEFORE_ANCHOR;
    let mut story_times: Vec<i64> = (0..n)
        .map(|_| {
            if active && rng.random_bool(p.time.recent_share) {
                g.evening_time(&mut rng, lo.max(g.anchor - DAY), hi)
            } else {
                g.evening_time(&mut rng, lo, hi)
            }
        })
        .collect();
    story_times.sort_unstable();
    UserCtx {
        index,
        id: super::user_id(g.seed(), index),
        signup,
        lang,
        active,
        n_heroes,
        n_events,
        story_times,
        heroes: Vec::new(),
        stories: Vec::new(),
        recent_api: Vec::new(),
        last_activity: signup,
    }
}

/// Users per block of activity strata.
const STRATA: u64 = 50;

/// A standard normal draw, stratified over blocks of 50 consecutive users: each block
/// holds exactly one user per 2 % quantile band (in a seeded random order), so even a
/// 50-user dataset has the profile's heavy tail (top 10 % ≈ half the stories) rather
/// than whatever a small sample happens to give.
fn stratified_normal(seed: u64, index: u64, rng: &mut Rng8) -> f64 {
    let mut block_rng = super::stream_rng(seed, index / STRATA, Stream::Strata);
    let mut perm: [u8; STRATA as usize] = std::array::from_fn(|i| i as u8);
    for i in (1..perm.len()).rev() {
        perm.swap(i, block_rng.random_range(0..=i));
    }
    let u = (perm[(index % STRATA) as usize] as f64 + rng.random_range(0.2..0.8)) / STRATA as f64;
    inverse_normal_cdf(u)
}

/// Acklam's rational approximation of the standard normal quantile (relative error < 1.2e-9).
#[allow(clippy::excessive_precision)] // the published coefficients, verbatim
fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383577518672690e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// A first name in the user's language: fake's locales, and es.toml for Spanish.
pub(crate) fn first_name<'a>(g: &'a Generator, lang: usize, rng: &mut Rng8) -> &'a str {
    match lang {
        1 => super::pick_str(
            rng,
            &g.texts.banks[1]
                .names
                .as_ref()
                .expect("es.toml has [names]")
                .0,
        ),
        2 => FirstName(FR_FR).fake_with_rng(rng),
        3 => FirstName(DE_DE).fake_with_rng(rng),
        4 => FirstName(IT_IT).fake_with_rng(rng),
        _ => FirstName(EN).fake_with_rng(rng),
    }
}

fn last_name<'a>(g: &'a Generator, lang: usize, rng: &mut Rng8) -> &'a str {
    match lang {
        1 => super::pick_str(
            rng,
            &g.texts.banks[1]
                .names
                .as_ref()
                .expect("es.toml has [names]")
                .1,
        ),
        2 => LastName(FR_FR).fake_with_rng(rng),
        3 => LastName(DE_DE).fake_with_rng(rng),
        4 => LastName(IT_IT).fake_with_rng(rng),
        _ => LastName(EN).fake_with_rng(rng),
    }
}

pub(crate) fn write(g: &Generator, u: &UserCtx, out: &mut Out, s: &mut Scratch) {
    let mut rng = stream_rng(g.seed(), u.index, Stream::User);
    let first = first_name(g, u.lang, &mut rng);
    let last = last_name(g, u.lang, &mut rng);
    // E-mails are unique through the index.
    s.a.clear();
    push_ascii_slug(&mut s.a, first);
    s.a.push('.');
    push_ascii_slug(&mut s.a, last);
    s.a.push('.');
    s.a.push_str(&u.index.to_string());
    s.a.push_str("@example.com");
    s.b.clear();
    s.b.push_str(first);
    s.b.push(' ');
    s.b.push_str(last);

    let confirmed = rng
        .random_bool(g.p.users.email_confirmed_share)
        .then(|| (u.signup + rng.random_range(MINUTE..2 * HOUR)).min(g.anchor - SECOND));
    let sign_in = if u.active {
        g.evening_time(&mut rng, u.signup.max(g.anchor - DAY), g.anchor - MINUTE)
    } else {
        (u.last_activity - rng.random_range(0..10 * MINUTE)).max(u.signup)
    };
    let w = out.t(Table::Users);
    w.row(11);
    w.uuid(&u.id);
    w.text("authenticated");
    w.text("authenticated");
    w.text(&s.a);
    w.text(PASSWORD_HASH);
    w.opt_timestamptz(confirmed);
    w.timestamptz(sign_in);
    w.jsonb_with(|b| b.extend_from_slice(br#"{"provider":"email","providers":["email"]}"#));
    let lang = crate::seed::profile::LANGUAGES[u.lang];
    w.jsonb_with(|b| {
        Obj::new(b)
            .str("full_name", &s.b)
            .str("preferred_language", lang)
            .end()
    });
    w.timestamptz(u.signup);
    w.timestamptz(sign_in.max(u.signup));
}

#[cfg(test)]
mod tests {
    #[test]
    fn normal_quantiles() {
        for (p, z) in [
            (0.5, 0.0),
            (0.975, 1.959964),
            (0.01, -2.326348),
            (0.9, 1.281552),
        ] {
            assert!((super::inverse_normal_cdf(p) - z).abs() < 1e-5, "{p}");
        }
    }
}
