-- storybench: row level security switched on, and Supabase-style table privileges.
-- Idempotent. The privileges are broad on purpose, as on Supabase: RLS policies
-- (schema/policies/*.sql) are what restrict anon and authenticated. service_role has
-- BYPASSRLS. Superusers and the table owner skip RLS entirely.

-- The document's list plus the tables it left out (cache_entries, audit_log) and
-- play_events, so every app table is closed unless a policy opens it.
ALTER TABLE public.heroes              ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.stories             ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.story_scenes        ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.story_illustrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.custom_events       ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.hero_gallery        ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.api_usage           ENABLE ROW LEVEL SECURITY;  -- applies to every partition accessed through it
ALTER TABLE public.rate_limits         ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.cache_entries       ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.content_flags       ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.audit_log           ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.play_events         ENABLE ROW LEVEL SECURITY;
ALTER TABLE storybench_flat.api_usage  ENABLE ROW LEVEL SECURITY;

GRANT USAGE ON SCHEMA public, storybench_flat TO anon, authenticated, service_role;

-- Supabase grants these on every table of public; the list is spelled out so that
-- storybench never changes privileges on objects that are not its own (for example
-- pg_stat_statements' view or functions, if that extension lives in public).
GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE
    public.heroes, public.stories, public.story_scenes, public.story_illustrations,
    public.custom_events, public.hero_gallery, public.api_usage, public.rate_limits,
    public.cache_entries, public.content_flags, public.audit_log, public.play_events,
    storybench_flat.api_usage
    TO anon, authenticated, service_role;

GRANT EXECUTE ON FUNCTION
    public.update_updated_at_column(), public.increment_play_count(),
    public.cleanup_expired_cache(), public.audit_trigger()
    TO anon, authenticated, service_role;

-- api_usage partitions: a partition read directly (not through the parent) is not
-- covered by the parent's policies, so close each one: RLS on with no policy, and no
-- privileges for the API user roles (they may have been granted by hand or by default
-- privileges). Partitions created by storybench.create_api_usage_partitions() already
-- have RLS on and no grants; this makes re-running the file converge either way.
DO $$
DECLARE
    part regclass;
BEGIN
    FOR part IN
        SELECT inhrelid::regclass FROM pg_catalog.pg_inherits
        WHERE inhparent = 'public.api_usage'::regclass
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', part);
        EXECUTE format('REVOKE ALL ON TABLE %s FROM anon, authenticated', part);
    END LOOP;
END
$$;
