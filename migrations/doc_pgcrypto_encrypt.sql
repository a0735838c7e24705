-- The reference document's "Data Encryption" example, verbatim: pgcrypto, then every hero's
-- avatar_prompt encrypted in one bulk UPDATE (pgp_sym_encrypt returns bytea; stored in the
-- text column through PostgreSQL's assignment cast, as '\x…' hex, which the document's
-- `avatar_prompt::bytea` decrypt reads back). The key is in the SQL text: pg_stat_activity
-- shows it, and so does the server log for any statement logged (log_statement,
-- log_min_duration_statement, an error); pg_stat_statements (PostgreSQL 15) stores this
-- UPDATE normalised, `pgp_sym_encrypt(avatar_prompt, $1)`, without it (checked on the
-- embedded cluster, 2026-12-07). Measured under load with
-- `storybench ops --migration migrations/doc_pgcrypto_encrypt.sql`.

-- Enable encryption at rest
CREATE EXTENSION IF NOT EXISTS pgcrypto;

-- Encrypt sensitive data
UPDATE heroes
SET avatar_prompt = pgp_sym_encrypt(avatar_prompt, 'encryption_key')
WHERE avatar_prompt IS NOT NULL;
