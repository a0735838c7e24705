//! Profile validation: impossible parameters are rejected with the file and the key.

use super::{
    ApiUsage, Cache, ContentFlags, CustomEvents, Heroes, Illustrations, Plays, Profile, RateLimits,
    Stories, Time, Users, FUNCTIONS, LANGUAGES,
};
use anyhow::{bail, Result};
use std::collections::BTreeMap;

impl Profile {
    /// Rejects impossible parameters, naming the file and the key.
    pub fn validate(&self) -> Result<()> {
        let mut v = Checker {
            source: &self.source,
        };
        v.scale(self)?;
        v.users(&self.users)?;
        v.time(&self.time)?;
        v.heroes(&self.heroes)?;
        v.custom_events(&self.custom_events)?;
        v.stories(&self.stories)?;
        v.illustrations(&self.illustrations)?;
        v.plays(&self.plays)?;
        v.api_usage(&self.api_usage)?;
        v.rate_limits(&self.rate_limits)?;
        v.cache(&self.cache)?;
        v.content_flags(&self.content_flags)
    }
}

struct Checker<'a> {
    source: &'a str,
}

impl Checker<'_> {
    /// Scale: users per unit and chunk, months of history.
    fn scale(&mut self, p: &Profile) -> Result<()> {
        self.check(
            p.users_per_unit.is_finite() && p.users_per_unit >= 1.0,
            "users_per_unit",
            "must be ≥ 1",
        )?;
        self.check(
            (1..=100_000).contains(&p.users_per_chunk),
            "users_per_chunk",
            "must be between 1 and 100000",
        )?;
        // api_usage partitions cover 13 months before the anchor month (schema::HISTORY_MONTHS).
        self.check(
            (1..=crate::schema::HISTORY_MONTHS).contains(&p.history_months),
            "history_months",
            "must be between 1 and 13",
        )?;
        Ok(())
    }

    /// `[users]`.
    fn users(&mut self, u: &Users) -> Result<()> {
        self.check(
            u.growth.is_finite() && u.growth >= 0.0 && u.growth <= 20.0,
            "users.growth",
            "must be between 0 and 20",
        )?;
        self.check(
            u.staff >= 1 && u.staff <= 10,
            "users.staff",
            "must be between 1 and 10 (at least 10 users always exist)",
        )?;
        self.share(u.active_share, "users.active_share")?;
        self.share(u.email_confirmed_share, "users.email_confirmed_share")?;
        self.weights_keyed(
            &u.language_weights,
            "users.language_weights",
            &LANGUAGES,
            false,
        )?;
        Ok(())
    }

    /// `[time]`.
    fn time(&mut self, t: &Time) -> Result<()> {
        self.check(
            t.hour_weights.len() == 24,
            "time.hour_weights",
            "must have 24 entries (UTC hours 0–23)",
        )?;
        self.weights(&t.hour_weights, "time.hour_weights")?;
        self.share(t.recent_share, "time.recent_share")?;
        Ok(())
    }

    /// `[heroes]`.
    fn heroes(&mut self, h: &Heroes) -> Result<()> {
        self.check(
            (1..=5).contains(&h.count_weights.len()),
            "heroes.count_weights",
            "must have 1 to 5 entries (weights of 1, 2, … heroes)",
        )?;
        self.weights(&h.count_weights, "heroes.count_weights")?;
        self.share(h.active_share, "heroes.active_share")?;
        self.check(
            (1..=4).contains(&h.gallery_weights.len()),
            "heroes.gallery_weights",
            "must have 1 to 4 entries (weights of 1, 2, … images)",
        )?;
        self.weights(&h.gallery_weights, "heroes.gallery_weights")?;
        Ok(())
    }

    /// `[custom_events]`.
    fn custom_events(&mut self, e: &CustomEvents) -> Result<()> {
        self.check(
            e.mean_per_user.is_finite() && e.mean_per_user >= 0.0,
            "custom_events.mean_per_user",
            "must be ≥ 0",
        )?;
        self.check(
            e.max_per_user <= 1000,
            "custom_events.max_per_user",
            "must be ≤ 1000",
        )?;
        self.share(e.public_share, "custom_events.public_share")?;
        self.share(e.favorite_share, "custom_events.favorite_share")?;
        Ok(())
    }

    /// `[stories]`.
    fn stories(&mut self, s: &Stories) -> Result<()> {
        self.check(
            s.mean_per_user.is_finite() && s.mean_per_user > 0.0,
            "stories.mean_per_user",
            "must be > 0",
        )?;
        self.check(
            s.sigma.is_finite() && s.sigma > 0.0,
            "stories.sigma",
            "must be > 0",
        )?;
        self.check(
            s.sigma <= 4.0,
            "stories.sigma",
            "must be ≤ 4 (beyond that one user owns everything)",
        )?;
        self.check(
            (1..=100_000).contains(&s.max_per_user),
            "stories.max_per_user",
            "must be between 1 and 100000",
        )?;
        self.check(
            s.max_per_day.is_finite() && s.max_per_day > 0.0,
            "stories.max_per_day",
            "must be > 0",
        )?;
        self.share(s.custom_event_share, "stories.custom_event_share")?;
        self.share(s.no_hero_share, "stories.no_hero_share")?;
        self.check(s.words_min >= 50, "stories.words_min", "must be ≥ 50")?;
        self.check(
            s.words_max >= s.words_min && s.words_max <= 20_000,
            "stories.words_max",
            "must be ≥ stories.words_min and ≤ 20000",
        )?;
        self.check(
            s.words_per_minute.is_finite() && s.words_per_minute > 0.0,
            "stories.words_per_minute",
            "must be > 0",
        )?;
        self.share(s.audio_share, "stories.audio_share")?;
        self.share(s.favorite_share, "stories.favorite_share")?;
        self.check(s.scenes_min >= 1, "stories.scenes_min", "must be ≥ 1")?;
        self.check(
            s.scenes_max >= s.scenes_min && s.scenes_max <= 20,
            "stories.scenes_max",
            "must be ≥ stories.scenes_min and ≤ 20",
        )?;
        Ok(())
    }

    /// `[illustrations]`.
    fn illustrations(&mut self, i: &Illustrations) -> Result<()> {
        self.check(
            i.recent_hours.is_finite() && i.recent_hours >= 0.0,
            "illustrations.recent_hours",
            "must be ≥ 0",
        )?;
        const STATUSES: [&str; 5] = ["pending", "processing", "completed", "failed", "retrying"];
        self.weights_keyed(
            &i.status_weights,
            "illustrations.status_weights",
            &STATUSES,
            true,
        )?;
        self.weights_keyed(
            &i.recent_status_weights,
            "illustrations.recent_status_weights",
            &STATUSES,
            true,
        )?;
        self.share(
            i.completed_after_retry_share,
            "illustrations.completed_after_retry_share",
        )?;
        Ok(())
    }

    /// `[plays]`.
    fn plays(&mut self, p: &Plays) -> Result<()> {
        self.check(
            p.mean_per_story.is_finite() && p.mean_per_story >= 0.0,
            "plays.mean_per_story",
            "must be ≥ 0",
        )?;
        self.check(
            p.favorite_mean_per_story.is_finite() && p.favorite_mean_per_story >= 0.0,
            "plays.favorite_mean_per_story",
            "must be ≥ 0",
        )?;
        self.check(
            p.max_per_day.is_finite() && p.max_per_day > 0.0,
            "plays.max_per_day",
            "must be > 0",
        )?;
        self.share(p.completed_share, "plays.completed_share")?;
        Ok(())
    }

    /// `[api_usage]`: shares, the monitoring interval and one entry per backend function.
    fn api_usage(&mut self, a: &ApiUsage) -> Result<()> {
        self.share(a.error_share, "api_usage.error_share")?;
        self.share(a.rate_limited_share, "api_usage.rate_limited_share")?;
        self.check(
            a.error_share + a.rate_limited_share <= 1.0,
            "api_usage.rate_limited_share",
            "plus api_usage.error_share must be ≤ 1",
        )?;
        // A monitoring call at least once a day keeps every month and the last 24 hours covered.
        self.check(
            a.monitor_interval_hours > 0.0 && a.monitor_interval_hours <= 23.0,
            "api_usage.monitor_interval_hours",
            "must be > 0 and ≤ 23",
        )?;
        for f in FUNCTIONS {
            let key = format!("api_usage.functions.\"{f}\"");
            let Some(func) = a.functions.get(f) else {
                return self.fail(&key, "is missing (every backend function needs an entry)");
            };
            self.check(
                func.median_ms.is_finite() && func.median_ms > 0.0,
                &format!("{key}.median_ms"),
                "must be > 0",
            )?;
            self.check(
                func.sigma.is_finite() && func.sigma >= 0.0 && func.sigma <= 3.0,
                &format!("{key}.sigma"),
                "must be between 0 and 3",
            )?;
            self.check(
                func.nano_usd_per_token <= 1_000_000,
                &format!("{key}.nano_usd_per_token"),
                "must be ≤ 1000000",
            )?;
        }
        if let Some(extra) = a
            .functions
            .keys()
            .find(|k| !FUNCTIONS.contains(&k.as_str()))
        {
            return self.fail(
                &format!("api_usage.functions.\"{extra}\""),
                &format!(
                    "is not a backend function (expected one of {})",
                    FUNCTIONS.join(", ")
                ),
            );
        }
        Ok(())
    }

    /// `[rate_limits]`.
    fn rate_limits(&mut self, r: &RateLimits) -> Result<()> {
        self.check(
            (1..=1440).contains(&r.window_minutes) && 1440u32.is_multiple_of(r.window_minutes),
            "rate_limits.window_minutes",
            "must divide 1440 (a day)",
        )?;
        Ok(())
    }

    /// `[cache]`.
    fn cache(&mut self, c: &Cache) -> Result<()> {
        self.check(
            c.mean_per_user.is_finite() && (0.0..=50.0).contains(&c.mean_per_user),
            "cache.mean_per_user",
            "must be between 0 and 50",
        )?;
        self.share(c.expired_share, "cache.expired_share")?;
        self.check(
            c.ttl_hours_max.is_finite() && c.ttl_hours_max >= 1.0,
            "cache.ttl_hours_max",
            "must be ≥ 1",
        )?;
        Ok(())
    }

    /// `[content_flags]`.
    fn content_flags(&mut self, f: &ContentFlags) -> Result<()> {
        self.share(f.story_share, "content_flags.story_share")?;
        self.share(f.image_share, "content_flags.image_share")?;
        self.share(f.prompt_share, "content_flags.prompt_share")?;
        self.share(f.reviewed_share, "content_flags.reviewed_share")?;
        self.weights_keyed(
            &f.severity_weights,
            "content_flags.severity_weights",
            &["low", "medium", "high", "critical"],
            true,
        )?;
        Ok(())
    }

    fn fail<T>(&mut self, key: &str, what: &str) -> Result<T> {
        bail!("{}: key {key} {what}", self.source)
    }

    fn check(&mut self, ok: bool, key: &str, what: &str) -> Result<()> {
        if ok {
            Ok(())
        } else {
            self.fail(key, what)
        }
    }

    fn share(&mut self, x: f64, key: &str) -> Result<()> {
        self.check(
            x.is_finite() && (0.0..=1.0).contains(&x),
            key,
            "must be a share between 0 and 1",
        )
    }

    fn weights(&mut self, w: &[f64], key: &str) -> Result<()> {
        self.check(
            w.iter().all(|x| x.is_finite() && *x >= 0.0),
            key,
            "must hold weights ≥ 0",
        )?;
        self.check(
            w.iter().sum::<f64>() > 0.0,
            key,
            "must have a positive weight",
        )
    }

    /// Weights keyed by name: only `allowed` names; `all` requires every one of them.
    fn weights_keyed(
        &mut self,
        w: &BTreeMap<String, f64>,
        key: &str,
        allowed: &[&str],
        all: bool,
    ) -> Result<()> {
        for (name, x) in w {
            if !allowed.contains(&name.as_str()) {
                return self.fail(
                    &format!("{key}.{name}"),
                    &format!("is unknown (expected one of {})", allowed.join(", ")),
                );
            }
            self.check(
                x.is_finite() && *x >= 0.0,
                &format!("{key}.{name}"),
                "must be a weight ≥ 0",
            )?;
        }
        if all {
            if let Some(missing) = allowed.iter().find(|a| !w.contains_key(**a)) {
                return self.fail(&format!("{key}.{missing}"), "is missing");
            }
        }
        self.check(
            w.values().sum::<f64>() > 0.0,
            key,
            "must have a positive weight",
        )
    }
}
