-- The reference document's migration ("Migration Best Practices"), exactly as written:
-- one transaction; ADD COLUMN with a DEFAULT and a CHECK, an UPDATE backfill, DROP DEFAULT.
-- The CHECK makes ADD COLUMN scan the table under ACCESS EXCLUSIVE, and the lock is held
-- through the backfill until COMMIT: every reader and writer of stories waits meanwhile.

-- Always use transactions for schema changes
BEGIN;

-- Add new column with default
ALTER TABLE stories
ADD COLUMN rating INTEGER DEFAULT 0 CHECK (rating >= 0 AND rating <= 5);

-- Backfill data if needed
UPDATE stories SET rating = 5 WHERE is_favorite = true;

-- Remove default after backfill
ALTER TABLE stories ALTER COLUMN rating DROP DEFAULT;

COMMIT;
