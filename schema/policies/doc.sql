-- storybench policy set "doc": the document's policies exactly as written
-- (auth.uid() = user_id per row, no TO clause, service policy
-- USING (auth.role() = 'service_role')), completed for every table the document left at
-- "Continue for all tables..." in the same style: per-command policies like its heroes
-- example, child tables owned through their story or hero. UPDATE policies carry an
-- explicit WITH CHECK (equal to what PostgreSQL uses when it is omitted).
-- The Rust code drops every policy on these tables before applying a set: this file
-- only creates. Policy names are identical to initplan.sql.

-- api_usage's partitions stay in public, as the document's DDL has them.
SELECT storybench.place_api_usage_partitions('public');

-- Heroes: users can only access their own heroes (document).
CREATE POLICY "Users can view own heroes" ON public.heroes
    FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Users can insert own heroes" ON public.heroes
    FOR INSERT WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can update own heroes" ON public.heroes
    FOR UPDATE
    USING (auth.uid() = user_id)
    WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can delete own heroes" ON public.heroes
    FOR DELETE USING (auth.uid() = user_id);

-- Stories: users can only access their own stories (document: view, insert; completed: update, delete).
CREATE POLICY "Users can view own stories" ON public.stories
    FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Users can insert own stories" ON public.stories
    FOR INSERT WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can update own stories" ON public.stories
    FOR UPDATE
    USING (auth.uid() = user_id)
    WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can delete own stories" ON public.stories
    FOR DELETE USING (auth.uid() = user_id);

-- Custom events: users can view public events or their own (document, as written).
CREATE POLICY "Users can view events" ON public.custom_events
    FOR SELECT USING (auth.uid() = user_id OR is_public = true);
CREATE POLICY "Users can manage own events" ON public.custom_events
    FOR ALL USING (auth.uid() = user_id);

-- Story scenes: owned through their story.
CREATE POLICY "Users can view own story scenes" ON public.story_scenes
    FOR SELECT USING (EXISTS (
        SELECT 1 FROM public.stories s
        WHERE s.id = story_scenes.story_id AND s.user_id = auth.uid()));
CREATE POLICY "Users can insert own story scenes" ON public.story_scenes
    FOR INSERT WITH CHECK (EXISTS (
        SELECT 1 FROM public.stories s
        WHERE s.id = story_scenes.story_id AND s.user_id = auth.uid()));
CREATE POLICY "Users can update own story scenes" ON public.story_scenes
    FOR UPDATE
    USING (EXISTS (
        SELECT 1 FROM public.stories s
        WHERE s.id = story_scenes.story_id AND s.user_id = auth.uid()))
    WITH CHECK (EXISTS (
        SELECT 1 FROM public.stories s
        WHERE s.id = story_scenes.story_id AND s.user_id = auth.uid()));
CREATE POLICY "Users can delete own story scenes" ON public.story_scenes
    FOR DELETE USING (EXISTS (
        SELECT 1 FROM public.stories s
        WHERE s.id = story_scenes.story_id AND s.user_id = auth.uid()));

-- Story illustrations: owned through their story.
CREATE POLICY "Users can view own story illustrations" ON public.story_illustrations
    FOR SELECT USING (EXISTS (
        SELECT 1 FROM public.stories s
        WHERE s.id = story_illustrations.story_id AND s.user_id = auth.uid()));
CREATE POLICY "Users can insert own story illustrations" ON public.story_illustrations
    FOR INSERT WITH CHECK (EXISTS (
        SELECT 1 FROM public.stories s
        WHERE s.id = story_illustrations.story_id AND s.user_id = auth.uid()));
CREATE POLICY "Users can update own story illustrations" ON public.story_illustrations
    FOR UPDATE
    USING (EXISTS (
        SELECT 1 FROM public.stories s
        WHERE s.id = story_illustrations.story_id AND s.user_id = auth.uid()))
    WITH CHECK (EXISTS (
        SELECT 1 FROM public.stories s
        WHERE s.id = story_illustrations.story_id AND s.user_id = auth.uid()));
CREATE POLICY "Users can delete own story illustrations" ON public.story_illustrations
    FOR DELETE USING (EXISTS (
        SELECT 1 FROM public.stories s
        WHERE s.id = story_illustrations.story_id AND s.user_id = auth.uid()));

-- Hero gallery: owned through its hero.
CREATE POLICY "Users can view own hero gallery" ON public.hero_gallery
    FOR SELECT USING (EXISTS (
        SELECT 1 FROM public.heroes h
        WHERE h.id = hero_gallery.hero_id AND h.user_id = auth.uid()));
