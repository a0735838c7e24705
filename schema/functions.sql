-- storybench: the document's functions and triggers.
-- Idempotent: CREATE OR REPLACE FUNCTION; DROP TRIGGER IF EXISTS then CREATE TRIGGER.
-- Nothing is scheduled (the document's cron.schedule is not applied; see README.md).

-- ---------------------------------------------------------------- updated_at

-- As the document, with a fixed (empty) search_path: Supabase's linter flags a function
-- whose search_path the caller controls (function_search_path_mutable). NOW() is in
-- pg_catalog, which is always searched.
CREATE OR REPLACE FUNCTION public.update_updated_at_column()
RETURNS TRIGGER
SET search_path = ''
AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

-- "Apply to all tables with updated_at": heroes, stories, story_illustrations,
-- custom_events. (auth.users is not the app's table and gets no trigger.)
DROP TRIGGER IF EXISTS update_heroes_updated_at ON public.heroes;
CREATE TRIGGER update_heroes_updated_at BEFORE UPDATE ON public.heroes
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

DROP TRIGGER IF EXISTS update_stories_updated_at ON public.stories;
CREATE TRIGGER update_stories_updated_at BEFORE UPDATE ON public.stories
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

DROP TRIGGER IF EXISTS update_story_illustrations_updated_at ON public.story_illustrations;
CREATE TRIGGER update_story_illustrations_updated_at BEFORE UPDATE ON public.story_illustrations
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

DROP TRIGGER IF EXISTS update_custom_events_updated_at ON public.custom_events;
CREATE TRIGGER update_custom_events_updated_at BEFORE UPDATE ON public.custom_events
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

-- ---------------------------------------------------------------- play count

-- Body exactly as the document. SECURITY DEFINER (runs as the schema owner) because the
-- caller is an authenticated user inserting a play event: as that user the UPDATE would
-- be subject to stories' RLS and would silently update 0 rows whenever the active policy
-- set gives no UPDATE on the story (the document's own policies give stories none), and
-- play_count/last_played_at are system-maintained counters a user should not need write
-- access to. The fixed search_path (pg_temp last) is the standard guard for a definer
-- function: it stops a caller's search_path or temp table from redirecting "stories".
CREATE OR REPLACE FUNCTION public.increment_play_count()
RETURNS TRIGGER
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
BEGIN
    UPDATE stories
    SET
        play_count = play_count + 1,
        last_played_at = NOW()
    WHERE id = NEW.story_id;
    RETURN NEW;
END;
$$;

-- The document: "Trigger on play events (could be a separate play_events table)".
DROP TRIGGER IF EXISTS increment_story_play_count ON public.play_events;
CREATE TRIGGER increment_story_play_count AFTER INSERT ON public.play_events
    FOR EACH ROW EXECUTE FUNCTION public.increment_play_count();

-- ---------------------------------------------------------------- cache cleanup

-- As the document, with a fixed (empty) search_path and the table named with its schema
-- (function_search_path_mutable). Not scheduled: the Rust code (or an operator) calls it.
CREATE OR REPLACE FUNCTION public.cleanup_expired_cache()
RETURNS INTEGER
SET search_path = ''
AS $$
DECLARE
    deleted_count INTEGER;
BEGIN
    DELETE FROM public.cache_entries
    WHERE expires_at < NOW();

    GET DIAGNOSTICS deleted_count = ROW_COUNT;
    RETURN deleted_count;
END;
$$ LANGUAGE plpgsql;

-- ---------------------------------------------------------------- audit

-- The document's audit_trigger(), extended to DELETE (NEW is NULL there: the old row is
-- logged instead). SECURITY DEFINER with a fixed search_path so that whoever changes an
-- audited row can write the audit entry even though audit_log is closed to them by RLS
-- (service-only) — the audit trail must not depend on the caller's rights. auth.uid()
-- still reads the caller's JWT claims (a session setting), so user_id is the caller.
CREATE OR REPLACE FUNCTION public.audit_trigger()
RETURNS TRIGGER
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO audit_log(table_name, operation, user_id, changed_data)
        VALUES (
            TG_TABLE_NAME,
            TG_OP,
            auth.uid(),
            to_jsonb(OLD)
        );
        RETURN OLD;
    END IF;
    INSERT INTO audit_log(table_name, operation, user_id, changed_data)
    VALUES (
        TG_TABLE_NAME,
        TG_OP,
        auth.uid(),
        to_jsonb(NEW)
    );
    RETURN NEW;
END;
$$;

-- The document defines audit_trigger() but attaches it nowhere. It is attached to
-- content_flags: moderation decisions (flagging, human review, reversal) are the
-- changes an audit trail exists for, and the table is written rarely, so auditing it
-- does not distort the hot-path measurements (stories, play_events, api_usage).
DROP TRIGGER IF EXISTS audit_content_flags ON public.content_flags;
CREATE TRIGGER audit_content_flags AFTER INSERT OR UPDATE OR DELETE ON public.content_flags
    FOR EACH ROW EXECUTE FUNCTION public.audit_trigger();

-- ---------------------------------------------------------------- RLS helpers (policy set "definer")

-- Ownership helpers for the child-table policies of schema/policies/definer.sql, the way
-- Supabase's RLS guide recommends them: SECURITY DEFINER, in a schema the API does not
-- expose (PostgREST serves public only; storybench_private gets no USAGE for anon), with an
-- empty search_path so nothing the caller controls can redirect a name. They run as their
-- owner, so reading stories/heroes here does not pay those tables' own policies; auth.uid()
-- still reads the caller's claims (a transaction setting). A policy calls them in an
-- uncorrelated sub-select (`story_id IN (SELECT storybench_private.user_story_ids())`), so
-- they run once per statement, not once per child row. The schema is storybench's (created
-- here, recorded in storybench.owned_objects, dropped by `schema reset`).
CREATE SCHEMA IF NOT EXISTS storybench_private;
COMMENT ON SCHEMA storybench_private IS 'storybench: SECURITY DEFINER helpers for RLS policies (not exposed to the API)';
REVOKE ALL ON SCHEMA storybench_private FROM PUBLIC;
GRANT USAGE ON SCHEMA storybench_private TO authenticated;

-- The caller's story ids (the stories they own).
CREATE OR REPLACE FUNCTION storybench_private.user_story_ids()
RETURNS SETOF uuid
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = ''
ROWS 50
AS $$
    SELECT s.id FROM public.stories s WHERE s.user_id = auth.uid()
$$;
REVOKE ALL ON FUNCTION storybench_private.user_story_ids() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION storybench_private.user_story_ids() TO authenticated;

-- The caller's hero ids (the heroes they own).
CREATE OR REPLACE FUNCTION storybench_private.user_hero_ids()
RETURNS SETOF uuid
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = ''
ROWS 5
AS $$
    SELECT h.id FROM public.heroes h WHERE h.user_id = auth.uid()
$$;
REVOKE ALL ON FUNCTION storybench_private.user_hero_ids() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION storybench_private.user_hero_ids() TO authenticated;
