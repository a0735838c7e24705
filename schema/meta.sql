-- storybench's own bookkeeping: what it created (so --reset drops only that), the variant
-- the schema is in, and the state of the seeded dataset. Idempotent.
CREATE SCHEMA IF NOT EXISTS storybench;
COMMENT ON SCHEMA storybench IS 'storybench metadata: objects it owns, variant state, dataset state';

CREATE TABLE IF NOT EXISTS storybench.meta (
    key        text PRIMARY KEY,
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS storybench.owned_objects (
    kind       text NOT NULL CHECK (kind IN ('relation', 'function', 'schema', 'role')),
    identity   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, identity)
);

-- Drops every object storybench recorded as its own (tables, functions, schemas), and
-- nothing else: the bookkeeping tables stay, roles stay (they are cluster-wide and may be
-- used by other databases). Returns how many objects were dropped.
CREATE OR REPLACE FUNCTION storybench.drop_owned() RETURNS integer
LANGUAGE plpgsql SET search_path = '' AS $$
DECLARE
    obj record;
    dropped integer := 0;
BEGIN
    FOR obj IN
        SELECT kind, identity FROM storybench.owned_objects
        WHERE kind = 'relation' AND identity NOT IN ('storybench.meta', 'storybench.owned_objects')
    LOOP
        IF to_regclass(obj.identity) IS NOT NULL THEN
            EXECUTE format('DROP TABLE IF EXISTS %s CASCADE', obj.identity);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    FOR obj IN
        SELECT identity FROM storybench.owned_objects
        WHERE kind = 'function' AND identity NOT LIKE 'storybench.%'
    LOOP
        IF to_regprocedure(obj.identity) IS NOT NULL THEN
            EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', obj.identity);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    FOR obj IN
        SELECT identity FROM storybench.owned_objects WHERE kind = 'schema' AND identity <> 'storybench'
    LOOP
        EXECUTE format('DROP SCHEMA IF EXISTS %I', obj.identity);
        dropped := dropped + 1;
    END LOOP;
    DELETE FROM storybench.owned_objects WHERE kind IN ('relation', 'function', 'schema')
        AND identity NOT IN ('storybench.meta', 'storybench.owned_objects', 'storybench')
        AND identity NOT LIKE 'storybench.%';
    DELETE FROM storybench.meta WHERE key IN ('variant', 'dataset', 'schema');
    RETURN dropped;
END;
$$;

-- Drops the secondary (non-constraint) indexes of storybench's tables, before another
-- index strategy is applied. Partitioned parents only: their partitions' indexes follow.
CREATE OR REPLACE FUNCTION storybench.drop_secondary_indexes() RETURNS integer
LANGUAGE plpgsql SET search_path = '' AS $$
DECLARE
    idx record;
    dropped integer := 0;
BEGIN
    FOR idx IN
        SELECT format('%I.%I', n.nspname, ic.relname) AS name
        FROM pg_index i
        JOIN pg_class t ON t.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        JOIN storybench.owned_objects o ON o.kind = 'relation' AND o.identity = format('%I.%I', n.nspname, t.relname)
        JOIN pg_class ic ON ic.oid = i.indexrelid
        WHERE NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
          AND NOT ic.relispartition
          AND n.nspname <> 'storybench'
    LOOP
        EXECUTE format('DROP INDEX IF EXISTS %s', idx.name);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END;
$$;

-- Drops every policy on storybench's tables, before another policy set is applied.
CREATE OR REPLACE FUNCTION storybench.drop_policies() RETURNS integer
LANGUAGE plpgsql SET search_path = '' AS $$
DECLARE
    pol record;
    dropped integer := 0;
BEGIN
    FOR pol IN
        SELECT p.polname, format('%I.%I', n.nspname, t.relname) AS tbl
        FROM pg_policy p
        JOIN pg_class t ON t.oid = p.polrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        JOIN storybench.owned_objects o ON o.kind = 'relation' AND o.identity = format('%I.%I', n.nspname, t.relname)
    LOOP
        EXECUTE format('DROP POLICY IF EXISTS %I ON %s', pol.polname, pol.tbl);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END;
$$;
