-- Dataset fingerprint: per table the row count and an order-independent sum of per-row
-- hashes (so no sort is needed), combined into one md5. The row hash is the server's own
-- hash_record_extended (each column's binary hash function; sum() of bigint is numeric, so
-- it cannot overflow): at scale 10 it took 10.4 s where md5(row::text) took 29.7 s, the text
-- output of every jsonb and timestamp being the cost. Run with TimeZone = UTC all the same.
-- Both api_usage layouts are included: they must hold the same rows.
SELECT md5(string_agg(tbl || ':' || n || ':' || h, ',' ORDER BY tbl)) AS fingerprint,
       jsonb_object_agg(tbl, n) AS row_counts
FROM (
    SELECT 'auth.users' AS tbl, count(*) AS n, coalesce(sum(hash_record_extended(t, 0)), 0) AS h FROM auth.users t
    UNION ALL SELECT 'heroes', count(*), coalesce(sum(hash_record_extended(t, 0)), 0) FROM public.heroes t
    UNION ALL SELECT 'custom_events', count(*), coalesce(sum(hash_record_extended(t, 0)), 0) FROM public.custom_events t
    UNION ALL SELECT 'stories', count(*), coalesce(sum(hash_record_extended(t, 0)), 0) FROM public.stories t
    UNION ALL SELECT 'story_scenes', count(*), coalesce(sum(hash_record_extended(t, 0)), 0) FROM public.story_scenes t
    UNION ALL SELECT 'story_illustrations', count(*), coalesce(sum(hash_record_extended(t, 0)), 0) FROM public.story_illustrations t
    UNION ALL SELECT 'hero_gallery', count(*), coalesce(sum(hash_record_extended(t, 0)), 0) FROM public.hero_gallery t
    UNION ALL SELECT 'play_events', count(*), coalesce(sum(hash_record_extended(t, 0)), 0) FROM public.play_events t
    UNION ALL SELECT 'api_usage', count(*), coalesce(sum(hash_record_extended(t, 0)), 0) FROM public.api_usage t
    UNION ALL SELECT 'storybench_flat.api_usage', count(*), coalesce(sum(hash_record_extended(t, 0)), 0) FROM storybench_flat.api_usage t
    UNION ALL SELECT 'rate_limits', count(*), coalesce(sum(hash_record_extended(t, 0)), 0) FROM public.rate_limits t
    UNION ALL SELECT 'cache_entries', count(*), coalesce(sum(hash_record_extended(t, 0)), 0) FROM public.cache_entries t
    UNION ALL SELECT 'content_flags', count(*), coalesce(sum(hash_record_extended(t, 0)), 0) FROM public.content_flags t
    UNION ALL SELECT 'audit_log', count(*), coalesce(sum(hash_record_extended(t, 0)), 0) FROM public.audit_log t
) per_table
