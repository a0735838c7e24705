-- storybench policy set "definer": initplan.sql with one change, for the child tables
-- (story_scenes, story_illustrations, hero_gallery): instead of an EXISTS join to the
-- parent table (which is itself under RLS), ownership comes from a SECURITY DEFINER helper
-- in the private schema storybench_private (schema/functions.sql), used the way Supabase's
-- RLS guide recommends ("use security definer functions", "minimize joins"):
--     story_id IN (SELECT storybench_private.user_story_ids())
-- The sub-select is uncorrelated, so PostgreSQL runs it once per statement (a hashed
-- SubPlan) instead of once per child row, and the helper reads stories without paying
-- stories' own policies. Everything else is identical to initplan.sql, policy names too.
-- The Rust code drops every policy on these tables before applying a set: this file
-- only creates.

-- api_usage's partitions in a schema PostgREST does not expose, as under initplan.
SELECT storybench.place_api_usage_partitions('partitions');

-- Heroes: users can only access their own heroes (document).
CREATE POLICY "Users can view own heroes" ON public.heroes
    FOR SELECT TO authenticated USING ((select auth.uid()) = user_id);
CREATE POLICY "Users can insert own heroes" ON public.heroes
    FOR INSERT TO authenticated WITH CHECK ((select auth.uid()) = user_id);
CREATE POLICY "Users can update own heroes" ON public.heroes
    FOR UPDATE TO authenticated
    USING ((select auth.uid()) = user_id)
    WITH CHECK ((select auth.uid()) = user_id);
CREATE POLICY "Users can delete own heroes" ON public.heroes
    FOR DELETE TO authenticated USING ((select auth.uid()) = user_id);

-- Stories: users can only access their own stories (document: view, insert; completed: update, delete).
CREATE POLICY "Users can view own stories" ON public.stories
    FOR SELECT TO authenticated USING ((select auth.uid()) = user_id);
CREATE POLICY "Users can insert own stories" ON public.stories
    FOR INSERT TO authenticated WITH CHECK ((select auth.uid()) = user_id);
CREATE POLICY "Users can update own stories" ON public.stories
    FOR UPDATE TO authenticated
    USING ((select auth.uid()) = user_id)
    WITH CHECK ((select auth.uid()) = user_id);
CREATE POLICY "Users can delete own stories" ON public.stories
    FOR DELETE TO authenticated USING ((select auth.uid()) = user_id);

-- Custom events: users can view public events or their own (document, as written).
CREATE POLICY "Users can view events" ON public.custom_events
    FOR SELECT TO authenticated USING ((select auth.uid()) = user_id OR is_public = true);
-- Writes one policy each, as in initplan.sql (no second permissive policy on SELECT).
CREATE POLICY "Users can insert own events" ON public.custom_events
    FOR INSERT TO authenticated WITH CHECK ((select auth.uid()) = user_id);
CREATE POLICY "Users can update own events" ON public.custom_events
    FOR UPDATE TO authenticated USING ((select auth.uid()) = user_id);
CREATE POLICY "Users can delete own events" ON public.custom_events
    FOR DELETE TO authenticated USING ((select auth.uid()) = user_id);

-- Story scenes: owned through their story (the stories the definer helper returns).
CREATE POLICY "Users can view own story scenes" ON public.story_scenes
    FOR SELECT TO authenticated USING (story_id IN (SELECT storybench_private.user_story_ids()));
CREATE POLICY "Users can insert own story scenes" ON public.story_scenes
    FOR INSERT TO authenticated WITH CHECK (story_id IN (SELECT storybench_private.user_story_ids()));
CREATE POLICY "Users can update own story scenes" ON public.story_scenes
    FOR UPDATE TO authenticated
    USING (story_id IN (SELECT storybench_private.user_story_ids()))
    WITH CHECK (story_id IN (SELECT storybench_private.user_story_ids()));
CREATE POLICY "Users can delete own story scenes" ON public.story_scenes
    FOR DELETE TO authenticated USING (story_id IN (SELECT storybench_private.user_story_ids()));

-- Story illustrations: owned through their story (definer helper).
CREATE POLICY "Users can view own story illustrations" ON public.story_illustrations
    FOR SELECT TO authenticated USING (story_id IN (SELECT storybench_private.user_story_ids()));
CREATE POLICY "Users can insert own story illustrations" ON public.story_illustrations
    FOR INSERT TO authenticated WITH CHECK (story_id IN (SELECT storybench_private.user_story_ids()));
CREATE POLICY "Users can update own story illustrations" ON public.story_illustrations
    FOR UPDATE TO authenticated
    USING (story_id IN (SELECT storybench_private.user_story_ids()))
    WITH CHECK (story_id IN (SELECT storybench_private.user_story_ids()));
CREATE POLICY "Users can delete own story illustrations" ON public.story_illustrations
    FOR DELETE TO authenticated USING (story_id IN (SELECT storybench_private.user_story_ids()));

-- Hero gallery: owned through its hero (definer helper).
CREATE POLICY "Users can view own hero gallery" ON public.hero_gallery
    FOR SELECT TO authenticated USING (hero_id IN (SELECT storybench_private.user_hero_ids()));
