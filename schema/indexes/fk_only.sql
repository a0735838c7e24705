-- storybench index strategy "fk_only": one btree per foreign-key column (the column
-- leading), nothing else. Baseline: what a careful schema has before any query tuning.
-- Constraint-backed indexes (keys.sql) exist in every strategy; an FK column already
-- leading one of them gets nothing extra:
--   story_scenes.story_id -> story_scenes_story_id_scene_number_key (story_id, scene_number)
-- The Rust code drops all non-constraint indexes of these tables before applying this.

CREATE INDEX idx_heroes_user_id ON public.heroes (user_id);

CREATE INDEX idx_events_user ON public.custom_events (user_id);

CREATE INDEX idx_stories_user_id ON public.stories (user_id);
CREATE INDEX idx_stories_hero ON public.stories (hero_id);
CREATE INDEX idx_stories_custom_event_id ON public.stories (custom_event_id);

CREATE INDEX idx_illustrations_scene ON public.story_illustrations (scene_id);
CREATE INDEX idx_illustrations_story ON public.story_illustrations (story_id);

CREATE INDEX idx_gallery_hero ON public.hero_gallery (hero_id);

CREATE INDEX idx_usage_user_id ON public.api_usage (user_id);
CREATE INDEX flat_idx_usage_user_id ON storybench_flat.api_usage (user_id);

CREATE INDEX idx_flags_reviewed_by ON public.content_flags (reviewed_by);

CREATE INDEX idx_play_events_story_id ON public.play_events (story_id);
CREATE INDEX idx_play_events_user_id ON public.play_events (user_id);
