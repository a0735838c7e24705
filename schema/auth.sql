-- storybench: Supabase-faithful auth shim.
-- Idempotent: safe to re-run on a database (and cluster) that already has it.
-- Mirrors supabase/postgres (roles) and supabase/auth (auth.uid/role/jwt) as described in
-- /work/shared/reference/postgres-facts.md. pg_stat_statements is created by the Rust code.


CREATE SCHEMA IF NOT EXISTS auth;

-- Supabase-like subset of auth.users. Its primary key (users_pkey) is added by keys.sql,
-- after bulk loading, like the app tables.
CREATE TABLE IF NOT EXISTS auth.users (
    id                  uuid NOT NULL DEFAULT gen_random_uuid(),
    instance_id         uuid,
    aud                 text,
    role                text,
    email               text,
    encrypted_password  text,
    email_confirmed_at  timestamptz,
    last_sign_in_at     timestamptz,
    raw_app_meta_data   jsonb,
    raw_user_meta_data  jsonb,
    created_at          timestamptz,
    updated_at          timestamptz
);

COMMENT ON TABLE auth.users IS
    'storybench: Supabase-like subset of auth.users; the owner of every user_id in public.';

-- auth.uid(), auth.role(), auth.jwt() exactly as Supabase defines them
-- (supabase/auth migration 20240624145325_recreate_auth_functions).
CREATE OR REPLACE FUNCTION auth.uid()
RETURNS uuid
LANGUAGE sql STABLE
SET search_path TO ''
AS $$
  select
  coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

CREATE OR REPLACE FUNCTION auth.role()
RETURNS text
LANGUAGE sql STABLE
SET search_path TO ''
AS $$
  select
  coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

CREATE OR REPLACE FUNCTION auth.jwt()
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path TO ''
AS $$
  select
    coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;

GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION auth.uid(), auth.role(), auth.jwt() TO anon, authenticated, service_role;
