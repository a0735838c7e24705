-- The same change as doc_rating.sql (same end state: rating 0 on existing rows, 5 on
-- favourites, NULL by default afterwards, CHECK 0–5 enforced), in a form that never holds a
-- lock the app waits on for long:
-- * every statement runs in its own transaction with a short lock_timeout; storybench
--   retries a statement that times out waiting for its lock (55P03) with a backoff;
-- * ADD COLUMN with a constant DEFAULT is a catalog change (no rewrite, no scan) since
--   PostgreSQL 11; the CHECK is added NOT VALID (no scan) and validated afterwards under
--   SHARE UPDATE EXCLUSIVE, which lets reads and writes go on;
-- * the backfill runs in batches, each committed, skipping rows the app holds.

SET lock_timeout = '200ms';

ALTER TABLE stories ADD COLUMN rating integer DEFAULT 0;

ALTER TABLE stories
  ADD CONSTRAINT stories_rating_check CHECK (rating >= 0 AND rating <= 5) NOT VALID;

DO $$
DECLARE
  batch integer;
BEGIN
  LOOP
    UPDATE stories SET rating = 5
    WHERE id IN (
      SELECT id FROM stories
      WHERE is_favorite AND rating IS DISTINCT FROM 5
      LIMIT 500
      FOR UPDATE SKIP LOCKED
    );
    GET DIAGNOSTICS batch = ROW_COUNT;
    EXIT WHEN batch = 0;
    COMMIT;
  END LOOP;
END
$$;

ALTER TABLE stories VALIDATE CONSTRAINT stories_rating_check;

ALTER TABLE stories ALTER COLUMN rating DROP DEFAULT;
