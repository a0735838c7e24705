-- Cluster-wide roles of the Supabase auth shim (anon, authenticated, service_role,
-- authenticator). Roles are shared by every database of a cluster, so storybench runs this
-- file in its own transaction, retried when another database's set-up races it.
-- Idempotent: creates only what is missing.

-- Roles are cluster-wide: create each one only if it is missing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'service_role') THEN
        CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'authenticator') THEN
        CREATE ROLE authenticator LOGIN NOINHERIT;
    END IF;
END
$$;

-- Membership lets authenticator (PostgREST's login role) switch into the API roles.
-- Re-granting an existing membership is a NOTICE, not an error.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
        IF NOT pg_catalog.pg_has_role('authenticator', r, 'MEMBER') THEN
            EXECUTE format('GRANT %I TO authenticator', r);
        END IF;
    END LOOP;
END
$$;

-- Supabase's per-role statement timeouts. Note: role settings apply at login (and
-- PostgREST >= 11 applies them itself on role switch); a bare set_config('role', …)
-- does not apply them.
DO $$
BEGIN
    -- Only when missing: ALTER ROLE rewrites a shared catalog row, which races other databases' set-up.
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_db_role_setting s JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
                   WHERE r.rolname = 'authenticated' AND s.setdatabase = 0 AND 'statement_timeout=8s' = ANY (s.setconfig)) THEN
        ALTER ROLE authenticated SET statement_timeout = '8s';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_db_role_setting s JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
                   WHERE r.rolname = 'anon' AND s.setdatabase = 0 AND 'statement_timeout=3s' = ANY (s.setconfig)) THEN
        ALTER ROLE anon SET statement_timeout = '3s';
    END IF;
END
$$;
