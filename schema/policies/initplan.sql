-- storybench policy set "initplan": the same rules as doc.sql, written the way Supabase's
-- RLS performance guide recommends: auth.uid() wrapped in a scalar sub-select, so it is
-- evaluated once per statement as an InitPlan ($0) and can be an index condition, and
-- every policy scoped with TO, so a user's query is not ORed with the service policy
-- (and anon is not evaluated against user policies at all).
-- The Rust code drops every policy on these tables before applying a set: this file
-- only creates. Policy names are those of doc.sql, except custom_events' write policies
-- (below).

-- api_usage's partitions in a schema PostgREST does not expose (Supabase's linter:
-- rls_enabled_no_policy; schema/README.md, deviation 25). App access goes through the parent.
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
-- The document's "manage own events" is FOR ALL, so a SELECT meets two permissive policies
-- OR-ed together (Supabase's linter: multiple_permissive_policies); "view events" already
-- covers a user's own rows, so the writes get one policy each and SELECT keeps one.
CREATE POLICY "Users can insert own events" ON public.custom_events
    FOR INSERT TO authenticated WITH CHECK ((select auth.uid()) = user_id);
CREATE POLICY "Users can update own events" ON public.custom_events
    FOR UPDATE TO authenticated USING ((select auth.uid()) = user_id);
CREATE POLICY "Users can delete own events" ON public.custom_events
    FOR DELETE TO authenticated USING ((select auth.uid()) = user_id);

-- Story scenes: owned through their story.
CREATE POLICY "Users can view own story scenes" ON public.story_scenes
    FOR SELECT TO authenticated USING (EXISTS (
        SELECT 1 FROM public.stories s
        WHERE s.id = story_scenes.story_id AND s.user_id = (select auth.uid())));
CREATE POLICY "Users can insert own story scenes" ON public.story_scenes
    FOR INSERT TO authenticated WITH CHECK (EXISTS (
        SELECT 1 FROM public.stories s
        WHERE s.id = story_scenes.story_id AND s.user_id = (select auth.uid())));
CREATE POLICY "Users can update own story scenes" ON public.story_scenes
    FOR UPDATE TO authenticated
    USING (EXISTS (
        SELECT 1 FROM public.stories s
        WHERE s.id = story_scenes.story_id AND s.user_id = (select auth.uid())))
    WITH CHECK (EXISTS (
        SELECT 1 FROM public.stories s
        WHERE s.id = story_scenes.story_id AND s.user_id = (select auth.uid())));
CREATE POLICY "Users can delete own story scenes" ON public.story_scenes
    FOR DELETE TO authenticated USING (EXISTS (
        SELECT 1 FROM public.stories s
        WHERE s.id = story_scenes.story_id AND s.user_id = (select auth.uid())));

-- Story illustrations: owned through their story.
CREATE POLICY "Users can view own story illustrations" ON public.story_illustrations
    FOR SELECT TO authenticated USING (EXISTS (
        SELECT 1 FROM public.stories s
        WHERE s.id = story_illustrations.story_id AND s.user_id = (select auth.uid())));
CREATE POLICY "Users can insert own story illustrations" ON public.story_illustrations
    FOR INSERT TO authenticated WITH CHECK (EXISTS (
        SELECT 1 FROM public.stories s
        WHERE s.id = story_illustrations.story_id AND s.user_id = (select auth.uid())));
CREATE POLICY "Users can update own story illustrations" ON public.story_illustrations
    FOR UPDATE TO authenticated
    USING (EXISTS (
        SELECT 1 FROM public.stories s
        WHERE s.id = story_illustrations.story_id AND s.user_id = (select auth.uid())))
    WITH CHECK (EXISTS (
        SELECT 1 FROM public.stories s
        WHERE s.id = story_illustrations.story_id AND s.user_id = (select auth.uid())));
CREATE POLICY "Users can delete own story illustrations" ON public.story_illustrations
    FOR DELETE TO authenticated USING (EXISTS (
        SELECT 1 FROM public.stories s
        WHERE s.id = story_illustrations.story_id AND s.user_id = (select auth.uid())));

-- Hero gallery: owned through its hero.
CREATE POLICY "Users can view own hero gallery" ON public.hero_gallery
    FOR SELECT TO authenticated USING (EXISTS (
        SELECT 1 FROM public.heroes h
        WHERE h.id = hero_gallery.hero_id AND h.user_id = (select auth.uid())));
CREATE POLICY "Users can insert own hero gallery" ON public.hero_gallery
    FOR INSERT TO authenticated WITH CHECK (EXISTS (
        SELECT 1 FROM public.heroes h
        WHERE h.id = hero_gallery.hero_id AND h.user_id = (select auth.uid())));
CREATE POLICY "Users can update own hero gallery" ON public.hero_gallery
    FOR UPDATE TO authenticated
    USING (EXISTS (
        SELECT 1 FROM public.heroes h
        WHERE h.id = hero_gallery.hero_id AND h.user_id = (select auth.uid())))
    WITH CHECK (EXISTS (
        SELECT 1 FROM public.heroes h
        WHERE h.id = hero_gallery.hero_id AND h.user_id = (select auth.uid())));
CREATE POLICY "Users can delete own hero gallery" ON public.hero_gallery
    FOR DELETE TO authenticated USING (EXISTS (
        SELECT 1 FROM public.heroes h
        WHERE h.id = hero_gallery.hero_id AND h.user_id = (select auth.uid())));

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
