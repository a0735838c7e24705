-- storybench: monthly partitions of public.api_usage.
-- Idempotent (CREATE SCHEMA IF NOT EXISTS, CREATE OR REPLACE). Creates the function only;
-- the Rust code calls it with the months its seed profile needs.

CREATE SCHEMA IF NOT EXISTS storybench;
-- (the schema's comment belongs to meta.sql, which also creates it)

-- Where the recommended policy sets keep api_usage's partitions: a schema PostgREST does not
-- expose (it serves public only), so a partition is not an API table with RLS on and no
-- policy (Supabase's linter: rls_enabled_no_policy). App access goes through the parent.
CREATE SCHEMA IF NOT EXISTS partitions;
COMMENT ON SCHEMA partitions IS 'storybench: api_usage partitions under the recommended policy sets (not exposed to the API)';
REVOKE ALL ON SCHEMA partitions FROM PUBLIC;

-- Creates api_usage_pYYYYMM (in the schema the existing partitions are in, public when there
-- are none) FOR VALUES FROM (month start) TO (next month start),
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
    home     text;
    created  integer := 0;
BEGIN
    IF first_month IS NULL OR last_month IS NULL THEN
        RAISE EXCEPTION 'create_api_usage_partitions: months must not be NULL';
    END IF;
    home := coalesce((SELECT n.nspname FROM pg_inherits i
                      JOIN pg_class c ON c.oid = i.inhrelid
                      JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE i.inhparent = 'public.api_usage'::regclass
                      ORDER BY c.relname LIMIT 1), 'public');
    m    := date_trunc('month', first_month)::date;
    stop := date_trunc('month', last_month)::date;
    WHILE m <= stop LOOP
        part := 'api_usage_p' || to_char(m, 'YYYYMM');
        lo := make_timestamptz(extract(year FROM m)::int, extract(month FROM m)::int, 1, 0, 0, 0, 'UTC');
        hi := make_timestamptz(extract(year FROM (m + interval '1 month'))::int,
                               extract(month FROM (m + interval '1 month'))::int, 1, 0, 0, 0, 'UTC');
        existing := coalesce(to_regclass(format('public.%I', part)),
                             to_regclass(format('partitions.%I', part)));
        IF existing IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I.%I PARTITION OF public.api_usage FOR VALUES FROM (%L) TO (%L)',
                home, part,
                to_char(lo AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00',
                to_char(hi AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00');
            EXECUTE format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY', home, part);
            EXECUTE format('COMMENT ON TABLE %I.%I IS %L', home, part,
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
    'storybench: create missing monthly partitions api_usage_pYYYYMM (UTC bounds); returns how many were created.';

-- Moves every partition of public.api_usage into `home` ('public' or 'partitions'); each
-- policy set calls it (the recommended ones with 'partitions', the document's with 'public').
-- A partition keeps its name, rows, indexes and RLS; plans name it by its relation name.
-- Returns how many moved.
CREATE OR REPLACE FUNCTION storybench.place_api_usage_partitions(home text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
    part  regclass;
    moved integer := 0;
BEGIN
    IF home IS NULL OR home NOT IN ('public', 'partitions') THEN
        RAISE EXCEPTION 'place_api_usage_partitions: % is not public or partitions', home;
    END IF;
    FOR part IN
        SELECT i.inhrelid::regclass FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE i.inhparent = 'public.api_usage'::regclass AND n.nspname <> home
        ORDER BY c.relname
    LOOP
        EXECUTE format('ALTER TABLE %s SET SCHEMA %I', part, home);
        moved := moved + 1;
    END LOOP;
    RETURN moved;
END
$$;

COMMENT ON FUNCTION storybench.place_api_usage_partitions(text) IS
    'storybench: move the api_usage partitions into public or partitions (called by each policy set).';
