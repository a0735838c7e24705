-- storybench: every foreign key of the document (plus play_events'), added after bulk
-- loading and after keys.sql (a FK needs the referenced key). Names follow PostgreSQL's
-- defaults (<table>_<col>_fkey); the flat twin's is prefixed flat_.
-- rate_limits.user_id and audit_log.user_id have no FK in the document and get none here.

ALTER TABLE public.heroes ADD CONSTRAINT heroes_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE;

ALTER TABLE public.custom_events ADD CONSTRAINT custom_events_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE;

ALTER TABLE public.stories ADD CONSTRAINT stories_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE;
ALTER TABLE public.stories ADD CONSTRAINT stories_hero_id_fkey
    FOREIGN KEY (hero_id) REFERENCES public.heroes (id) ON DELETE SET NULL;
ALTER TABLE public.stories ADD CONSTRAINT stories_custom_event_id_fkey
    FOREIGN KEY (custom_event_id) REFERENCES public.custom_events (id) ON DELETE SET NULL;

ALTER TABLE public.story_scenes ADD CONSTRAINT story_scenes_story_id_fkey
    FOREIGN KEY (story_id) REFERENCES public.stories (id) ON DELETE CASCADE;

ALTER TABLE public.story_illustrations ADD CONSTRAINT story_illustrations_scene_id_fkey
    FOREIGN KEY (scene_id) REFERENCES public.story_scenes (id) ON DELETE CASCADE;
ALTER TABLE public.story_illustrations ADD CONSTRAINT story_illustrations_story_id_fkey
    FOREIGN KEY (story_id) REFERENCES public.stories (id) ON DELETE CASCADE;

ALTER TABLE public.hero_gallery ADD CONSTRAINT hero_gallery_hero_id_fkey
    FOREIGN KEY (hero_id) REFERENCES public.heroes (id) ON DELETE CASCADE;

ALTER TABLE public.api_usage ADD CONSTRAINT api_usage_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE;
ALTER TABLE storybench_flat.api_usage ADD CONSTRAINT flat_api_usage_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE;

-- No ON DELETE in the document: NO ACTION (deleting a user who reviewed flags fails).
ALTER TABLE public.content_flags ADD CONSTRAINT content_flags_reviewed_by_fkey
    FOREIGN KEY (reviewed_by) REFERENCES auth.users (id);

ALTER TABLE public.play_events ADD CONSTRAINT play_events_story_id_fkey
    FOREIGN KEY (story_id) REFERENCES public.stories (id) ON DELETE CASCADE;
ALTER TABLE public.play_events ADD CONSTRAINT play_events_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE;
