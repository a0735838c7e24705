-- storybench index strategy "tuned": indexes chosen for the app's queries and for the
-- foreign-key actions (ON DELETE CASCADE / SET NULL / NO ACTION scan the referencing
-- table by the FK column). Each index says which query it serves.
-- Covered by constraints, so nothing here:
--   story_scenes.story_id (scenes of a story, cascade) -> story_scenes_story_id_scene_number_key
--   rate_limits lookup (user_id, function_name, window_start) -> rate_limits_user_id_function_name_window_start_key
--   stories by id (RLS EXISTS of scenes/illustrations), heroes by id -> *_pkey
-- api_usage indexes are created on the partitioned parent (they propagate to every
-- partition) and, identically, on the flat twin with a flat_ prefix.
-- The Rust code drops all non-constraint indexes of these tables before applying this.

-- heroes

-- a user's heroes (WHERE user_id = $1 AND is_active); cascade when an auth.users row is deleted
CREATE INDEX idx_heroes_user_active ON public.heroes (user_id, is_active);

-- stories

-- recent stories per user (WHERE user_id = $1 ORDER BY created_at DESC LIMIT n), hero_id/title without heap visits; cascade on user delete
CREATE INDEX idx_stories_user_recent_incl ON public.stories (user_id, created_at DESC) INCLUDE (hero_id, title);
-- a user's favourites, newest first (WHERE user_id = $1 AND is_favorite ORDER BY created_at DESC)
CREATE INDEX idx_stories_favorites_recent ON public.stories (user_id, created_at DESC) WHERE is_favorite = true;
-- a hero's stories, newest first, and the heroes-stories join; ON DELETE SET NULL when a hero is deleted
CREATE INDEX idx_stories_hero_created ON public.stories (hero_id, created_at DESC);
-- library search by title prefix (WHERE user_id = $1 AND title LIKE 'pre%'): text_pattern_ops makes the prefix
-- an index condition. Under RLS LIKE is not leakproof, so it can only be a Filter there (the RLS leakproof trap)
CREATE INDEX idx_stories_user_title_pattern ON public.stories (user_id, title text_pattern_ops);
-- library filter by generation model (WHERE user_id = $1 AND generation_metadata->>'model' = 'x'); jsonb ->> is
-- not leakproof either: under RLS this expression is never an index condition
CREATE INDEX idx_stories_user_model ON public.stories (user_id, (generation_metadata->>'model'));
-- ON DELETE SET NULL when a custom event is deleted (built-in stories have NULL here, so partial)
CREATE INDEX idx_stories_custom_event ON public.stories (custom_event_id) WHERE custom_event_id IS NOT NULL;

-- story_illustrations

-- illustrations of a story (story page); cascade when a story is deleted
CREATE INDEX idx_illustrations_story ON public.story_illustrations (story_id);
-- cascade when a scene is deleted (every story delete cascades through its scenes)
CREATE INDEX idx_illustrations_scene ON public.story_illustrations (scene_id);
-- generation worker queue: illustrations still to (re)generate, oldest first
CREATE INDEX idx_illustrations_todo ON public.story_illustrations (status, created_at)
    WHERE status IN ('pending', 'failed', 'retrying');

-- custom_events

-- a user's own events; cascade on user delete
CREATE INDEX idx_events_user ON public.custom_events (user_id);
-- browse shared events by category, newest first (WHERE is_public AND category = $1)
CREATE INDEX idx_events_public_category ON public.custom_events (category, created_at DESC) WHERE is_public = true;

-- hero_gallery

-- a hero's avatar history, newest first; cascade when a hero is deleted
CREATE INDEX idx_gallery_hero_created ON public.hero_gallery (hero_id, created_at DESC);
-- a hero's current avatar (WHERE hero_id = $1 AND is_primary); not UNIQUE: the data does not promise one per hero
CREATE INDEX idx_gallery_primary_hero ON public.hero_gallery (hero_id) WHERE is_primary;

-- api_usage (partitioned parent)

-- time-window analytics over all users (DAU, totals for the last day/week): BRIN, tiny, for append-ordered created_at
CREATE INDEX idx_usage_created_brin ON public.api_usage USING brin (created_at);
-- a user's usage history, newest first; cascade on user delete
CREATE INDEX idx_usage_user_created ON public.api_usage (user_id, created_at DESC);
-- per-function performance and cost over a period (avg/p95 response, sum cost), index-only
CREATE INDEX idx_usage_function_created_incl ON public.api_usage (function_name, created_at DESC)
    INCLUDE (response_time_ms, cost_estimate, status);

-- api_usage (flat twin: the same three)

-- time-window analytics (BRIN pays off only if rows were loaded in created_at order)
CREATE INDEX flat_idx_usage_created_brin ON storybench_flat.api_usage USING brin (created_at);
-- a user's usage history, newest first; cascade on user delete
CREATE INDEX flat_idx_usage_user_created ON storybench_flat.api_usage (user_id, created_at DESC);
-- per-function performance and cost over a period, index-only
CREATE INDEX flat_idx_usage_function_created_incl ON storybench_flat.api_usage (function_name, created_at DESC)
    INCLUDE (response_time_ms, cost_estimate, status);

-- rate_limits

-- purge of expired windows (DELETE … WHERE window_end < now())
CREATE INDEX idx_limits_window ON public.rate_limits (window_end);

-- cache_entries

-- cleanup_expired_cache() (DELETE … WHERE expires_at < now())
CREATE INDEX idx_cache_expires ON public.cache_entries (expires_at);

-- content_flags

-- moderation queue: flags not yet reviewed, oldest first
CREATE INDEX idx_flags_unreviewed_queue ON public.content_flags (created_at) WHERE reviewed_at IS NULL;
-- flags of one story/prompt/image (WHERE content_type = $1 AND content_id = $2)
CREATE INDEX idx_flags_content ON public.content_flags (content_type, content_id);
-- FK check (NO ACTION) when an auth.users row is deleted; few flags have a reviewer, so partial
CREATE INDEX idx_flags_reviewer ON public.content_flags (reviewed_by) WHERE reviewed_by IS NOT NULL;

-- play_events

-- plays of a story; cascade when a story is deleted
CREATE INDEX idx_play_events_story_id ON public.play_events (story_id);
-- a user's recently played stories (WHERE user_id = $1 ORDER BY played_at DESC); cascade on user delete
CREATE INDEX idx_play_events_user_recent ON public.play_events (user_id, played_at DESC);
