-- storybench: monthly partitions of public.api_usage.
-- Idempotent (CREATE SCHEMA IF NOT EXISTS, CREATE OR REPLACE). Creates the function only;
-- the Rust code calls it with the months its seed profile needs.

CREATE SCHEMA IF NOT EXISTS storybench;
-- (the schema's comment belongs to meta.sql, which also creates it)

-- Creates public.api_usage_pYYYYMM FOR VALUES FROM (month start) TO (next month start),
-- bounds at UTC midnight, for every month from first_month through last_month inclusive
-- (any day of a month selects that month). Existing partitions are left alone; a table
-- of that name that is not a partition of public.api_usage is an error. Returns the
-- number of partitions it created. A new partition inherits the parent's keys, FKs and
-- indexes; RLS is enabled on it (no policies, so direct non-owner access sees nothing —
-- app access goes through the parent, whose policies apply).
CREATE OR REPLACE FUNCTION storybench.create_api_usage_partitions(first_month date, last_month date)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    m        date;
    stop     date;
    lo       timestamptz;
    hi       timestamptz;
    part     text;
    existing regclass;
    created  integer := 0;
BEGIN
    IF first_month IS NULL OR last_month IS NULL THEN
        RAISE EXCEPTION 'create_api_usage_partitions: months must not be NULL';
    END IF;
    m    := date_trunc('month', first_month)::date;
    stop := date_trunc('month', last_month)::date;
    WHILE m <= stop LOOP
        part := 'api_usage_p' || to_char(m, 'YYYYMM');
        lo := make_timestamptz(extract(year FROM m)::int, extract(month FROM m)::int, 1, 0, 0, 0, 'UTC');
        hi := make_timestamptz(extract(year FROM (m + interval '1 month'))::int,
                               extract(month FROM (m + interval '1 month'))::int, 1, 0, 0, 0, 'UTC');
        existing := to_regclass(format('public.%I', part));
        IF existing IS NULL THEN
            EXECUTE format(
                'CREATE TABLE public.%I PARTITION OF public.api_usage FOR VALUES FROM (%L) TO (%L)',
                part,
                to_char(lo AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00',
                to_char(hi AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00');
            EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', part);
            EXECUTE format('COMMENT ON TABLE public.%I IS %L', part,
                           'storybench: api_usage partition for ' || to_char(m, 'YYYY-MM') || ' (UTC)');
            created := created + 1;
        ELSIF NOT EXISTS (SELECT 1 FROM pg_inherits
                          WHERE inhrelid = existing AND inhparent = 'public.api_usage'::regclass) THEN
            RAISE EXCEPTION 'create_api_usage_partitions: % exists but is not a partition of public.api_usage',
                            existing;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN created;
END
$$;

COMMENT ON FUNCTION storybench.create_api_usage_partitions(date, date) IS
    'storybench: create missing monthly partitions public.api_usage_pYYYYMM (UTC bounds); returns how many were created.';
