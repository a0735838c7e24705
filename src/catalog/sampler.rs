//! Parameter samplers: the names a catalog entry uses for its `$n` values. The values are
//! drawn from the seeded population by the measuring code; the catalog only names them.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// One sampler per name usable in a catalog entry's `params`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sampler {
    /// The subject user's uuid.
    User,
    /// uuid of one of the subject user's stories.
    StoryOfUser,
    /// uuid of one of the subject user's heroes.
    HeroOfUser,
    /// uuid of one of the subject user's story scenes.
    SceneOfUser,
    /// uuid of one of the subject user's custom events.
    EventOfUser,
    /// One of generate-story, generate-audio, extract-scenes, generate-illustration, generate-avatar.
    FunctionName,
    /// A custom_events category.
    Category,
    /// timestamptz: dataset anchor minus 24 hours.
    Since24h,
    /// timestamptz: dataset anchor minus 7 days.
    Since7d,
    /// timestamptz: dataset anchor minus 14 days.
    Since14d,
    /// timestamptz: dataset anchor minus 30 days.
    Since30d,
    /// timestamptz: dataset anchor minus 12 months.
    Since12m,
    /// timestamptz at an hour boundary within the last day before the anchor.
    HourStart,
    /// timestamptz: the dataset's clock, a moment in the hour before the anchor. Writes that
    /// the app stamps with `now()` use it, so they land in the dataset's own time (its
    /// api_usage partitions) whatever the wall-clock date of the measurement.
    Now,
    /// A short prefix of one of the user's story titles (for `LIKE 'x%'`).
    TitlePrefix,
    /// A fresh random uuid (inserts).
    NewUuid,
    /// Fresh unique text (api_usage.request_id).
    RequestId,
    /// A cache key (text).
    CacheKey,
    /// A story title (text).
    StoryTitle,
    /// Story text of realistic length.
    StoryContent,
    /// An int between 3 and 8.
    SceneCount,
}

impl Sampler {
    pub const ALL: [Sampler; 21] = [
        Sampler::User,
        Sampler::StoryOfUser,
        Sampler::HeroOfUser,
        Sampler::SceneOfUser,
        Sampler::EventOfUser,
        Sampler::FunctionName,
        Sampler::Category,
        Sampler::Since24h,
        Sampler::Since7d,
        Sampler::Since14d,
        Sampler::Since30d,
        Sampler::Since12m,
        Sampler::HourStart,
        Sampler::Now,
        Sampler::TitlePrefix,
        Sampler::NewUuid,
        Sampler::RequestId,
        Sampler::CacheKey,
        Sampler::StoryTitle,
        Sampler::StoryContent,
        Sampler::SceneCount,
    ];

    /// The name used in `queries.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Sampler::User => "user",
            Sampler::StoryOfUser => "story_of_user",
            Sampler::HeroOfUser => "hero_of_user",
            Sampler::SceneOfUser => "scene_of_user",
            Sampler::EventOfUser => "event_of_user",
            Sampler::FunctionName => "function_name",
            Sampler::Category => "category",
            Sampler::Since24h => "since_24h",
            Sampler::Since7d => "since_7d",
            Sampler::Since14d => "since_14d",
            Sampler::Since30d => "since_30d",
            Sampler::Since12m => "since_12m",
            Sampler::HourStart => "hour_start",
            Sampler::Now => "now",
            Sampler::TitlePrefix => "title_prefix",
            Sampler::NewUuid => "new_uuid",
            Sampler::RequestId => "request_id",
            Sampler::CacheKey => "cache_key",
            Sampler::StoryTitle => "story_title",
            Sampler::StoryContent => "story_content",
            Sampler::SceneCount => "scene_count",
        }
    }

    /// Every valid name, comma-separated (for error messages).
    pub fn valid_names() -> String {
        Sampler::ALL
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Sampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Sampler {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Sampler::ALL
            .iter()
            .copied()
            .find(|x| x.name() == s)
            .ok_or_else(|| {
                anyhow::anyhow!("unknown sampler `{s}` (valid: {})", Sampler::valid_names())
            })
    }
}

impl Serialize for Sampler {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}
