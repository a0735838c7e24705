-- storybench: the InfiniteStories tables, translated from the schema document.
-- Columns, defaults, NOT NULL and CHECK constraints only. Primary keys and UNIQUE
-- constraints (keys.sql), foreign keys (foreign_keys.sql) and indexes (indexes/*.sql)
-- are added after bulk loading, like pg_restore does. Not idempotent: run once on a
-- database that does not have these tables. Deviations: see schema/README.md.

-- ---------------------------------------------------------------- core tables

CREATE TABLE public.heroes (
    id                    uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id               uuid,
    name                  text NOT NULL,
    primary_trait         text NOT NULL,
    secondary_trait       text NOT NULL,
    appearance            text,
    special_ability       text,
    avatar_prompt         text,
    avatar_url            text,
    avatar_generation_id  text,   -- DALL-E generation ID for consistency
    visual_profile        jsonb,  -- detailed visual characteristics
    created_at            timestamptz DEFAULT now(),
    updated_at            timestamptz DEFAULT now(),
    is_active             boolean DEFAULT true,

    CONSTRAINT hero_name_length CHECK (length(name) BETWEEN 1 AND 50),
    CONSTRAINT valid_traits CHECK (primary_trait != secondary_trait)
);
COMMENT ON TABLE public.heroes IS
    'Characters a user creates for personalised story generation (owned by user_id).';

-- Created before stories: stories.custom_event_id references it (the document's
-- forward reference; the FK itself is added by foreign_keys.sql anyway).
CREATE TABLE public.custom_events (
    id             uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id        uuid,
    title          text NOT NULL,
    description    text,
    prompt_seed    text NOT NULL,
    category       text CHECK (category IN ('adventure', 'fantasy', 'science',
                                            'nature', 'friendship', 'mystery')),
    age_range      text CHECK (age_range IN ('4-6', '6-8', '8-10', 'all')),
    tone           text CHECK (tone IN ('calming', 'exciting', 'educational', 'humorous')),
    keywords       text[],
    pictogram_url  text,
    usage_count    integer DEFAULT 0 CHECK (usage_count >= 0),
    is_favorite    boolean DEFAULT false,
    is_public      boolean DEFAULT false,  -- for sharing events
    created_at     timestamptz DEFAULT now(),
    updated_at     timestamptz DEFAULT now()
);
COMMENT ON TABLE public.custom_events IS
    'User-created story templates and scenarios; is_public ones are shared with every user.';

CREATE TABLE public.stories (
    id                   uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id              uuid,
    hero_id              uuid,
    custom_event_id      uuid,
    title                text NOT NULL,
    content              text NOT NULL,
    event_type           text NOT NULL CHECK (event_type IN ('built_in', 'custom')),
    event_data           jsonb NOT NULL,
    audio_url            text,
    audio_duration       interval,
    audio_voice          text,
    language             text DEFAULT 'en' CHECK (language IN ('en', 'es', 'fr', 'de', 'it')),
    estimated_duration   interval,
    word_count           integer CHECK (word_count > 0),
    generation_metadata  jsonb,
    created_at           timestamptz DEFAULT now(),
    updated_at           timestamptz DEFAULT now(),
    is_favorite          boolean DEFAULT false,
    play_count           integer DEFAULT 0 CHECK (play_count >= 0),
    last_played_at       timestamptz
);
COMMENT ON TABLE public.stories IS
    'Generated stories (text, audio, generation metadata) for a user, optionally about a hero and a custom event.';

CREATE TABLE public.story_scenes (
    id                   uuid NOT NULL DEFAULT gen_random_uuid(),
    story_id             uuid,
    scene_number         integer NOT NULL CHECK (scene_number > 0),
    text_segment         text NOT NULL,
    illustration_prompt  text NOT NULL,
    sanitized_prompt     text,
    timestamp_seconds    decimal NOT NULL CHECK (timestamp_seconds >= 0),
    emotion              text CHECK (emotion IN ('joyful', 'peaceful', 'exciting', 'mysterious',
                                                 'heartwarming', 'adventurous', 'contemplative')),
    importance           text CHECK (importance IN ('key', 'major', 'minor')),
    created_at           timestamptz DEFAULT now()
);
COMMENT ON TABLE public.story_scenes IS
    'Scenes extracted from a story for illustration, with their audio timestamps (owned through the story).';

CREATE TABLE public.story_illustrations (
    id                      uuid NOT NULL DEFAULT gen_random_uuid(),
    scene_id                uuid,
    story_id                uuid,
    image_url               text,
    thumbnail_url           text,
    generation_id           text,  -- DALL-E generation ID
    previous_generation_id  text,  -- for visual consistency chaining
    revised_prompt          text,  -- OpenAI's revised prompt
    status                  text DEFAULT 'pending' CHECK (status IN ('pending', 'processing',
                                                                     'completed', 'failed', 'retrying')),
    error_message           text,
    retry_count             integer DEFAULT 0 CHECK (retry_count >= 0 AND retry_count <= 5),
    generation_metadata     jsonb,
    created_at              timestamptz DEFAULT now(),
    updated_at              timestamptz DEFAULT now()
);
COMMENT ON TABLE public.story_illustrations IS
    'Images generated for story scenes and the state of their generation (owned through the story).';

CREATE TABLE public.hero_gallery (
    id             uuid NOT NULL DEFAULT gen_random_uuid(),
    hero_id        uuid,
    image_url      text NOT NULL,
    thumbnail_url  text,
    generation_id  text,
    prompt_used    text,
    is_primary     boolean DEFAULT false,
    created_at     timestamptz DEFAULT now()
);
COMMENT ON TABLE public.hero_gallery IS
    'History of avatars generated for a hero; is_primary marks the current one (owned through the hero).';

-- ---------------------------------------------------------------- supporting tables

-- Range-partitioned by month on created_at; partitions are created by
-- storybench.create_api_usage_partitions() (partitions.sql). created_at is NOT NULL here
-- (the document leaves it nullable) because it is the partition key.
CREATE TABLE public.api_usage (
    id                uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id           uuid,
    function_name     text NOT NULL,
    request_id        text,
    status            text CHECK (status IN ('success', 'error', 'rate_limited')),
    response_time_ms  integer CHECK (response_time_ms >= 0),
    tokens_used       integer CHECK (tokens_used >= 0),
    cost_estimate     decimal(10, 6) CHECK (cost_estimate >= 0),
    error_message     text,
    error_code        text,
    metadata          jsonb,
    created_at        timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (created_at);
COMMENT ON TABLE public.api_usage IS
    'Every API (edge function) call, for monitoring and billing; monthly range partitions on created_at.';

CREATE TABLE public.rate_limits (
    id             uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id        uuid NOT NULL,
    function_name  text NOT NULL,
    request_count  integer DEFAULT 1 CHECK (request_count > 0),
    window_start   timestamptz NOT NULL,
    window_end     timestamptz NOT NULL,

    CONSTRAINT valid_window CHECK (window_end > window_start)
);
COMMENT ON TABLE public.rate_limits IS
    'Per-user, per-function request counters over sliding windows (written by the backend).';

CREATE TABLE public.cache_entries (
    key               text NOT NULL,
    value             jsonb NOT NULL,
    expires_at        timestamptz NOT NULL,
    created_at        timestamptz DEFAULT now(),
    access_count      integer DEFAULT 0 CHECK (access_count >= 0),
    last_accessed_at  timestamptz DEFAULT now(),
    size_bytes        integer CHECK (size_bytes > 0)
);
COMMENT ON TABLE public.cache_entries IS
    'Database-backed cache for expensive operations; expired rows are removed by cleanup_expired_cache().';

CREATE TABLE public.content_flags (
    id                uuid NOT NULL DEFAULT gen_random_uuid(),
    content_type      text CHECK (content_type IN ('story', 'prompt', 'image')),
    content_id        uuid NOT NULL,
    flag_type         text CHECK (flag_type IN ('violence', 'fear', 'inappropriate',
                                                'isolation', 'medical', 'other')),
    severity          text CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    action_taken      text CHECK (action_taken IN ('filtered', 'rejected', 'modified', 'approved')),
    original_content  text,
    modified_content  text,
    ai_confidence     decimal(3, 2) CHECK (ai_confidence >= 0 AND ai_confidence <= 1),
    created_at        timestamptz DEFAULT now(),
    reviewed_at       timestamptz,
    reviewed_by       uuid
);
COMMENT ON TABLE public.content_flags IS
    'Content moderation results (AI safety filter and human review) for stories, prompts and images.';

CREATE TABLE public.audit_log (
    id            uuid NOT NULL DEFAULT gen_random_uuid(),
    table_name    text NOT NULL,
    operation     text NOT NULL,
    user_id       uuid,
    changed_data  jsonb,
    created_at    timestamptz DEFAULT now()
);
COMMENT ON TABLE public.audit_log IS
    'Audit trail written by audit_trigger() (attached to content_flags: moderation decisions).';

-- Not in the document's DDL: the "separate play_events table" its increment_play_count()
-- comment mentions; the trigger that bumps stories.play_count fires on it.
CREATE TABLE public.play_events (
    id                uuid NOT NULL DEFAULT gen_random_uuid(),
    story_id          uuid NOT NULL,
    user_id           uuid NOT NULL,
    played_at         timestamptz NOT NULL DEFAULT now(),
    duration_seconds  integer CHECK (duration_seconds >= 0),
    completed         boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE public.play_events IS
    'storybench addition: one row per story playback; its trigger maintains stories.play_count/last_played_at.';

-- ---------------------------------------------------------------- flat api_usage twin

-- The same table, not partitioned, for the partitioned-vs-flat layout comparison.
-- Identical columns, defaults and CHECKs; keys/FKs/indexes come from the same later files.
CREATE SCHEMA IF NOT EXISTS storybench_flat;
COMMENT ON SCHEMA storybench_flat IS
    'storybench: non-partitioned twins of partitioned app tables (api_usage layout variant).';

CREATE TABLE storybench_flat.api_usage (
    id                uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id           uuid,
    function_name     text NOT NULL,
    request_id        text,
    status            text CHECK (status IN ('success', 'error', 'rate_limited')),
    response_time_ms  integer CHECK (response_time_ms >= 0),
    tokens_used       integer CHECK (tokens_used >= 0),
    cost_estimate     decimal(10, 6) CHECK (cost_estimate >= 0),
    error_message     text,
    error_code        text,
    metadata          jsonb,
    created_at        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE storybench_flat.api_usage IS
    'storybench: flat (non-partitioned) twin of public.api_usage holding the same rows.';
