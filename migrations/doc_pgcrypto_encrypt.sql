-- The reference document's "Data Encryption" example, verbatim: pgcrypto, then every hero's
-- avatar_prompt encrypted in one bulk UPDATE (pgp_sym_encrypt returns bytea; stored in the
-- text column through PostgreSQL's assignment cast, as '\x…' hex, which the document's
-- `avatar_prompt::bytea` decrypt reads back). The key is in the SQL text: it reaches
-- pg_stat_statements and the server log. Measured under load with
-- `storybench ops --migration migrations/doc_pgcrypto_encrypt.sql`.

-- Enable encryption at rest
CREATE EXTENSION IF NOT EXISTS pgcrypto;

-- Encrypt sensitive data
UPDATE heroes
SET avatar_prompt = pgp_sym_encrypt(avatar_prompt, 'encryption_key')
WHERE avatar_prompt IS NOT NULL;
