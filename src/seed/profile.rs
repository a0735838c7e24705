//! Seeding profiles (`seed/<name>.toml`): volumes per scale unit and every distribution
//! parameter. The files document each key; this module reads and validates them.

mod validate;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Backend functions that must have a `[api_usage.functions."…"]` entry.
pub const FUNCTIONS: [&str; 5] = [
    "generate-story",
    "generate-audio",
    "extract-scenes",
    "generate-illustration",
    "generate-avatar",
];

/// Languages of the app (stories.language CHECK).
pub const LANGUAGES: [&str; 5] = ["en", "es", "fr", "de", "it"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Where it was read from (for error messages); not a TOML key.
    #[serde(skip)]
    pub source: String,
    pub description: String,
    pub users_per_unit: f64,
    pub users_per_chunk: u64,
    pub history_months: u32,
    pub users: Users,
    pub time: Time,
    pub heroes: Heroes,
    pub custom_events: CustomEvents,
    pub stories: Stories,
    pub illustrations: Illustrations,
    pub plays: Plays,
    pub api_usage: ApiUsage,
    pub rate_limits: RateLimits,
    pub cache: Cache,
    pub content_flags: ContentFlags,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Users {
    pub growth: f64,
    pub staff: u64,
    pub active_share: f64,
    pub email_confirmed_share: f64,
    pub language_weights: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Time {
    pub hour_weights: Vec<f64>,
    pub recent_share: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heroes {
    pub count_weights: Vec<f64>,
    pub active_share: f64,
    pub gallery_weights: Vec<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomEvents {
    pub mean_per_user: f64,
    pub max_per_user: u32,
    pub public_share: f64,
    pub favorite_share: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stories {
    pub mean_per_user: f64,
    pub sigma: f64,
    pub max_per_user: u32,
    pub max_per_day: f64,
    pub custom_event_share: f64,
    pub no_hero_share: f64,
    pub words_min: u32,
    pub words_max: u32,
    pub words_per_minute: f64,
    pub audio_share: f64,
    pub favorite_share: f64,
    pub scenes_min: u32,
    pub scenes_max: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Illustrations {
    pub recent_hours: f64,
    pub status_weights: BTreeMap<String, f64>,
    pub recent_status_weights: BTreeMap<String, f64>,
    pub completed_after_retry_share: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plays {
    pub mean_per_story: f64,
    pub favorite_mean_per_story: f64,
    pub max_per_day: f64,
    pub completed_share: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiUsage {
    pub error_share: f64,
    pub rate_limited_share: f64,
    pub monitor_interval_hours: f64,
    pub functions: BTreeMap<String, Function>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Function {
    pub median_ms: f64,
    pub sigma: f64,
    pub nano_usd_per_token: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    pub window_minutes: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    pub mean_per_user: f64,
    pub expired_share: f64,
    pub ttl_hours_max: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentFlags {
    pub story_share: f64,
    pub image_share: f64,
    pub prompt_share: f64,
    pub reviewed_share: f64,
    pub severity_weights: BTreeMap<String, f64>,
}

/// Reads a profile: a bare name means `seed/<name>.toml`, anything with a `/` or a
/// `.toml` suffix is a path.
pub fn load(name_or_path: &str) -> Result<Profile> {
    let is_path = name_or_path.contains('/') || name_or_path.ends_with(".toml");
    let (path, shown) = if is_path {
        (PathBuf::from(name_or_path), name_or_path.to_string())
    } else {
        if name_or_path.is_empty()
            || !name_or_path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            bail!(
                "invalid profile name {name_or_path:?}; available profiles: {}",
                available().join(", ")
            );
        }
        let rel = format!("seed/{name_or_path}.toml");
        (crate::paths::project_file(&rel), rel)
    };
    if !path.is_file() {
        if is_path {
            bail!("profile file {shown} not found");
        }
        bail!(
            "unknown profile {name_or_path:?}; available profiles: {}",
            available().join(", ")
        );
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {shown}"))?;
    parse(&text, &shown)
}

/// Parses and validates a profile's text; `source` names it in errors.
pub fn parse(text: &str, source: &str) -> Result<Profile> {
    let mut profile: Profile =
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
    profile.source = source.to_string();
    profile.validate()?;
    Ok(profile)
}

/// Names of the profiles in `seed/` (files that parse as a profile).
pub fn available() -> Vec<String> {
    let dir = crate::paths::project_file("seed");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter(|p| is_profile(p))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    names
}

fn is_profile(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| toml::from_str::<Profile>(&t).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_profiles_load() {
        for name in ["tiny", "default", "launch"] {
            let p = load(name).unwrap_or_else(|e| panic!("{e:#}"));
            assert_eq!(p.source, format!("seed/{name}.toml"));
        }
        let names = available();
        for name in ["tiny", "default", "launch"] {
            assert!(names.contains(&name.to_string()), "{names:?}");
        }
        assert!(!names.contains(&"copy".to_string()));
    }

    #[test]
    fn unknown_profile_lists_available() {
        let e = load("nosuch").unwrap_err().to_string();
        assert!(
            e.contains("unknown profile") && e.contains("default") && e.contains("tiny"),
            "{e}"
        );
    }

    fn default_text() -> String {
        crate::paths::read_project_file("seed/default.toml")
            .unwrap()
            .1
    }

    #[test]
    fn impossible_parameter_names_file_and_key() {
        let text = default_text().replace("sigma = 1.4", "sigma = -1");
        let e = parse(&text, "seed/default.toml").unwrap_err().to_string();
        assert_eq!(e, "seed/default.toml: key stories.sigma must be > 0");
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let text = default_text().replacen("users_per_chunk = ", "users_per_chunk = = ", 1);
        let e = parse(&text, "seed/default.toml").unwrap_err().to_string();
        assert!(
            e.starts_with("seed/default.toml: ") && e.contains("line"),
            "{e}"
        );
        let text = default_text() + "\nbogus_key = 1\n";
        let e = parse(&text, "seed/default.toml").unwrap_err().to_string();
        assert!(e.contains("bogus_key"), "{e}");
    }
}
