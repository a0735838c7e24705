-- storybench index strategy "doc": exactly the document's indexes — the union of the
-- inline INDEX clauses of its CREATE TABLEs and its "Indexes Strategy" section.
-- Equal definitions appear once:
--   idx_stories_user_recent  = idx_stories_user_created (user_id, created_at DESC) -> kept as idx_stories_user_created
--   idx_cache_expiry         = idx_cache_expires (expires_at)                       -> kept as idx_cache_expires
--   idx_heroes_user_active, idx_stories_hero, idx_scenes_story, idx_illustrations_scene: listed twice, same definition
-- Different definitions are both kept:
--   idx_stories_favorite (user_id, is_favorite)  and  idx_stories_favorites (…) WHERE is_favorite = true
--   idx_events_public: the document uses this name twice, inline (is_public, category)
--   and partial (… WHERE is_public = true); the partial one is named idx_events_public_partial.
-- Not applied: idx_api_usage_2024_user (a per-partition index on a yearly partition the
-- document shows as an example; storybench partitions monthly, and parent indexes reach
-- every partition).
-- FK columns the document does not index stay unindexed here (stories.custom_event_id,
-- content_flags.reviewed_by, and play_events, which the document does not define).
-- api_usage indexes are created on the partitioned parent (they propagate to every
-- partition) and, identically, on the flat twin with a flat_ prefix.
-- The Rust code drops all non-constraint indexes of these tables before applying this.

-- heroes
CREATE INDEX idx_heroes_user_id ON public.heroes (user_id);
CREATE INDEX idx_heroes_user_active ON public.heroes (user_id, is_active);

-- stories
CREATE INDEX idx_stories_user_created ON public.stories (user_id, created_at DESC);
CREATE INDEX idx_stories_hero ON public.stories (hero_id);
CREATE INDEX idx_stories_favorite ON public.stories (user_id, is_favorite);
CREATE INDEX idx_stories_language ON public.stories (language);
CREATE INDEX idx_stories_favorites ON public.stories (user_id, is_favorite) WHERE is_favorite = true;
CREATE INDEX idx_stories_user_hero_created ON public.stories (user_id, hero_id, created_at DESC);

-- story_scenes
CREATE INDEX idx_scenes_story ON public.story_scenes (story_id);
CREATE INDEX idx_scenes_importance ON public.story_scenes (story_id, importance);

-- story_illustrations
CREATE INDEX idx_illustrations_story ON public.story_illustrations (story_id);
CREATE INDEX idx_illustrations_status ON public.story_illustrations (status);
CREATE INDEX idx_illustrations_scene ON public.story_illustrations (scene_id);

-- custom_events
CREATE INDEX idx_events_user ON public.custom_events (user_id);
CREATE INDEX idx_events_public ON public.custom_events (is_public, category);
CREATE INDEX idx_events_favorite ON public.custom_events (user_id, is_favorite);
CREATE INDEX idx_events_public_partial ON public.custom_events (is_public, category) WHERE is_public = true;

-- hero_gallery
CREATE INDEX idx_gallery_hero ON public.hero_gallery (hero_id);
CREATE INDEX idx_gallery_primary ON public.hero_gallery (hero_id, is_primary);

-- api_usage (partitioned parent)
CREATE INDEX idx_usage_user_created ON public.api_usage (user_id, created_at DESC);
CREATE INDEX idx_usage_function_created ON public.api_usage (function_name, created_at DESC);
CREATE INDEX idx_usage_status ON public.api_usage (status, created_at DESC);
CREATE INDEX idx_usage_request ON public.api_usage (request_id);
CREATE INDEX idx_usage_recent ON public.api_usage (created_at DESC);
CREATE INDEX idx_usage_user_function_time ON public.api_usage (user_id, function_name, created_at DESC);

-- api_usage (flat twin)
CREATE INDEX flat_idx_usage_user_created ON storybench_flat.api_usage (user_id, created_at DESC);
CREATE INDEX flat_idx_usage_function_created ON storybench_flat.api_usage (function_name, created_at DESC);
CREATE INDEX flat_idx_usage_status ON storybench_flat.api_usage (status, created_at DESC);
CREATE INDEX flat_idx_usage_request ON storybench_flat.api_usage (request_id);
CREATE INDEX flat_idx_usage_recent ON storybench_flat.api_usage (created_at DESC);
CREATE INDEX flat_idx_usage_user_function_time ON storybench_flat.api_usage (user_id, function_name, created_at DESC);

-- rate_limits
CREATE INDEX idx_limits_user_function ON public.rate_limits (user_id, function_name);
CREATE INDEX idx_limits_window ON public.rate_limits (window_end);

-- cache_entries
CREATE INDEX idx_cache_expires ON public.cache_entries (expires_at);
CREATE INDEX idx_cache_accessed ON public.cache_entries (last_accessed_at);

-- content_flags
CREATE INDEX idx_flags_content ON public.content_flags (content_type, content_id);
CREATE INDEX idx_flags_severity ON public.content_flags (severity, created_at DESC);
CREATE INDEX idx_flags_unreviewed ON public.content_flags (reviewed_at NULLS FIRST);
CREATE INDEX idx_flags_type_severity_time ON public.content_flags (content_type, severity, created_at DESC);