CREATE POLICY "Users can insert own hero gallery" ON public.hero_gallery
    FOR INSERT WITH CHECK (EXISTS (
        SELECT 1 FROM public.heroes h
        WHERE h.id = hero_gallery.hero_id AND h.user_id = auth.uid()));
CREATE POLICY "Users can update own hero gallery" ON public.hero_gallery
    FOR UPDATE
    USING (EXISTS (
        SELECT 1 FROM public.heroes h
        WHERE h.id = hero_gallery.hero_id AND h.user_id = auth.uid()))
    WITH CHECK (EXISTS (
        SELECT 1 FROM public.heroes h
        WHERE h.id = hero_gallery.hero_id AND h.user_id = auth.uid()));
CREATE POLICY "Users can delete own hero gallery" ON public.hero_gallery
    FOR DELETE USING (EXISTS (
        SELECT 1 FROM public.heroes h
        WHERE h.id = hero_gallery.hero_id AND h.user_id = auth.uid()));

-- API usage (partitioned parent; applies to every partition read through it): own rows.
CREATE POLICY "Users can view own api usage" ON public.api_usage
    FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Users can insert own api usage" ON public.api_usage
    FOR INSERT WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can update own api usage" ON public.api_usage
    FOR UPDATE
    USING (auth.uid() = user_id)
    WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can delete own api usage" ON public.api_usage
    FOR DELETE USING (auth.uid() = user_id);

-- API usage, flat twin: the same policies as public.api_usage.
CREATE POLICY "Users can view own api usage" ON storybench_flat.api_usage
    FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Users can insert own api usage" ON storybench_flat.api_usage
    FOR INSERT WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can update own api usage" ON storybench_flat.api_usage
    FOR UPDATE
    USING (auth.uid() = user_id)
    WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can delete own api usage" ON storybench_flat.api_usage
    FOR DELETE USING (auth.uid() = user_id);

-- Play events: own rows.
CREATE POLICY "Users can view own play events" ON public.play_events
    FOR SELECT USING (auth.uid() = user_id);
CREATE POLICY "Users can insert own play events" ON public.play_events
    FOR INSERT WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can update own play events" ON public.play_events
    FOR UPDATE
    USING (auth.uid() = user_id)
    WITH CHECK (auth.uid() = user_id);
CREATE POLICY "Users can delete own play events" ON public.play_events
    FOR DELETE USING (auth.uid() = user_id);

-- Rate limits: users may read their own counters; the backend (service role) writes them.
CREATE POLICY "Users can view own rate limits" ON public.rate_limits
    FOR SELECT USING (auth.uid() = user_id);

-- content_flags, cache_entries, audit_log: service only (no user policy).

-- Service role: full access on every table (document: "Continue for all tables...").
CREATE POLICY "Service role has full access" ON public.heroes
    FOR ALL USING (auth.role() = 'service_role');
CREATE POLICY "Service role has full access" ON public.stories
    FOR ALL USING (auth.role() = 'service_role');
CREATE POLICY "Service role has full access" ON public.story_scenes
    FOR ALL USING (auth.role() = 'service_role');
CREATE POLICY "Service role has full access" ON public.story_illustrations
    FOR ALL USING (auth.role() = 'service_role');
CREATE POLICY "Service role has full access" ON public.custom_events
    FOR ALL USING (auth.role() = 'service_role');
CREATE POLICY "Service role has full access" ON public.hero_gallery
    FOR ALL USING (auth.role() = 'service_role');
CREATE POLICY "Service role has full access" ON public.api_usage
    FOR ALL USING (auth.role() = 'service_role');
CREATE POLICY "Service role has full access" ON storybench_flat.api_usage
    FOR ALL USING (auth.role() = 'service_role');
CREATE POLICY "Service role has full access" ON public.rate_limits
    FOR ALL USING (auth.role() = 'service_role');
CREATE POLICY "Service role has full access" ON public.cache_entries
    FOR ALL USING (auth.role() = 'service_role');
CREATE POLICY "Service role has full access" ON public.content_flags
    FOR ALL USING (auth.role() = 'service_role');
CREATE POLICY "Service role has full access" ON public.audit_log
    FOR ALL USING (auth.role() = 'service_role');
CREATE POLICY "Service role has full access" ON public.play_events
    FOR ALL USING (auth.role() = 'service_role');