CREATE POLICY "Users can insert own hero gallery" ON public.hero_gallery
    FOR INSERT TO authenticated WITH CHECK (hero_id IN (SELECT storybench_private.user_hero_ids()));
CREATE POLICY "Users can update own hero gallery" ON public.hero_gallery
    FOR UPDATE TO authenticated
    USING (hero_id IN (SELECT storybench_private.user_hero_ids()))
    WITH CHECK (hero_id IN (SELECT storybench_private.user_hero_ids()));
CREATE POLICY "Users can delete own hero gallery" ON public.hero_gallery
    FOR DELETE TO authenticated USING (hero_id IN (SELECT storybench_private.user_hero_ids()));

-- API usage (partitioned parent; applies to every partition read through it): own rows.
CREATE POLICY "Users can view own api usage" ON public.api_usage
    FOR SELECT TO authenticated USING ((select auth.uid()) = user_id);
CREATE POLICY "Users can insert own api usage" ON public.api_usage
    FOR INSERT TO authenticated WITH CHECK ((select auth.uid()) = user_id);
CREATE POLICY "Users can update own api usage" ON public.api_usage
    FOR UPDATE TO authenticated
    USING ((select auth.uid()) = user_id)
    WITH CHECK ((select auth.uid()) = user_id);
CREATE POLICY "Users can delete own api usage" ON public.api_usage
    FOR DELETE TO authenticated USING ((select auth.uid()) = user_id);

-- API usage, flat twin: the same policies as public.api_usage.
CREATE POLICY "Users can view own api usage" ON storybench_flat.api_usage
    FOR SELECT TO authenticated USING ((select auth.uid()) = user_id);
CREATE POLICY "Users can insert own api usage" ON storybench_flat.api_usage
    FOR INSERT TO authenticated WITH CHECK ((select auth.uid()) = user_id);
CREATE POLICY "Users can update own api usage" ON storybench_flat.api_usage
    FOR UPDATE TO authenticated
    USING ((select auth.uid()) = user_id)
    WITH CHECK ((select auth.uid()) = user_id);
CREATE POLICY "Users can delete own api usage" ON storybench_flat.api_usage
    FOR DELETE TO authenticated USING ((select auth.uid()) = user_id);

-- Play events: own rows.
CREATE POLICY "Users can view own play events" ON public.play_events
    FOR SELECT TO authenticated USING ((select auth.uid()) = user_id);
CREATE POLICY "Users can insert own play events" ON public.play_events
    FOR INSERT TO authenticated WITH CHECK ((select auth.uid()) = user_id);
CREATE POLICY "Users can update own play events" ON public.play_events
    FOR UPDATE TO authenticated
    USING ((select auth.uid()) = user_id)
    WITH CHECK ((select auth.uid()) = user_id);
CREATE POLICY "Users can delete own play events" ON public.play_events
    FOR DELETE TO authenticated USING ((select auth.uid()) = user_id);

-- Rate limits: users may read their own counters; the backend (service role) writes them.
CREATE POLICY "Users can view own rate limits" ON public.rate_limits
    FOR SELECT TO authenticated USING ((select auth.uid()) = user_id);

-- content_flags, cache_entries, audit_log: service only (no user policy).

-- Service role: full access on every table (document: "Continue for all tables...").
-- Scoped TO service_role; the predicate is kept. (service_role has BYPASSRLS, so on
-- this setup the policy is never evaluated; it documents intent and covers a
-- service role without BYPASSRLS.)
CREATE POLICY "Service role has full access" ON public.heroes
    FOR ALL TO service_role USING ((select auth.role()) = 'service_role');
CREATE POLICY "Service role has full access" ON public.stories
    FOR ALL TO service_role USING ((select auth.role()) = 'service_role');
CREATE POLICY "Service role has full access" ON public.story_scenes
    FOR ALL TO service_role USING ((select auth.role()) = 'service_role');
CREATE POLICY "Service role has full access" ON public.story_illustrations
    FOR ALL TO service_role USING ((select auth.role()) = 'service_role');
CREATE POLICY "Service role has full access" ON public.custom_events
    FOR ALL TO service_role USING ((select auth.role()) = 'service_role');
CREATE POLICY "Service role has full access" ON public.hero_gallery
    FOR ALL TO service_role USING ((select auth.role()) = 'service_role');
CREATE POLICY "Service role has full access" ON public.api_usage
    FOR ALL TO service_role USING ((select auth.role()) = 'service_role');
CREATE POLICY "Service role has full access" ON storybench_flat.api_usage
    FOR ALL TO service_role USING ((select auth.role()) = 'service_role');
CREATE POLICY "Service role has full access" ON public.rate_limits
    FOR ALL TO service_role USING ((select auth.role()) = 'service_role');
CREATE POLICY "Service role has full access" ON public.cache_entries
    FOR ALL TO service_role USING ((select auth.role()) = 'service_role');
CREATE POLICY "Service role has full access" ON public.content_flags
    FOR ALL TO service_role USING ((select auth.role()) = 'service_role');
CREATE POLICY "Service role has full access" ON public.audit_log
    FOR ALL TO service_role USING ((select auth.role()) = 'service_role');
CREATE POLICY "Service role has full access" ON public.play_events
    FOR ALL TO service_role USING ((select auth.role()) = 'service_role');
