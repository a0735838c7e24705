-- storybench: primary keys and UNIQUE constraints, added after bulk loading (like
-- pg_restore). Names follow PostgreSQL's defaults (<table>_pkey, <table>_<cols>_key);
-- the flat api_usage twin's are prefixed flat_ so plans name them unambiguously.

ALTER TABLE auth.users                 ADD CONSTRAINT users_pkey                PRIMARY KEY (id);

ALTER TABLE public.heroes              ADD CONSTRAINT heroes_pkey               PRIMARY KEY (id);
ALTER TABLE public.custom_events       ADD CONSTRAINT custom_events_pkey        PRIMARY KEY (id);
ALTER TABLE public.stories             ADD CONSTRAINT stories_pkey              PRIMARY KEY (id);
ALTER TABLE public.story_scenes        ADD CONSTRAINT story_scenes_pkey         PRIMARY KEY (id);
ALTER TABLE public.story_scenes        ADD CONSTRAINT story_scenes_story_id_scene_number_key
                                                                                UNIQUE (story_id, scene_number);
ALTER TABLE public.story_illustrations ADD CONSTRAINT story_illustrations_pkey  PRIMARY KEY (id);
ALTER TABLE public.hero_gallery        ADD CONSTRAINT hero_gallery_pkey         PRIMARY KEY (id);

-- Partitioned: PK and UNIQUE must include the partition key (created_at). The document's
-- "id PRIMARY KEY" / "request_id UNIQUE" become unique per (…, created_at); the seeder
-- generates globally unique ids and request_ids. See README.md.
ALTER TABLE public.api_usage           ADD CONSTRAINT api_usage_pkey            PRIMARY KEY (id, created_at);
ALTER TABLE public.api_usage           ADD CONSTRAINT api_usage_request_id_created_at_key
                                                                                UNIQUE (request_id, created_at);
-- Flat twin: exactly the document's keys.
ALTER TABLE storybench_flat.api_usage  ADD CONSTRAINT flat_api_usage_pkey       PRIMARY KEY (id);
ALTER TABLE storybench_flat.api_usage  ADD CONSTRAINT flat_api_usage_request_id_key
                                                                                UNIQUE (request_id);

ALTER TABLE public.rate_limits         ADD CONSTRAINT rate_limits_pkey          PRIMARY KEY (id);
ALTER TABLE public.rate_limits         ADD CONSTRAINT rate_limits_user_id_function_name_window_start_key
                                                                                UNIQUE (user_id, function_name, window_start);
ALTER TABLE public.cache_entries       ADD CONSTRAINT cache_entries_pkey        PRIMARY KEY (key);
ALTER TABLE public.content_flags       ADD CONSTRAINT content_flags_pkey        PRIMARY KEY (id);
ALTER TABLE public.audit_log           ADD CONSTRAINT audit_log_pkey            PRIMARY KEY (id);
ALTER TABLE public.play_events         ADD CONSTRAINT play_events_pkey          PRIMARY KEY (id);
